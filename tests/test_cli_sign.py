"""`gonka sign` and `gonka verify` through the command line."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gonka_cli.cli import app
from tests import vectors as v

runner = CliRunner()
FIXED = ["--timestamp", str(v.TIMESTAMP), "--endpoint-account", v.TRANSFER_ADDRESS]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GONKA_PRIVATE_KEY", "GONKA_ADDRESS", "GONKA_KEYRING_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GONKA_HOME", str(tmp_path / "home"))


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(v.BODY)
    return path


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)


@pytest.mark.usefixtures("key_env")
@pytest.mark.parametrize(("scheme", "expected"), [("hash", v.SIG_HASH), ("raw", v.SIG_RAW)])
def test_sign_prints_the_vector_alone(body_file: Path, scheme: str, expected: str) -> None:
    """stdout is exactly the signature and a newline; stderr is empty."""
    result = runner.invoke(app, ["sign", "--file", str(body_file), *FIXED, "--scheme", scheme])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected + "\n"
    assert result.stderr == ""


@pytest.mark.usefixtures("key_env")
def test_sign_reads_stdin_and_text(body_file: Path) -> None:
    """--file - and a positional TEXT sign the same bytes as the file."""
    piped = runner.invoke(app, ["sign", "--file", "-", *FIXED], input=v.BODY)
    text = runner.invoke(app, ["sign", v.BODY.decode(), *FIXED])
    assert piped.stdout == text.stdout == v.SIG_HASH + "\n"


@pytest.mark.usefixtures("key_env")
def test_sign_json_output(body_file: Path) -> None:
    """--output json carries the signature, addresses, scheme, body hash and headers."""
    result = runner.invoke(app, ["sign", "-f", str(body_file), *FIXED, "-o", "json"])
    doc = json.loads(result.stdout)
    assert doc["signature"] == v.SIG_HASH
    assert doc["timestamp"] == v.TIMESTAMP
    assert doc["requester_address"] == v.PRIVATE_KEY_ADDRESS
    assert doc["transfer_address"] == v.TRANSFER_ADDRESS
    assert doc["scheme"] == "hash"
    assert doc["body_sha256"] == v.BODY_SHA256
    assert doc["headers"]["X-Timestamp"] == str(v.TIMESTAMP)
    assert "X-Transfer-Address" not in doc["headers"]


@pytest.mark.usefixtures("key_env")
def test_sign_header_lines(body_file: Path) -> None:
    """--output headers prints HTTP header lines."""
    result = runner.invoke(app, ["sign", "-f", str(body_file), *FIXED, "-o", "headers"])
    assert result.stdout.splitlines() == [
        "Content-Type: application/json",
        f"Authorization: {v.SIG_HASH}",
        f"X-Requester-Address: {v.PRIVATE_KEY_ADDRESS}",
        f"X-Timestamp: {v.TIMESTAMP}",
    ]


@pytest.mark.usefixtures("key_env")
def test_sign_default_timestamp_is_fresh(body_file: Path) -> None:
    """Without --timestamp, two signatures of the same body differ (fresh nanosecond stamps)."""
    first = json.loads(runner.invoke(app, ["sign", "-f", str(body_file), "-o", "json"]).stdout)
    second = json.loads(runner.invoke(app, ["sign", "-f", str(body_file), "-o", "json"]).stdout)
    assert second["timestamp"] > first["timestamp"] > 1_700_000_000 * 10**9
    assert first["signature"] != second["signature"]


def test_private_key_file(body_file: Path, tmp_path: Path) -> None:
    """--private-key-file is read when GONKA_PRIVATE_KEY is unset."""
    key_file = tmp_path / "key.hex"
    key_file.write_text("0x" + v.PRIVATE_KEY_HEX.upper() + "\n")
    result = runner.invoke(
        app, ["sign", "-f", str(body_file), *FIXED, "--private-key-file", str(key_file)]
    )
    assert result.stdout == v.SIG_HASH + "\n"


@pytest.mark.parametrize(("scheme", "sig"), [("hash", v.SIG_HASH), ("raw", v.SIG_RAW)])
def test_verify_accepts_vectors(body_file: Path, scheme: str, sig: str) -> None:
    """verify exits 0 for the published signatures, by address and by public key."""
    for who in (["--address", v.PRIVATE_KEY_ADDRESS], ["--pubkey", v.PRIVATE_KEY_PUBKEY_B64]):
        result = runner.invoke(
            app, ["verify", "-f", str(body_file), *FIXED, "--scheme", scheme, "-s", sig, *who]
        )
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (["-s", v.SIG_HASH_HIGH_S], "high-S"),
        (["--timestamp", str(v.TIMESTAMP + 1)], "not made by"),
        (["--address", v.PUBKEY_ADDRESS], "not made by"),
        (["--endpoint-account", v.PRIVATE_KEY_ADDRESS], "not made by"),
        (["--scheme", "raw"], "not made by"),
        (["-s", base64.b64encode(bytes(63)).decode()], "64 bytes"),
    ],
)
def test_verify_rejects_with_exit_3(body_file: Path, change: list[str], reason: str) -> None:
    """An invalid signature exits 3 with one line on stderr saying why."""
    args = [
        "verify",
        "-f",
        str(body_file),
        *FIXED,
        "-s",
        v.SIG_HASH,
        "--address",
        v.PRIVATE_KEY_ADDRESS,
    ]
    result = runner.invoke(app, [*args, *change])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_rejects_changed_body(tmp_path: Path) -> None:
    """A body one byte longer does not verify."""
    changed = tmp_path / "changed.json"
    changed.write_bytes(v.BODY + b"\n")
    result = runner.invoke(
        app,
        [
            "verify",
            "-f",
            str(changed),
            *FIXED,
            "-s",
            v.SIG_HASH,
            "--address",
            v.PRIVATE_KEY_ADDRESS,
        ],
    )
    assert result.exit_code == 3


def test_verify_json(body_file: Path) -> None:
    """--output json reports validity and the reason on stdout."""
    ok = runner.invoke(
        app,
        [
            "verify",
            "-f",
            str(body_file),
            *FIXED,
            "-s",
            v.SIG_HASH,
            "--address",
            v.PRIVATE_KEY_ADDRESS,
            "-o",
            "json",
        ],
    )
    bad = runner.invoke(
        app,
        [
            "verify",
            "-f",
            str(body_file),
            *FIXED,
            "-s",
            v.SIG_HASH_HIGH_S,
            "--address",
            v.PRIVATE_KEY_ADDRESS,
            "-o",
            "json",
        ],
    )
    assert json.loads(ok.stdout) == {"valid": True, "reason": None}
    assert bad.exit_code == 3
    assert json.loads(bad.stdout)["valid"] is False
    assert "high-S" in json.loads(bad.stdout)["reason"]


@pytest.mark.parametrize(
    ("args", "stdin", "code", "needle"),
    [
        (["sign", "--file", "/nonexistent/body.json"], None, 2, "no such file"),
        (["sign", "--file", "-"], b"", 2, "empty"),
        (["sign", "x", "--file", "y"], None, 2, "not both"),
        (["sign"], None, 2, "no request body"),
        (["sign", "x", "--endpoint-account", v.TRANSFER_ADDRESS[:-1] + "n"], None, 2, "checksum"),
        (["verify", "x", "-s", v.SIG_HASH], None, 2, "exactly one of --address"),
        (["verify", "x", "--address", v.PRIVATE_KEY_ADDRESS], None, 2, "--signature"),
        (["verify", "x", "-s", v.SIG_HASH, "--pubkey", "abc"], None, 2, "public key"),
    ],
)
def test_bad_inputs_exit_cleanly(
    args: list[str], stdin: bytes | None, code: int, needle: str, key_env: None
) -> None:
    """Bad input gives one clear line on stderr, a documented exit code and no traceback."""
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code == code
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("zz" * 32, "not hexadecimal"),
        (v.PRIVATE_KEY_HEX[:-1], "64 hex characters"),
        ("0" * 64, "out of range"),
    ],
)
def test_bad_key_exits_7_without_echo(
    monkeypatch: pytest.MonkeyPatch, value: str, needle: str
) -> None:
    """An invalid GONKA_PRIVATE_KEY is a configuration error (7) that never shows the key."""
    monkeypatch.setenv("GONKA_PRIVATE_KEY", value)
    result = runner.invoke(app, ["sign", "x"])
    assert result.exit_code == 7
    assert needle in result.stderr
    assert value not in result.stderr + result.stdout


def test_no_key_configured() -> None:
    """With no key at all, sign says what to set (exit 7)."""
    result = runner.invoke(app, ["sign", "x"])
    assert result.exit_code == 7
    assert "GONKA_PRIVATE_KEY" in result.stderr


def test_console_script_and_module(body_file: Path, tmp_path: Path) -> None:
    """`python -m gonka_cli sign` works as a real process and exits with the documented code."""
    env = {
        "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX,
        "PATH": "/usr/bin:/bin",
        "GONKA_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "gonka_cli", "sign", "-f", str(body_file), *FIXED],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, v.SIG_HASH + "\n", "")
    bad = subprocess.run(
        [sys.executable, "-m", "gonka_cli", "sign", "--file", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr


def test_sign_does_not_import_heavy_modules(body_file: Path, tmp_path: Path) -> None:
    """`gonka sign` imports neither the network, server and keystore libraries nor the other
    commands' modules (start-up stays lean)."""
    code = (
        "import sys\n"
        "from gonka_cli.cli import main\n"
        "sys.argv = ['gonka', 'sign', '-f', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('rich', 'httpx', 'httpx2', 'uvicorn', 'starlette', 'cryptography',"
        " 'mnemonic', 'bcrypt', 'nacl',"
        " 'asyncio', 'gonka_cli.cli.send', 'gonka_cli.cli.node', 'gonka_cli.devnode.config',"
        " 'gonka_cli.keys.keyring')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    env = {
        "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX,
        "PATH": "/usr/bin:/bin",
        "GONKA_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, str(body_file)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "HEAVY []" in done.stderr, done.stderr


def test_version_and_plain_help_when_piped(tmp_path: Path) -> None:
    """--version prints the installed version; piped --help is plain text listing every command."""
    env = {"PATH": "/usr/bin:/bin", "GONKA_HOME": str(tmp_path)}
    version = subprocess.run(
        [sys.executable, "-m", "gonka_cli", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert version.returncode == 0
    assert version.stdout.startswith("gonka-cli ")
    shown = subprocess.run(
        [sys.executable, "-m", "gonka_cli", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert shown.returncode == 0
    assert "\u256d" not in shown.stdout  # no rich panel borders when piped
    for command in ("send-request", "sign", "verify", "keys", "node", "endpoints", "config"):
        assert command in shown.stdout


def test_verify_takes_a_hex_public_key_with_or_without_0x(body_file: Path) -> None:
    """A real `gonka verify --pubkey` process: the vector's key as hex, bare or with 0x
    (as private keys are forgiven it), verifies the published signature; another
    signature is exit 3, not a misleading size error."""
    pubkey_hex = base64.b64decode(v.PRIVATE_KEY_PUBKEY_B64).hex()
    for spelling in (pubkey_hex, "0x" + pubkey_hex, "0X" + pubkey_hex.upper()):
        for sig, code in ((v.SIG_HASH, 0), (v.SIG_HASH_HIGH_S, 3)):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "gonka_cli",
                    "verify",
                    "-f",
                    str(body_file),
                    *FIXED,
                    "-s",
                    sig,
                    "--pubkey",
                    spelling,
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert done.returncode == code, (spelling, done.stderr)
            assert "bytes" not in done.stderr


def test_verify_from_json_of_another_document_names_it(body_file: Path) -> None:
    """A real `gonka verify --from-json` process given a JSON object that is not
    `gonka sign -o json` output (here the request body): exit 2, naming that document,
    not asking for the --from-json it was given."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gonka_cli",
            "verify",
            "--from-json",
            str(body_file),
            "-f",
            str(body_file),
            "--address",
            v.PRIVATE_KEY_ADDRESS,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: --from-json {body_file}: no signature in it")
    assert "gonka sign -o json" in done.stderr
