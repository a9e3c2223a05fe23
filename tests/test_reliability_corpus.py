"""Bad input corpus: malformed inputs across every command, each refused cleanly.

For each input the contract of the README's exit-code table: the documented exit code, one
``error:`` line on stderr (and at most a ``hint:`` line), nothing on stdout, no traceback,
and a dev node that received nothing. Inputs that belong to a batch (a JSONL line, a file
in a directory) fail alone instead: one ``invalid_input`` result line each, exit 8, and
still nothing sent. (Tests run as root, where chmod 000 does not stop reads: unreadable
files are a directory given as a file, and a FIFO inside a batch directory.)
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bech32
import pytest
from typer.testing import CliRunner, Result

from gonka_cli.cli import app
from gonka_cli.devnode import NodeConfig, start_node
from tests import vectors as v
from tests.keystore_helpers import isolate_keystore

runner = CliRunner()
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
GOOD = json.dumps(CHAT).encode()
DEEP = b"[" * 100_000
BAD_CHECKSUM = v.PUBKEY_ADDRESS[:-1] + ("m" if v.PUBKEY_ADDRESS[-1] != "m" else "n")
COSMOS_ADDRESS = bech32.bech32_encode("cosmos", bech32.convertbits(bytes(20), 8, 5) or [])
SEND = ("send-request", "--node-address", "{node}")
VERIFY = ("verify", "--file", "{tmp}/good.json", "--timestamp", str(v.TIMESTAMP))
BIP39_BAD_CHECKSUM = " ".join(["abandon"] * 12)
UNKNOWN_WORD = " ".join(["abandon"] * 11 + ["gonkaa"])


def _twenty_megabytes() -> bytes:
    filler = "x" * (20 * 1024 * 1024)
    return json.dumps({**CHAT, "messages": [{"role": "user", "content": filler}]}).encode()


def _binary() -> bytes:
    return b"\x80" + random.Random(7).randbytes(255)  # noqa: S311  # fixed junk, not secrets


def _stored_key(tmp: Path) -> None:
    """A key named k in the keystore, encrypted with the passphrase "right"."""
    stored = runner.invoke(
        app,
        ["keys", "import", "k"],
        input=v.PRIVATE_KEY_HEX + "\n",
        env={"GONKA_KEYRING_PASSPHRASE": "right"},
    )
    assert stored.exit_code == 0, stored.stderr


def _corrupt_key(tmp: Path) -> None:
    _stored_key(tmp)
    path = tmp / "home" / "keys" / "k.json"
    path.write_bytes(path.read_bytes()[:40])


def _bad_config(tmp: Path) -> None:
    (tmp / "home").mkdir(exist_ok=True)
    (tmp / "home" / "config.toml").write_text("[profiles.default\nsource_url = 1\n")


@dataclass(frozen=True)
class Case:
    """One malformed input: the command line, what it gets, and what must come back.

    `args` may name ``{node}`` (the dev node's URL) and ``{tmp}`` (the test's directory,
    which holds good.json, adir/ and whatever `files` adds); `env` adds or (with None)
    removes variables; `setup` prepares the keystore or config.
    """

    args: tuple[str, ...]
    code: int
    message: str
    files: Mapping[str, bytes | Callable[[], bytes]] = field(default_factory=dict)
    stdin: str | None = None
    env: Mapping[str, str | None] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


def body(content: bytes | Callable[[], bytes], *extra: str, code: int = 2, message: str) -> Case:
    """A request body file sent with `gonka send-request --file`."""
    return Case(
        (*SEND, "--file", "{tmp}/body.json", *extra), code, message, files={"body.json": content}
    )


CASES: dict[str, Case] = {
    # request bodies
    "invalid-json": body(b'{"model": "echo", "messages": [', message="not valid JSON"),
    "non-utf8": body(b'\xff\xfe{"model": "echo"}', message="not UTF-8"),
    "binary": body(_binary, message="not UTF-8"),
    "empty": body(b"", message="is empty"),
    "whitespace-only": body(b" \n\t ", message="not valid JSON"),
    "twenty-megabytes": body(_twenty_megabytes, message="over 10 MiB"),
    "messages-not-a-list": body(b'{"model": "echo", "messages": "hi"}', message='"messages"'),
    "messages-empty": body(b'{"model": "echo", "messages": []}', message='"messages"'),
    "messages-item-not-object": body(
        b'{"model": "echo", "messages": [1]}', message="messages[0] must be an object"
    ),
    "no-model": body(b'{"messages": [{"role": "user", "content": "hi"}]}', message="no model"),
    "model-not-text": body(b'{"model": 5, "messages": [{"role": "user"}]}', message="no model"),
    "array-body": body(b"[1, 2]", message="must be a JSON object"),
    "deeply-nested": body(DEEP, message="nested too deeply"),
    "huge-integer": body(b'{"model": "echo", "n": ' + b"9" * 5000 + b"}", message="digits"),
    "stdin-empty": Case((*SEND, "--file", "-"), 2, "<stdin>: the request body is empty", stdin=""),
    "text-and-file": Case((*SEND, "hi", "--file", "{tmp}/good.json"), 2, "not both"),
    "directory-as-file": Case((*SEND, "--file", "{tmp}/adir"), 2, "is a directory"),
    "missing-file": Case((*SEND, "--file", "{tmp}/nope.json"), 2, "no such file"),
    # batch sources
    "dir-without-json": Case((*SEND, "--dir", "{tmp}/adir"), 2, "no files match '*.json'"),
    "dir-is-a-file": Case((*SEND, "--dir", "{tmp}/good.json"), 2, "not a directory"),
    "jsonl-is-a-dir": Case((*SEND, "--jsonl", "{tmp}/adir"), 2, "cannot read"),
    "jsonl-empty": Case(
        (*SEND, "--jsonl", "{tmp}/e.jsonl"), 2, "no request lines", files={"e.jsonl": b""}
    ),
    "jsonl-blank-lines": Case(
        (*SEND, "--jsonl", "{tmp}/b.jsonl"), 2, "no request lines", files={"b.jsonl": b"\n  \n\n"}
    ),
    "jsonl-stdin-empty": Case((*SEND, "--jsonl", "-"), 2, "<stdin>: no request lines", stdin=""),
    # flag values
    "set-without-equals": Case((*SEND, "--file", "{tmp}/good.json", "--set", "x"), 2, "KEY=JSON"),
    "set-not-json": Case(
        (*SEND, "--file", "{tmp}/good.json", "--set", "temperature=hot"), 2, "not JSON"
    ),
    "set-into-a-list": Case(
        (*SEND, "--file", "{tmp}/good.json", "--set", "messages.x=1"), 2, "non-object"
    ),
    "set-too-deep": Case(
        (*SEND, "--file", "{tmp}/good.json", "--set", "x=" + "[" * 100_000), 2, "nested too deeply"
    ),
    "shard-zero": Case(
        (*SEND, "--dir", "{tmp}/in", "--shard", "0/2"),
        2,
        "between 1 and N",
        files={"in/a.json": GOOD},
    ),
    "shard-words": Case(
        (*SEND, "--dir", "{tmp}/in", "--shard", "two/4"),
        2,
        "expected K/N",
        files={"in/a.json": GOOD},
    ),
    "max-tokens-zero": Case(
        (*SEND, "--file", "{tmp}/good.json", "--max-tokens", "0"), 2, "'--max-tokens'"
    ),
    "read-timeout-nan": Case(
        (*SEND, "--file", "{tmp}/good.json", "--read-timeout", "nan"), 2, "positive numbers"
    ),
    "timeout-negative": Case(
        (*SEND, "--file", "{tmp}/good.json", "--timeout", "-1"), 2, "positive numbers"
    ),
    "rate-nan": Case(
        (*SEND, "--dir", "{tmp}/in", "--rate", "nan"),
        2,
        "--rate must be",
        files={"in/a.json": GOOD},
    ),
    "concurrency-zero": Case(
        (*SEND, "--dir", "{tmp}/in", "-j", "0"), 2, "'--concurrency'", files={"in/a.json": GOOD}
    ),
    "print-without-dry-run": Case(
        (*SEND, "--file", "{tmp}/good.json", "--print", "curl"), 2, "--print goes with --dry-run"
    ),
    "unknown-option": Case(("--bogus",), 2, "No such option: --bogus"),
    "unknown-command": Case(("bogus",), 2, "No such command 'bogus'"),
    # URLs and addresses
    "url-not-http": Case(
        ("send-request", "--node-address", "ftp://x", "--file", "{tmp}/good.json"), 2, "http(s)"
    ),
    "url-open-bracket": Case(
        ("send-request", "--node-address", "http://[::1", "--file", "{tmp}/good.json"),
        2,
        "not a valid URL",
    ),
    "url-port-too-big": Case(
        ("send-request", "--node-address", "http://127.0.0.1:99999", "--file", "{tmp}/good.json"),
        2,
        "Port out of range",
    ),
    "url-no-host": Case(
        ("send-request", "--node-address", "http://:80", "--file", "{tmp}/good.json"),
        2,
        "has no host name",
    ),
    "endpoint-bad-checksum": Case(
        ("send-request", "--endpoint", "{node};" + BAD_CHECKSUM, "--file", "{tmp}/good.json"),
        2,
        "bad checksum",
    ),
    "endpoint-account-bad-checksum": Case(
        (*SEND, "--endpoint-account", BAD_CHECKSUM, "--file", "{tmp}/good.json"), 2, "checksum"
    ),
    "sign-other-prefix": Case(
        ("sign", "--file", "{tmp}/good.json", "--endpoint-account", COSMOS_ADDRESS),
        2,
        "prefix 'cosmos'",
    ),
    "account-bad-address": Case(("account", "gonka1xyz", "--node-address", "{node}"), 2, "bech32"),
    # keys, passphrases, configuration
    "private-key-not-hex": Case(
        ("sign", "--file", "{tmp}/good.json"),
        7,
        "not hexadecimal",
        env={"GONKA_PRIVATE_KEY": "not-a-key"},
    ),
    "private-key-short": Case(
        (*SEND, "--file", "{tmp}/good.json"),
        7,
        "64 hex characters",
        env={"GONKA_PRIVATE_KEY": "abcd"},
    ),
    "private-key-zero": Case(
        ("sign", "--file", "{tmp}/good.json"),
        7,
        "out of range",
        env={"GONKA_PRIVATE_KEY": "00" * 32},
    ),
    "private-key-file-is-a-dir": Case(
        ("sign", "--file", "{tmp}/good.json", "--private-key-file", "{tmp}/adir"),
        2,
        "cannot read the key file",
        env={"GONKA_PRIVATE_KEY": None},
    ),
    "address-mismatch": Case(
        (*SEND, "--file", "{tmp}/good.json"),
        7,
        "but the signing key's address is",
        env={"GONKA_ADDRESS": v.PUBKEY_ADDRESS},
    ),
    "unknown-profile": Case(
        (*SEND, "--file", "{tmp}/good.json", "--profile", "nope"), 7, "no profile 'nope'"
    ),
    "corrupt-config": Case(
        (*SEND, "--file", "{tmp}/good.json"), 7, "not valid TOML", setup=_bad_config
    ),
    "corrupt-keystore-file": Case(
        ("sign", "--file", "{tmp}/good.json", "--key", "k"),
        7,
        "corrupt key file",
        setup=_corrupt_key,
    ),
    "wrong-passphrase": Case(
        ("sign", "--file", "{tmp}/good.json", "--key", "k"),
        7,
        "wrong passphrase",
        env={"GONKA_KEYRING_PASSPHRASE": "wrong"},
        setup=_stored_key,
    ),
    "passphrase-file-is-a-dir": Case(
        ("sign", "--file", "{tmp}/good.json", "--key", "k", "--passphrase-file", "{tmp}/adir"),
        7,
        "cannot read the passphrase file",
        setup=_stored_key,
    ),
    "mnemonic-two-words": Case(
        ("keys", "add", "m", "--recover"), 2, "has 2 words", stdin="foo bar\n"
    ),
    "mnemonic-bad-checksum": Case(
        ("keys", "add", "m", "--recover"), 2, "checksum", stdin=BIP39_BAD_CHECKSUM + "\n"
    ),
    "mnemonic-unknown-word": Case(
        ("keys", "add", "m", "--recover"), 2, "word 12 is not in", stdin=UNKNOWN_WORD + "\n"
    ),
    "import-not-hex": Case(("keys", "import", "m"), 2, "not hexadecimal", stdin="zz\n"),
    "key-name-path": Case(("keys", "add", "../m"), 2, "invalid key name"),
    "export-without-unsafe": Case(
        ("keys", "export", "k"), 2, "refusing without --unsafe", setup=_stored_key
    ),
    # signatures
    "signature-not-base64": Case(
        (*VERIFY, "--signature", "!!!", "--address", v.PRIVATE_KEY_ADDRESS), 3, "not valid base64"
    ),
    "signature-short": Case(
        (*VERIFY, "--signature", "AAAA", "--address", v.PRIVATE_KEY_ADDRESS), 3, "64 bytes"
    ),
    "signature-high-s": Case(
        (
            "verify",
            "--file",
            "{tmp}/vector.json",
            "--timestamp",
            str(v.TIMESTAMP),
            "--endpoint-account",
            v.TRANSFER_ADDRESS,
            "--signature",
            v.SIG_HASH_HIGH_S,
            "--address",
            v.PRIVATE_KEY_ADDRESS,
        ),
        3,
        "high-S",
        files={"vector.json": v.BODY},
    ),
    "signature-other-signer": Case(
        (*VERIFY, "--signature", v.SIG_HASH, "--address", v.PUBKEY_ADDRESS), 3, "not made by"
    ),
    "pubkey-garbage": Case((*VERIFY, "--signature", v.SIG_HASH, "--pubkey", "zz"), 2, "neither"),
    "verify-address-bad-checksum": Case(
        (*VERIFY, "--signature", v.SIG_HASH, "--address", BAD_CHECKSUM), 2, "bad checksum"
    ),
}


@pytest.fixture(scope="module")
def node() -> Iterator[Any]:
    """One fault-free TA that every case could reach, and must not."""
    with start_node(NodeConfig()) as running:
        yield running


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Own GONKA_HOME, cheap scrypt, no prompts; a signing key in the environment."""
    yield from isolate_keystore(monkeypatch, tmp_path)


def materialize(case: Case, tmp: Path, node_url: str) -> list[str]:
    """Write the case's files (plus good.json and an adir/ with no JSON); its arguments."""
    (tmp / "good.json").write_bytes(GOOD)
    (tmp / "adir").mkdir()
    (tmp / "adir" / "notes.txt").write_text("not a request\n")
    for name, content in case.files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(content() if callable(content) else content)
    if case.setup is not None:
        case.setup(tmp)
    return [arg.format(node=node_url, tmp=tmp) for arg in case.args]


def assert_refused_cleanly(result: Result, code: int, message: str) -> None:
    """The contract: exit code, one error line (+ a hint), empty stdout, no traceback."""
    assert result.exit_code == code, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_refused_cleanly_and_nothing_is_sent(
    name: str, node: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each malformed input: its documented exit code, one error line (and at most a hint)
    naming the problem, nothing on stdout, no traceback, and no request at the node."""
    case = CASES[name]
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    args = materialize(case, tmp_path, node.url)
    before = node.stats.received
    result = runner.invoke(app, args, input=case.stdin, env=dict(case.env))
    assert_refused_cleanly(result, case.code, case.message)
    assert node.stats.received == before


def test_the_corpus_is_at_least_thirty_inputs_wide() -> None:
    """The issue asks for at least 30 malformed inputs across commands."""
    commands = {case.args[0] for case in CASES.values()}
    assert len(CASES) >= 30
    assert {"send-request", "sign", "verify", "keys", "account"} <= commands


# --- inputs of a batch: each fails alone, nothing is sent ------------------------------

BAD_LINES: dict[str, tuple[bytes, str]] = {
    "not-json": (b"not json", "not valid JSON"),
    "not-utf8": (b'{"model": "\xff"}', "not UTF-8"),
    "array": (b"[1, 2]", "expected a JSON object"),
    "deep": (b'{"custom_id": "d", "body": ' + DEEP + b"}", "nested too deeply"),
    "method": (
        b'{"custom_id": "m", "method": "GET", "url": "/v1/chat/completions", "body": {}}',
        "method must be POST",
    ),
    "url": (b'{"custom_id": "u", "url": "/v1/embeddings", "body": {}}', "is not supported"),
    "body-not-object": (b'{"custom_id": "b", "body": []}', "body must be a JSON object"),
    "custom-id-number": (b'{"custom_id": 7, "body": {}}', "custom_id must be a non-empty"),
    "messages-not-list": (b'{"model": "echo", "messages": "hi"}', '"messages"'),
    "no-model": (b'{"custom_id": "n", "body": {"messages": [{"role": "user"}]}}', "no model"),
}


def assert_batch_failed_alone(result: Result, out: Path, count: int) -> list[dict[str, Any]]:
    """Exit 8 with the summary's error and hint last, no traceback; the results lines."""
    assert result.exit_code == 8, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    tail = result.stderr.splitlines()[-2:]
    assert tail[0] == f"error: {count} of {count} request(s) failed", result.stderr
    assert tail[1].startswith("hint: ")
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == count
    assert {record["error"]["code"] for record in records} == {"invalid_input"}
    return records


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_a_bad_jsonl_line_fails_alone_and_is_not_sent(name: str, node: Any, tmp_path: Path) -> None:
    """A JSONL line that cannot be sent: one invalid_input line naming it, exit 8, no POST."""
    line, message = BAD_LINES[name]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(b"\n" + line + b"\n")
    out = tmp_path / "out.jsonl"
    args = ["send-request", "--node-address", node.url, "--jsonl", str(jsonl)]
    before = node.stats.received
    result = runner.invoke(
        app, [*args, "--output-file", str(out), "-q"], env={"GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX}
    )
    (record,) = assert_batch_failed_alone(result, out, 1)
    assert f"{jsonl} line 2" in record["error"]["message"]
    assert message in record["error"]["message"]
    assert node.stats.received == before


def test_unreadable_and_malformed_files_in_a_directory_fail_alone(
    node: Any, tmp_path: Path
) -> None:
    """A FIFO (which would block a read forever), an empty, a binary and a truncated file:
    one invalid_input line each, exit 8, nothing sent; a directory named *.json is skipped."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    os.mkfifo(inputs / "fifo.json")
    (inputs / "folder.json").mkdir()
    (inputs / "empty.json").write_bytes(b"")
    (inputs / "binary.json").write_bytes(_binary())
    (inputs / "truncated.json").write_bytes(GOOD[:-3])
    out = tmp_path / "out.jsonl"
    args = ["send-request", "--node-address", node.url, "--dir", str(inputs), "-q"]
    before = node.stats.received
    result = runner.invoke(
        app, [*args, "--output-file", str(out)], env={"GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX}
    )
    records = assert_batch_failed_alone(result, out, 4)
    reasons = {record["custom_id"]: record["error"]["message"] for record in records}
    assert "not a regular file" in reasons["fifo.json"]
    assert "empty request body" in reasons["empty.json"]
    assert "not UTF-8" in reasons["binary.json"]
    assert "not valid JSON" in reasons["truncated.json"]
    assert "folder.json" not in reasons
    assert node.stats.received == before
