"""Secrets: a known key, mnemonic, passphrase and API key through every command; none of
their text may appear on stdout, stderr, in a results file, a body file, a file under
GONKA_HOME or the dev node's log, except where the user asked for it (`keys export
--unsafe`, and the one-time display of a new mnemonic by `keys add`).

"Their text" is generous: the hex in any case (with or without 0x), any 12 characters of
it, its base64, the BIP39 seed, the mnemonic or any three of its words in a row, any 12
characters of the API key or a passphrase. Error paths are included (a failing send, -v,
--dry-run in every --print form, a wrong passphrase, a wrong API key).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gonka_cli.cli import app
from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.keys import SigningKey, hd
from tests.keystore_helpers import isolate_keystore
from tests.test_batch_devnode import write_bodies

MNEMONIC = hd._english().to_mnemonic(hashlib.sha256(b"gonka-cli reliability").digest())
SEED = hd.mnemonic_to_seed(MNEMONIC)
KEY = SigningKey.from_secret(hd.secret_from_mnemonic(MNEMONIC))
IMPORTED = SigningKey.from_secret(hashlib.sha256(b"gonka-cli reliability import").digest())
PASSPHRASE = "Correct-Horse-7781-battery"
WRONG_PASSPHRASE = "Wrong-Donkey-0000-mistyped"
API_KEY = "sk-9f8e7d6c5b4a39281706aa"
WRONG_API_KEY = "sk-0000deadbeef1111222233"
BODY = b'{"model":"echo","messages":[{"role":"user","content":"hello"}],"max_tokens":8}'
STREAM_BODY = b'{"model":"echo","messages":[{"role":"user","content":"hi"}],"stream":true}'
runner = CliRunner()


def _windows(text: str, width: int) -> set[str]:
    return {text[i : i + width] for i in range(len(text) - width + 1)}


def secret_forms() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Every piece of text that would give a secret away, by the secret's name: pieces to
    find in any case (hex, words; given in lower case), and pieces to find exactly."""
    any_case: dict[str, set[str]] = {}
    exact: dict[str, set[str]] = {}
    for name, key in (("key", KEY), ("imported key", IMPORTED)):
        any_case[name] = _windows(key.to_hex(), 12)
        exact[name] = _windows(base64.b64encode(key.secret).decode(), 16)
    any_case["seed"] = _windows(SEED.hex(), 24)
    words = MNEMONIC.split()
    any_case["mnemonic"] = {" ".join(words[i : i + 3]) for i in range(len(words) - 2)}
    for name, value in (
        ("api key", API_KEY),
        ("wrong api key", WRONG_API_KEY),
        ("passphrase", PASSPHRASE),
        ("wrong passphrase", WRONG_PASSPHRASE),
    ):
        exact[name] = _windows(value, 12)
    return any_case, exact


ANY_CASE, EXACT = secret_forms()


def leaks(text: str) -> set[str]:
    """The names of the secrets whose text appears in `text` (whitespace runs as one space)."""
    flat = " ".join(text.split())
    lowered = flat.lower()
    found = {name for name, pieces in ANY_CASE.items() if any(p in lowered for p in pieces)}
    return found | {name for name, pieces in EXACT.items() if any(p in flat for p in pieces)}


def leaks_in_files(root: Path, *, own: Iterable[Path] = ()) -> dict[str, set[str]]:
    """Leaks in every file below `root` (but the user's `own` secret files), by path."""
    found = {}
    skip = set(own)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skip):
        names = leaks(path.read_bytes().decode("latin-1"))
        if names:
            found[str(path)] = names
    return found


class Transcript:
    """Runs commands in-process and keeps what each printed, to be searched afterwards."""

    def __init__(self) -> None:
        self.outputs: dict[str, str] = {}

    def run(
        self,
        label: str,
        args: Iterable[str],
        *,
        code: int = 0,
        stdin: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        """`gonka ARGS`; its exit code must be `code` (the path under test was taken)."""
        result = runner.invoke(app, list(args), input=stdin, env=dict(env or {}))
        assert result.exit_code == code, f"{label}: {result.stderr}"
        assert result.exception is None or isinstance(result.exception, SystemExit), label
        self.outputs[label] = result.stdout + "\n" + result.stderr
        return result

    def leaked(self, *, except_for: Mapping[str, set[str]] | None = None) -> dict[str, set[str]]:
        """The runs that showed a secret they were not allowed to show."""
        allowed = except_for or {}
        found = {
            label: leaks(text) - allowed.get(label, set()) for label, text in self.outputs.items()
        }
        return {label: names for label, names in found.items() if names}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Own GONKA_HOME, cheap scrypt, no prompts, no GONKA_* from outside."""
    yield from isolate_keystore(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def ta() -> Iterator[tuple[Any, list[str]]]:
    """A transfer agent, and the lines it logs."""
    lines: list[str] = []
    with start_node(NodeConfig(log=lines.append)) as node:
        yield node, lines


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[Any, list[str]]]:
    """A gateway that accepts API_KEY, and the lines it logs."""
    lines: list[str] = []
    with start_node(NodeConfig(mode="gateway", api_keys=(API_KEY,), log=lines.append)) as node:
        yield node, lines


def closed_port_url() -> str:
    """A local URL nobody listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


OWN_SECRET_FILES = ("keyfile", "apikey", "pass")


def files(tmp: Path) -> dict[str, Path]:
    """A request body, a streamed one, a key file, an API key file and a passphrase file."""
    made = {
        "body": (tmp / "body.json", BODY),
        "stream": (tmp / "stream.json", STREAM_BODY),
        "keyfile": (tmp / "key.txt", ("0x" + KEY.to_hex().upper() + "\n").encode()),
        "apikey": (tmp / "api.txt", (API_KEY + "\n").encode()),
        "pass": (tmp / "pass.txt", (PASSPHRASE + "\n").encode()),
    }
    for path, content in made.values():
        path.write_bytes(content)
    return {name: path for name, (path, _) in made.items()}


def test_the_search_finds_every_form_of_every_secret() -> None:
    """The search itself: it finds hex (either case, 0x, a fragment), base64, the mnemonic
    (three words, any spacing), the API key and passphrases; and not their absence."""
    assert leaks("x " + KEY.to_hex().upper() + " y") == {"key"}
    assert leaks("0x" + IMPORTED.to_hex()[20:40]) == {"imported key"}
    assert leaks(base64.b64encode(KEY.secret).decode()) == {"key"}
    words = MNEMONIC.split()
    assert leaks(f"{words[5]}\n  {words[6].upper()} {words[7]}") == {"mnemonic"}
    assert leaks(f"Bearer {API_KEY}") == {"api key"}
    assert leaks(f"pass={PASSPHRASE}") == {"passphrase"}
    assert (
        leaks("Bearer ***" + API_KEY[-4:] + " " + KEY.address + " " + KEY.public_key_b64) == set()
    )


def test_keys_and_signing_show_no_secret_except_export_unsafe(tmp_path: Path) -> None:
    """keys add/import/list/show/default/rename/export, sign and verify, with the key from the
    keystore, GONKA_PRIVATE_KEY (either case) and --private-key-file, and a wrong passphrase:
    only `keys export --unsafe` shows the key, only `keys add` its own new mnemonic."""
    paths = files(tmp_path)
    log = Transcript()
    keyring = {"GONKA_KEYRING_PASSPHRASE": PASSPHRASE}
    log.run(
        "add --recover", ["keys", "add", "main", "--recover"], stdin=MNEMONIC + "\n", env=keyring
    )
    fresh = log.run("add new", ["keys", "add", "fresh"], env=keyring)
    new_words = fresh.stderr.strip().splitlines()[-1]
    assert len(new_words.split()) == 24
    log.run("add new json", ["keys", "add", "fresh2", "-o", "json"], env=keyring)
    log.run(
        "import",
        ["keys", "import", "imp", "--passphrase-file", str(paths["pass"])],
        stdin="0x" + IMPORTED.to_hex().upper() + "\n",
    )
    for label, args in {
        "list": ["keys", "list"],
        "list json": ["keys", "list", "-o", "json"],
        "show": ["keys", "show", "main"],
        "show json": ["keys", "show", "main", "-o", "json"],
        "show address": ["keys", "show", KEY.address, "-a", "-p"],
        "default": ["keys", "default"],
        "set default": ["keys", "default", "main"],
        "rename": ["keys", "rename", "imp", "imported"],
    }.items():
        log.run(label, args)
    log.run("export refused", ["keys", "export", "main"], code=2, env=keyring)
    exported = log.run("export unsafe", ["keys", "export", "main", "--unsafe"], env=keyring)
    assert exported.stdout.strip() == KEY.to_hex()
    sign = ["sign", "--file", str(paths["body"])]
    log.run("sign stored", [*sign, "--key", "main"], env=keyring)
    log.run("sign default json", [*sign, "-o", "json"], env=keyring)
    log.run(
        "sign passphrase file",
        [*sign, "--key", "imported", "--passphrase-file", str(paths["pass"]), "-o", "headers"],
    )
    log.run("sign env lower", [*sign, "-o", "json"], env={"GONKA_PRIVATE_KEY": KEY.to_hex()})
    upper = {"GONKA_PRIVATE_KEY": "0x" + KEY.to_hex().upper()}
    signed = log.run("sign env upper", [*sign, "-o", "headers"], env=upper)
    log.run("sign key file", [*sign, "--private-key-file", str(paths["keyfile"])])
    log.run(
        "sign wrong passphrase",
        [*sign, "--key", "main"],
        code=7,
        env={"GONKA_KEYRING_PASSPHRASE": WRONG_PASSPHRASE},
    )
    log.run(
        "sign address mismatch",
        [*sign, "--key", "main"],
        code=7,
        env={**keyring, "GONKA_ADDRESS": IMPORTED.address},
    )
    signature = re.search(r"Authorization: (\S+)", signed.stdout)
    assert signature is not None
    log.run(
        "verify",
        [
            "verify",
            "--file",
            str(paths["body"]),
            "--signature",
            signature.group(1),
            "--address",
            KEY.address,
            "--timestamp",
            "0",
        ],
        code=3,
    )
    assert log.leaked(except_for={"export unsafe": {"key"}}) == {}
    assert leaks(log.outputs["export unsafe"]) == {"key"}  # the one place it may appear
    assert new_words in log.outputs["add new"]
    assert leaks_in_files(tmp_path / "home") == {}
    assert new_words not in "".join(
        p.read_bytes().decode("latin-1") for p in (tmp_path / "home").rglob("*") if p.is_file()
    )


def test_keyring_and_armor_paths_show_no_secret(tmp_path: Path) -> None:
    """The inferenced keyring (test and file backends) and the armored export: add, import,
    list, show, sign, export --armor, delete, a wrong file password and a wrong armor
    passphrase; no secret shows anywhere, except the new mnemonics of `keys add` itself."""
    paths = files(tmp_path)
    log = Transcript()
    file_env = {"GONKA_KEYRING_PASSPHRASE": PASSPHRASE}
    sign = ["sign", "--file", str(paths["body"])]
    armored = tmp_path / "exported.asc"
    for backend, env in (("test", {}), ("file", file_env)):
        kr = ["--keyring-backend", backend, "--keyring-dir", str(tmp_path / "kr")]
        add = ["keys", "add", "main", "--recover", *kr]
        log.run(f"{backend} add", add, stdin=MNEMONIC, env=env)
        log.run(f"{backend} list", ["keys", "list", *kr, "-o", "json"], env=env)
        log.run(f"{backend} show", ["keys", "show", KEY.address, *kr], env=env)
        log.run(f"{backend} sign", [*sign, "--key", "main", *kr], env=env)
        log.run(f"{backend} sign from", [*sign, "--from", "main", *kr, "-o", "json"], env=env)
        log.run(f"{backend} sign address", [*sign, "--account-address", KEY.address, *kr], env=env)
        export = ["keys", "export", "main", "--armor", "--armor-passphrase-file", paths["pass"]]
        exported = log.run(f"{backend} export armor", [*map(str, export), *kr], env=env)
        armored.write_text(exported.stdout)
        imp = ["keys", "import", "imp", *kr]
        log.run(f"{backend} import", imp, stdin=IMPORTED.to_hex(), env=env)
        log.run(f"{backend} delete", ["keys", "delete", "imp", "-y", *kr], env=env)
    wrong = {"GONKA_KEYRING_PASSPHRASE": WRONG_PASSPHRASE}
    file_kr = ["--keyring-backend", "file", "--keyring-dir", str(tmp_path / "kr")]
    log.run("file wrong", [*sign, "--key", "main", *file_kr], code=7, env=wrong)
    log.run(
        "import armor",
        ["keys", "import", "back", str(armored), "--armor-passphrase-file", str(paths["pass"])],
        env=file_env,
    )
    bad = ["keys", "import", "bad", str(armored)]
    log.run("import armor wrong", bad, code=7, stdin=WRONG_PASSPHRASE)
    assert log.leaked() == {}
    assert leaks_in_files(tmp_path, own=[paths[name] for name in OWN_SECRET_FILES]) == {}


def test_signed_sending_shows_no_key(ta: tuple[Any, list[str]], tmp_path: Path) -> None:
    """send-request signed with the key from the environment, a key file and the keystore:
    plain, -v -u, -o json, streamed, every --dry-run form, a batch with results and body
    files, --dev, account, endpoints, config show, and failures (no connection, 404, a
    mismatched address) show the key nowhere, nor write it to any file or the node's log."""
    node, node_log = ta
    paths = files(tmp_path)
    log = Transcript()
    env = {"GONKA_PRIVATE_KEY": KEY.to_hex()}
    send = ["send-request", "--node-address", node.url]
    body = ["--file", str(paths["body"])]
    log.run("send", [*send, *body], env=env)
    log.run("send verbose usage", [*send, *body, "-v", "-u"], env=env)
    log.run("send json", [*send, *body, "-o", "json"], env=env)
    log.run("send raw stream", [*send, "--file", str(paths["stream"]), "-o", "raw", "-v"], env=env)
    log.run("send key file", [*send, *body, "--private-key-file", str(paths["keyfile"])])
    for form in ("http", "curl", "json"):
        log.run(f"dry-run {form}", [*send, *body, "--dry-run", "--print", form], env=env)
    log.run(
        "no connection",
        [
            "send-request",
            "--node-address",
            closed_port_url(),
            *body,
            "--endpoint-account",
            KEY.address,
            "--max-retries",
            "0",
            "-v",
        ],
        code=6,
        env=env,
    )
    log.run("model not served", [*send, *body, "--model", "no-such-model", "-v"], code=4, env=env)
    log.run(
        "address mismatch", [*send, *body], code=7, env={**env, "GONKA_ADDRESS": IMPORTED.address}
    )
    inputs = tmp_path / "in"
    write_bodies(inputs, 4)
    (inputs / "bad.json").write_text("{")
    results, bodies = tmp_path / "results.jsonl", tmp_path / "bodies"
    log.run(
        "batch",
        [
            *send,
            "--dir",
            str(inputs),
            "--output-file",
            str(results),
            "--output-dir",
            str(bodies),
            "-v",
        ],
        code=8,
        env=env,
    )
    log.run("batch to stdout", [*send, "--dir", str(inputs), "-q"], code=8, env=env)
    keyring = {"GONKA_KEYRING_PASSPHRASE": PASSPHRASE}
    log.run("store", ["keys", "add", "main", "--recover"], stdin=MNEMONIC + "\n", env=keyring)
    log.run("dev with stored key", ["send-request", "--dev", *body, "-v"], env=keyring)
    log.run("account", ["account", "--node-address", node.url], env=env)
    log.run("endpoints", ["endpoints", "--source-url", node.url, "-o", "json"], env=env)
    config_env = {**env, "GONKA_BROKER_API_KEY": API_KEY}
    log.run("config show", ["config", "show"], env=config_env)
    log.run("config show json", ["config", "show", "-o", "json"], env=config_env)
    assert log.leaked() == {}
    assert leaks_in_files(tmp_path, own=[paths[name] for name in OWN_SECRET_FILES]) == {}
    assert leaks("\n".join(node_log)) == set()


def test_bearer_sending_shows_no_api_key(gateway: tuple[Any, list[str]], tmp_path: Path) -> None:
    """send-request to a gateway with the API key from the environment, a file and a
    command: plain, -v, -o json, every --dry-run form (the header masked, curl reading the
    key from where it lives), a batch, models, and a wrong key's 401 show it nowhere."""
    node, node_log = gateway
    paths = files(tmp_path)
    log = Transcript()
    env = {"GONKA_BROKER_API_KEY": API_KEY}
    send = ["send-request", "--auth", "bearer", "--base-url", node.base_url]
    body = ["--file", str(paths["body"])]
    log.run("send", [*send, *body, "-v", "-u"], env=env)
    log.run("send json", [*send, *body, "-o", "json"], env=env)
    log.run("send stream", [*send, "--file", str(paths["stream"]), "-o", "raw"], env=env)
    log.run("key file", [*send, *body, "--api-key-file", str(paths["apikey"]), "-v"])
    command = f"cat {paths['apikey']}"
    log.run("key command", [*send, *body, "--api-key-cmd", command, "-v"])
    for form in ("http", "curl", "json"):
        shown = log.run(f"dry-run {form}", [*send, *body, "--dry-run", "--print", form], env=env)
        if form != "curl":
            assert "Bearer ***" + API_KEY[-4:] in shown.stdout
    curl = log.run(
        "dry-run curl file",
        [*send, *body, "--dry-run", "--print", "curl", "--api-key-file", str(paths["apikey"])],
    )
    assert f"$(cat {paths['apikey']})" in curl.stdout
    wrong = {"GONKA_BROKER_API_KEY": WRONG_API_KEY}
    log.run("wrong key", [*send, *body, "-v"], code=4, env=wrong)
    log.run("wrong key json", [*send, *body, "-o", "json"], code=4, env=wrong)
    inputs = tmp_path / "in"
    write_bodies(inputs, 3)
    results = tmp_path / "results.jsonl"
    log.run("batch", [*send, "--dir", str(inputs), "--output-file", str(results), "-v"], env=env)
    log.run("batch wrong key", [*send, "--dir", str(inputs), "-q"], code=8, env=wrong)
    log.run("models", ["models", "--base-url", node.base_url, "-o", "json"], env=env)
    log.run(
        "models key file",
        ["models", "--base-url", node.base_url, "--api-key-file", str(paths["apikey"])],
    )
    assert log.leaked() == {}
    assert leaks_in_files(tmp_path, own=[paths[name] for name in OWN_SECRET_FILES]) == {}
    assert leaks("\n".join(node_log)) == set()


def test_real_processes_show_no_secret(
    ta: tuple[Any, list[str]], gateway: tuple[Any, list[str]], tmp_path: Path
) -> None:
    """Whole `gonka` processes (nothing swallowed by an in-process runner): a verbose send
    that cannot connect, a signed and a bearer dry-run, and `config show` print no secret."""
    paths = files(tmp_path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("GONKA_")}
    env = {
        **base,
        "GONKA_HOME": str(tmp_path / "home"),
        "GONKA_PRIVATE_KEY": KEY.to_hex(),
        "GONKA_BROKER_API_KEY": API_KEY,
    }
    gonka = [sys.executable, "-m", "gonka_cli"]
    body = ["--file", str(paths["body"])]
    runs = {
        "no connection": [
            *gonka,
            "send-request",
            "--auth",
            "signature",
            "--node-address",
            closed_port_url(),
            "--endpoint-account",
            KEY.address,
            *body,
            "--max-retries",
            "0",
            "-v",
        ],
        "signed dry-run": [
            *gonka,
            "send-request",
            "--auth",
            "signature",
            "--node-address",
            ta[0].url,
            *body,
            "--dry-run",
            "--print",
            "curl",
        ],
        "bearer dry-run": [
            *gonka,
            "send-request",
            "--auth",
            "bearer",
            "--base-url",
            gateway[0].base_url,
            *body,
            "--dry-run",
            "--print",
            "http",
        ],
        "config show": [*gonka, "config", "show", "-o", "json"],
    }
    codes = {"no connection": 6, "signed dry-run": 0, "bearer dry-run": 0, "config show": 0}
    for label, command in runs.items():
        done = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
        text = (done.stdout + done.stderr).decode("utf-8", "replace")
        assert done.returncode == codes[label], f"{label}: {text}"
        assert "Traceback" not in text
        assert leaks(text) == set(), label


def test_hostile_servers_get_no_secret_shown_or_stored(tmp_path: Path) -> None:
    """Issue 13's paths: a server echoing the Bearer key (single, -v, -o json, a batch with
    results and body files), a move to another origin, an answer over
    --max-response-bytes, a base URL with user-info, escape codes, and a key or mnemonic
    typed as the model: no secret on stdout or stderr, nor in any file written."""
    from tests.hostile_server import hostile_server

    paths = files(tmp_path)
    log = Transcript()
    env = {"GONKA_BROKER_API_KEY": API_KEY, "GONKA_MAX_RETRIES": "0"}
    body = ["--file", str(paths["body"])]
    inputs = tmp_path / "in"
    write_bodies(inputs, 3)
    with hostile_server() as server:
        echo = ["send-request", "--base-url", server.url("echo401")]
        log.run("echo", [*echo, *body, "-v"], code=4, env=env)
        log.run("echo json", [*echo, *body, "-o", "json"], code=4, env=env)
        log.run(
            "echo batch",
            [*echo, "--dir", str(inputs), "--output-file", str(tmp_path / "echo.jsonl"), "-v"],
            code=8,
            env=env,
        )
        moved = ["send-request", "--base-url", server.url("moved"), "--follow-moved", "-v"]
        log.run("moved", [*moved, *body], code=4, env=env)
        large = ["send-request", "--base-url", server.url("endless200"), "-v"]
        log.run("too large", [*large, *body, "--max-response-bytes", "1000"], code=6, env=env)
        userinfo = server.url("landing").replace("//", f"//u:{PASSPHRASE}@")
        log.run("user-info", ["send-request", "--base-url", userinfo, *body, "-o", "json"], env=env)
        log.run(
            "user-info batch",
            [
                "send-request",
                "--base-url",
                userinfo,
                "--dir",
                str(inputs),
                "--output-file",
                str(tmp_path / "landing.jsonl"),
                "--output-dir",
                str(tmp_path / "bodies"),
                "-v",
            ],
            env=env,
        )
        escapes = ["send-request", "--base-url", server.url("escapes"), *body, "-v"]
        log.run("escapes", escapes, code=4, env=env)
        landing = ["send-request", "--base-url", server.url("landing"), *body]
        log.run("model key", [*landing, "--model", KEY.to_hex()], code=2, env=env)
        log.run("model mnemonic", landing, code=2, env={**env, "GONKA_MODEL": MNEMONIC})
    assert log.leaked() == {}
    assert all("\x1b" not in text and "\x07" not in text for text in log.outputs.values())
    assert leaks_in_files(tmp_path, own=[paths[name] for name in OWN_SECRET_FILES]) == {}
    assert "Bearer ***" in (tmp_path / "echo.jsonl").read_text()
