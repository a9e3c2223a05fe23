"""`gonka keys ...` and `gonka sign --key` through the command line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gonka_cli.cli import app
from gonka_cli.cli import keys as keys_cli
from gonka_cli.keys import SigningKey, hd, keystore
from tests import vectors as v
from tests.keystore_helpers import Prompts, isolate_keystore

runner = CliRunner()
SIGN = ["sign", "--timestamp", str(v.TIMESTAMP), "--endpoint-account", v.TRANSFER_ADDRESS]
OTHER_HEX = "11" * 32


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own fast keystore and no GONKA_* variables."""
    yield from isolate_keystore(monkeypatch, tmp_path)


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    """The keystore passphrase, given through GONKA_KEYRING_PASSPHRASE."""
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "pw")
    return "pw"


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    """The docs/protocol.md section 8 request body in a file."""
    path = tmp_path / "body.json"
    path.write_bytes(v.BODY)
    return path


def gonka(*args: str, input: str | None = None) -> Result:
    """Run the app in-process."""
    return runner.invoke(app, list(args), input=input)


def keys_dir() -> Path:
    """The keystore directory under the test's GONKA_HOME."""
    return Path(os.environ["GONKA_HOME"]) / "keys"


def _recover(name: str = "demo", *extra: str) -> Result:
    result = gonka("keys", "add", name, "--recover", *extra, input=v.MNEMONIC + "\n")
    assert result.exit_code == 0, result.stderr
    return result


# ---- the "done when", end to end in subprocesses (production KDF) -------------------


def test_done_when_in_real_processes(tmp_path: Path, body_file: Path) -> None:
    """Recover with piped words, show -a, a 0600 file without secrets, sign --key == the hex key."""
    env = {**os.environ, "GONKA_HOME": str(tmp_path / "real"), "GONKA_KEYRING_PASSPHRASE": "pw"}

    def run(*args: str, stdin: str = "", extra: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "gonka_cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**env, **(extra or {})},
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run("keys", "add", "demo", "--recover", stdin=v.MNEMONIC + "\n") == (
        v.PRIVATE_KEY_ADDRESS + "\n"
    )
    assert run("keys", "show", "demo", "-a") == v.PRIVATE_KEY_ADDRESS + "\n"
    key_file = tmp_path / "real" / "keys" / "demo.json"
    text = key_file.read_text().lower()
    assert v.PRIVATE_KEY_HEX not in text
    assert all(word not in text for word in v.MNEMONIC.split())
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text())["crypto"]["kdfparams"]["n"] >= 2**15
    signed_with_key = run(*SIGN, "--key", "demo", "--file", str(body_file))
    with_env = run(*SIGN, "--file", str(body_file), extra={"GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX})
    assert signed_with_key == with_env == v.SIG_HASH + "\n"


def test_sign_with_the_env_key_does_not_load_the_keystore(body_file: Path) -> None:
    """`gonka sign` with GONKA_PRIVATE_KEY imports neither the keystore, hd, mnemonic nor AEAD."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gonka_cli", *SIGN, "-f", str(body_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX},
        check=False,
        timeout=60,
    )
    assert done.stdout == v.SIG_HASH + "\n", done.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "gonka_cli.keys.selection" in imported  # the probe sees our modules
    for heavy in (
        "gonka_cli.keys.keystore",
        "gonka_cli.keys.hd",
        "mnemonic",
        "cryptography.hazmat.primitives.ciphers.aead",
    ):
        assert heavy not in imported


# ---- add -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("passphrase")
def test_add_prints_the_address_and_shows_the_mnemonic_once_on_stderr() -> None:
    """A new key: stdout is its address; the 24 words and a warning go to stderr, once."""
    result = gonka("keys", "add", "fresh")
    assert result.exit_code == 0, result.stderr
    address = result.stdout.strip()
    assert result.stdout == address + "\n"
    assert "write this mnemonic phrase down" in result.stderr
    words = [line for line in result.stderr.splitlines() if len(line.split()) == 24]
    assert len(words) == 1
    assert SigningKey.from_secret(hd.secret_from_mnemonic(words[0])).address == address
    assert "'fresh' is now the default key" in result.stderr
    shown = gonka("keys", "show", "fresh")
    assert words[0] not in shown.stdout + shown.stderr


@pytest.mark.usefixtures("passphrase")
def test_add_json_carries_the_mnemonic_and_no_backup_hides_it() -> None:
    """--output json puts the mnemonic in the stdout JSON; --no-backup shows it nowhere."""
    result = gonka("keys", "add", "one", "--output", "json")
    described = json.loads(result.stdout)
    assert described["hd_path"] == "m/44'/1200'/0'/0/0"
    assert len(described["mnemonic"].split()) == 24
    assert described["mnemonic"] not in result.stderr
    hidden = gonka("keys", "add", "two", "--no-backup", "--output", "json")
    assert json.loads(hidden.stdout)["mnemonic"] is None
    assert "mnemonic phrase" not in hidden.stderr


@pytest.mark.usefixtures("passphrase")
def test_recover_derives_the_vector_and_does_not_echo_the_words() -> None:
    """--recover with piped words gives the docs/protocol.md address and never prints the words."""
    result = _recover()
    assert result.stdout == v.PRIVATE_KEY_ADDRESS + "\n"
    assert "junk" not in result.stdout + result.stderr


@pytest.mark.usefixtures("passphrase")
@pytest.mark.parametrize(
    "options",
    [["--coin-type", "118"], ["--hd-path", "m/44'/118'/0'/0/0"]],
)
def test_recover_at_cosmos_coin_type(options: list[str]) -> None:
    """--coin-type 118 or the equivalent --hd-path gives the Cosmos-path address."""
    assert _recover("cosmos", *options).stdout == v.COSMOS_118_ADDRESS + "\n"
    shown = json.loads(gonka("keys", "show", "cosmos", "-o", "json").stdout)
    assert shown["hd_path"] == "m/44'/118'/0'/0/0"


@pytest.mark.usefixtures("passphrase")
def test_account_and_index_options_build_the_path() -> None:
    """--account and --index land in the BIP44 path that is stored."""
    _recover("acc", "--account", "2", "--index", "7")
    assert json.loads(gonka("keys", "show", "acc", "-o", "json").stdout)["hd_path"] == (
        "m/44'/1200'/2'/0/7"
    )


@pytest.mark.usefixtures("passphrase")
def test_recover_with_a_bip39_passphrase_from_the_next_line() -> None:
    """--bip39-passphrase reads it from the line after the words and derives another key."""
    result = gonka(
        "keys", "add", "p", "--recover", "--bip39-passphrase", input=v.MNEMONIC + "\nextra\n"
    )
    expected = SigningKey.from_secret(hd.secret_from_mnemonic(v.MNEMONIC, passphrase="extra"))
    assert result.stdout == expected.address + "\n"
    assert expected.address != v.PRIVATE_KEY_ADDRESS


@pytest.mark.usefixtures("passphrase")
@pytest.mark.parametrize(
    ("words", "problem"),
    [
        ("test test test", "has 3 words"),
        ("test test test test test test test test test test test jank", "word 12 is not"),
        ("test test test test test test test test test test test test", "checksum"),
    ],
)
def test_recover_with_bad_words_exits_2_without_echo(words: str, problem: str) -> None:
    """A wrong mnemonic is exit 2 with what is wrong; no word reaches the output; nothing stored."""
    result = gonka("keys", "add", "bad", "--recover", input=words + "\n")
    assert result.exit_code == 2
    assert problem in result.stderr
    assert "test" not in result.stdout + result.stderr.replace("keys", "")
    assert "jank" not in result.stderr
    assert not (keys_dir() / "bad.json").exists()


@pytest.mark.usefixtures("passphrase")
def test_an_existing_name_needs_force() -> None:
    """add/import over an existing name exits 7 unless --force, before asking for secrets."""
    _recover()
    again = gonka("keys", "import", "demo", input=OTHER_HEX)
    assert again.exit_code == 7
    assert "--force" in again.stderr
    forced = gonka("keys", "import", "demo", "--force", input=OTHER_HEX)
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout == SigningKey.from_hex(OTHER_HEX).address + "\n"


def test_interactive_add_prompts_for_words_and_passphrase_twice(
    monkeypatch: pytest.MonkeyPatch, body_file: Path
) -> None:
    """On a terminal: hidden prompts for the words and the passphrase (confirmed); later use in
    the same process does not ask again."""
    prompts = Prompts(v.MNEMONIC, "secret", "secret")
    monkeypatch.setattr(keys_cli, "_interactive", lambda: True)
    monkeypatch.setattr(keystore, "read_hidden", prompts)
    added = gonka("keys", "add", "demo", "--recover")
    assert added.stdout == v.PRIVATE_KEY_ADDRESS + "\n", added.stderr
    assert len(prompts.asked) == 3
    signed = gonka(*SIGN, "--key", "demo", "--file", str(body_file))
    assert signed.stdout == v.SIG_HASH + "\n"
    assert len(prompts.asked) == 3


# ---- import / export -------------------------------------------------------------------------


@pytest.mark.usefixtures("passphrase")
@pytest.mark.parametrize(
    "pasted",
    [
        v.PRIVATE_KEY_HEX,
        "0x" + v.PRIVATE_KEY_HEX,
        v.PRIVATE_KEY_HEX.upper(),
        f"  {v.PRIVATE_KEY_HEX}  \n\n",
        "0X" + v.PRIVATE_KEY_HEX.upper() + "\r\n",
    ],
)
def test_import_takes_inferenced_export_forms_and_export_round_trips(pasted: str) -> None:
    """The hex forms `inferenced keys export --unarmored-hex --unsafe` and users produce import;
    export --unsafe gives back 64 lowercase hex characters."""
    imported = gonka("keys", "import", "demo", input=pasted)
    assert imported.exit_code == 0, imported.stderr
    assert imported.stdout == v.PRIVATE_KEY_ADDRESS + "\n"
    exported = gonka("keys", "export", "demo", "--unarmored-hex", "--unsafe")
    assert exported.exit_code == 0, exported.stderr
    assert exported.stdout == v.PRIVATE_KEY_HEX + "\n"
    assert "private key" in exported.stderr


@pytest.mark.usefixtures("passphrase")
@pytest.mark.parametrize("pasted", ["", "zz" * 32, "ab" * 31, "00" * 32])
def test_import_rejects_bad_hex_with_exit_2(pasted: str) -> None:
    """Not hex, wrong length or out of range: exit 2 and a reason, without the input."""
    result = gonka("keys", "import", "demo", input=pasted)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the key read: ")
    if pasted:
        assert pasted not in result.stderr


@pytest.mark.usefixtures("passphrase")
def test_export_refuses_without_unsafe() -> None:
    """export without --unsafe exits 2 and prints nothing on stdout."""
    _recover()
    result = gonka("keys", "export", "demo")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--unsafe" in result.stderr


def test_wrong_passphrase_exits_7(monkeypatch: pytest.MonkeyPatch, body_file: Path) -> None:
    """export and sign --key with a wrong passphrase: exit 7, 'wrong passphrase', no output."""
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "right")
    _recover()
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "wrong")
    for args in (
        ["keys", "export", "demo", "--unsafe"],
        [*SIGN, "--key", "demo", "-f", str(body_file)],
    ):
        result = gonka(*args)
        assert result.exit_code == 7
        assert "wrong passphrase for key 'demo'" in result.stderr
        assert result.stdout == ""


def test_passphrase_file_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--passphrase-file encrypts on add and opens on export."""
    secret = tmp_path / "pass"
    secret.write_text("from-file\n")
    added = gonka("keys", "import", "demo", "--passphrase-file", str(secret), input=OTHER_HEX)
    assert added.exit_code == 0, added.stderr
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "from-file")
    assert gonka("keys", "export", "demo", "--unsafe").stdout == OTHER_HEX + "\n"


def test_unencrypted_keys_warn_at_every_use(body_file: Path) -> None:
    """--unencrypted needs no passphrase, and add, export and sign each warn about it."""
    added = gonka("keys", "import", "ci", "--unencrypted", input=v.PRIVATE_KEY_HEX)
    assert added.exit_code == 0, added.stderr
    exported = gonka("keys", "export", "ci", "--unsafe")
    signed = gonka(*SIGN, "--key", "ci", "--file", str(body_file))
    assert signed.stdout == v.SIG_HASH + "\n"
    for result in (added, exported, signed):
        assert "UNENCRYPTED" in result.stderr
    assert "unencrypted" in gonka("keys", "list").stdout


# ---- list / show / delete / rename / default ------------------------------------------------


@pytest.mark.usefixtures("passphrase")
def test_list_text_and_json() -> None:
    """list prints aligned name/address/notes rows; --output json the same as objects."""
    _recover("demo")
    gonka("keys", "import", "a-longer-name", input=OTHER_HEX)
    other = SigningKey.from_hex(OTHER_HEX).address
    result = gonka("keys", "list")
    assert result.stdout == (
        f"a-longer-name  {other}\ndemo           {v.PRIVATE_KEY_ADDRESS}  default\n"
    )
    listed = json.loads(gonka("keys", "list", "-o", "json").stdout)
    assert [(item["name"], item["default"], item["encrypted"]) for item in listed] == [
        ("a-longer-name", False, True),
        ("demo", True, True),
    ]


def test_list_of_an_empty_store() -> None:
    """No keys: nothing on stdout, a hint on stderr; JSON is an empty list."""
    result = gonka("keys", "list")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "gonka keys add" in result.stderr
    assert gonka("keys", "list", "-o", "json").stdout == "[]\n"


@pytest.mark.usefixtures("passphrase")
def test_a_corrupt_file_is_named_and_the_rest_still_work(body_file: Path) -> None:
    """list warns about a truncated file and lists the others; they still sign; show names it."""
    _recover()
    broken = keys_dir() / "broken.json"
    broken.write_text('{"format": "gonka-keys')
    listed = gonka("keys", "list")
    assert listed.exit_code == 0
    assert listed.stdout.startswith("demo ")
    assert str(broken) in listed.stderr
    assert gonka(*SIGN, "--key", "demo", "-f", str(body_file)).stdout == v.SIG_HASH + "\n"
    shown = gonka("keys", "show", "broken")
    assert shown.exit_code == 7
    assert str(broken) in shown.stderr
    assert "Traceback" not in shown.stderr + shown.stdout


@pytest.mark.usefixtures("passphrase")
def test_an_unreadable_key_file_can_be_deleted_with_yes() -> None:
    """delete refuses an unreadable file without -y, removes it with -y, keeps the others."""
    _recover()
    broken = keys_dir() / "broken.json"
    broken.write_text('{"format": "gonka-keys')
    refused = gonka("keys", "delete", "broken")
    assert refused.exit_code == 2
    assert "-y" in refused.stderr
    assert broken.exists()
    deleted = gonka("keys", "delete", "broken", "-y")
    assert deleted.exit_code == 0, deleted.stderr
    assert not broken.exists()
    assert gonka("keys", "list").stdout.startswith("demo ")
    assert gonka("keys", "delete", "missing", "-y").exit_code == 7


@pytest.mark.usefixtures("passphrase")
def test_show_forms() -> None:
    """show: key/value lines, -a the address, -p the base64 pubkey, json; by name or address."""
    _recover()
    assert gonka("keys", "show", "demo", "-a").stdout == v.PRIVATE_KEY_ADDRESS + "\n"
    assert gonka("keys", "show", "demo", "-p").stdout == v.PRIVATE_KEY_PUBKEY_B64 + "\n"
    assert gonka("keys", "show", v.PRIVATE_KEY_ADDRESS, "-a").stdout == v.PRIVATE_KEY_ADDRESS + "\n"
    text = gonka("keys", "show", "demo").stdout
    assert f"address: {v.PRIVATE_KEY_ADDRESS}\n" in text
    assert "encrypted: yes\n" in text
    shown = json.loads(gonka("keys", "show", "demo", "--output", "json").stdout)
    assert shown["pubkey"] == v.PRIVATE_KEY_PUBKEY_B64
    missing = gonka("keys", "show", "nope")
    assert missing.exit_code == 7
    assert "no key named 'nope'" in missing.stderr


@pytest.mark.usefixtures("passphrase")
def test_delete_asks_unless_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped without -y: refused (exit 2); on a terminal 'n' keeps it; -y deletes."""
    _recover()
    refused = gonka("keys", "delete", "demo")
    assert refused.exit_code == 2
    assert (keys_dir() / "demo.json").exists()
    monkeypatch.setattr(keys_cli, "_interactive", lambda: True)
    kept = gonka("keys", "delete", "demo", input="n\n")
    assert kept.exit_code == 1
    assert (keys_dir() / "demo.json").exists()
    deleted = gonka("keys", "delete", "demo", "-y")
    assert deleted.exit_code == 0, deleted.stderr
    assert not (keys_dir() / "demo.json").exists()
    assert gonka("keys", "default").exit_code == 7


@pytest.mark.usefixtures("passphrase")
def test_rename_and_default(body_file: Path) -> None:
    """rename keeps the key and its default status; default NAME switches what signs."""
    _recover()
    gonka("keys", "import", "other", input=OTHER_HEX)
    assert gonka("keys", "rename", "demo", "main").exit_code == 0
    assert gonka("keys", "default").stdout == "main\n"
    assert gonka(*SIGN, "-f", str(body_file)).stdout == v.SIG_HASH + "\n"
    assert gonka("keys", "default", "other").exit_code == 0
    assert gonka("keys", "default").stdout == "other\n"
    json_out = gonka(*SIGN, "-f", str(body_file), "-o", "json").stdout
    assert json.loads(json_out)["requester_address"] == SigningKey.from_hex(OTHER_HEX).address
    assert gonka("keys", "default", "ghost").exit_code == 7


# ---- sign with stored keys -------------------------------------------------------------------


@pytest.mark.usefixtures("passphrase")
def test_sign_with_key_or_account_address_equals_the_env_key(
    monkeypatch: pytest.MonkeyPatch, body_file: Path
) -> None:
    """--key NAME, --key ADDRESS and --account-address sign exactly as GONKA_PRIVATE_KEY does."""
    _recover()
    gonka("keys", "import", "other", input=OTHER_HEX)
    gonka("keys", "default", "other")
    for selector in (
        ["--key", "demo"],
        ["--key", v.PRIVATE_KEY_ADDRESS],
        ["--account-address", v.PRIVATE_KEY_ADDRESS],
    ):
        result = gonka(*SIGN, *selector, "--file", str(body_file))
        assert result.stdout == v.SIG_HASH + "\n", result.stderr
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    assert gonka(*SIGN, "--file", str(body_file)).stdout == v.SIG_HASH + "\n"


@pytest.mark.usefixtures("passphrase")
def test_sign_refuses_a_gonka_address_mismatch(
    monkeypatch: pytest.MonkeyPatch, body_file: Path
) -> None:
    """GONKA_ADDRESS that is not the signing key's address: exit 7, nothing signed."""
    _recover()
    monkeypatch.setenv("GONKA_ADDRESS", v.PUBKEY_ADDRESS)
    result = gonka(*SIGN, "--key", "demo", "--file", str(body_file))
    assert result.exit_code == 7
    assert result.stdout == ""
    assert "GONKA_ADDRESS" in result.stderr


def test_sign_with_nothing_configured_explains(body_file: Path) -> None:
    """No key anywhere: exit 7 and a hint naming --key and `gonka keys add`."""
    result = gonka(*SIGN, "--file", str(body_file))
    assert result.exit_code == 7
    assert "--key" in result.stderr
    assert "gonka keys add" in result.stderr


# ---- no secret in any output ----------------------------------------------------------------


def test_no_command_prints_a_secret_except_export_and_the_one_time_mnemonic(
    monkeypatch: pytest.MonkeyPatch, body_file: Path
) -> None:
    """Every keys command with a known key and mnemonic: neither appears in any output except
    `export --unsafe` (the hex, on stdout) and the new-key mnemonic display (once)."""
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "pw")
    hex_forms = (v.PRIVATE_KEY_HEX, v.PRIVATE_KEY_HEX.upper())
    outputs: dict[str, Result] = {}

    def run(label: str, *args: str, input: str | None = None) -> Result:
        outputs[label] = gonka(*args, input=input)
        return outputs[label]

    fresh = run("add fresh", "keys", "add", "fresh")
    new_words = next(line for line in fresh.stderr.splitlines() if len(line.split()) == 24)
    run("add fresh again", "keys", "add", "fresh", input=v.MNEMONIC)
    run("recover", "keys", "add", "demo", "--recover", input=v.MNEMONIC)
    run(
        "recover json",
        "keys",
        "add",
        "demo2",
        "--recover",
        "--coin-type",
        "118",
        "-o",
        "json",
        input=v.MNEMONIC,
    )
    run("recover bad", "keys", "add", "bad", "--recover", input=v.MNEMONIC.replace("junk", "jank"))
    run("recover short", "keys", "add", "bad", "--recover", input=" ".join(v.MNEMONIC.split()[:5]))
    run("import dup", "keys", "import", "dup", input=v.PRIVATE_KEY_HEX)
    run("import bad", "keys", "import", "bad", input=v.PRIVATE_KEY_HEX[:-2] + "zz")
    run("list", "keys", "list")
    run("list json", "keys", "list", "-o", "json")
    for form in ([], ["-a"], ["-p"], ["-o", "json"]):
        run(f"show {form}", "keys", "show", "demo", *form)
    run("export refused", "keys", "export", "demo")
    run("sign", *SIGN, "--key", "demo", "-f", str(body_file))
    run("sign json", *SIGN, "--key", "demo", "-f", str(body_file), "-o", "json")
    run("rename", "keys", "rename", "demo", "main")
    run("default", "keys", "default", "main")
    run("default show", "keys", "default")
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "wrong")
    run("export wrong passphrase", "keys", "export", "main", "--unsafe")
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "pw")
    exported = run("export", "keys", "export", "main", "--unsafe")
    run("delete", "keys", "delete", "main", "-y")
    run("import", "keys", "import", "back", input=f"0x{v.PRIVATE_KEY_HEX.upper()}\n")

    assert exported.stdout == v.PRIVATE_KEY_HEX + "\n"
    for label, result in outputs.items():
        streams = {"stdout": result.stdout, "stderr": result.stderr}
        for stream, text in streams.items():
            allowed_hex = label == "export" and stream == "stdout"
            allowed_words = label == "add fresh" and stream == "stderr"
            if not allowed_hex:
                assert all(form not in text for form in hex_forms), (label, stream)
            assert v.MNEMONIC not in text, (label, stream)
            # a fresh random mnemonic may itself hold the word "junk" (about 1 run in 85)
            rest = text.replace(new_words, "") if allowed_words else text
            assert "junk" not in rest, (label, stream)
            assert "jank" not in rest, (label, stream)
            if not allowed_words:
                assert new_words not in text, (label, stream)
    assert fresh.stderr.count(new_words) == 1
