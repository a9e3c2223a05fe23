"""`gonka sign` and `gonka verify` agree, in real processes: the timestamp is said, the
empty transfer address is warned about, and `sign -o json | verify --from-json -` is one
pipe that fails (exit 3) when the body changed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests import vectors as v

GONKA = f"{shlex.quote(sys.executable)} -m gonka_cli"


def shell(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """A shell pipeline of gonka commands, with the vectors' private key in the environment."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GONKA_HOME": str(home),
        "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX,
    }
    return subprocess.run(
        ["sh", "-c", command],  # noqa: S607  # the system shell, to run a real pipe
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


@pytest.fixture
def body(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(v.BODY)
    return path


def test_sign_json_pipes_into_verify(body: Path, tmp_path: Path) -> None:
    """The done-when pipe exits 0; with the body changed after signing, 3 and the reason."""
    f = shlex.quote(str(body))
    pipe = (
        f"{GONKA} sign --file {f} --endpoint-account {v.TRANSFER_ADDRESS} -o json"
        f" | {GONKA} verify --from-json - --file {f} --address {v.PRIVATE_KEY_ADDRESS}"
    )
    assert shell(pipe, tmp_path).returncode == 0
    signed = tmp_path / "signed.json"
    made = shell(
        f"{GONKA} sign --file {f} --endpoint-account {v.TRANSFER_ADDRESS} -o json > {signed}",
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    body.write_bytes(v.BODY + b" ")
    check = f"{GONKA} verify --from-json {signed} --file {f} --address {v.PRIVATE_KEY_ADDRESS}"
    changed = shell(check, tmp_path)
    assert changed.returncode == 3
    assert "not the one that was signed" in changed.stderr
    body.write_bytes(v.BODY)
    overridden = shell(check + " --timestamp 5", tmp_path)  # a flag overrides the document
    assert overridden.returncode == 3


def test_from_json_reads_the_vectors(body: Path, tmp_path: Path) -> None:
    """A hand-written document with the published vector verifies; its scheme is honoured."""
    for scheme, signature in (("hash", v.SIG_HASH), ("raw", v.SIG_RAW)):
        document = tmp_path / f"{scheme}.json"
        document.write_text(
            json.dumps(
                {
                    "signature": signature,
                    "timestamp": v.TIMESTAMP,
                    "transfer_address": v.TRANSFER_ADDRESS,
                    "scheme": scheme,
                }
            )
        )
        done = shell(
            f"{GONKA} verify --from-json {document} -f {body} --address {v.PRIVATE_KEY_ADDRESS}",
            tmp_path,
        )
        assert done.returncode == 0, done.stderr


def test_sign_says_its_timestamp_and_verify_says_it_matters(body: Path, tmp_path: Path) -> None:
    """SIG=$(gonka sign) reports the timestamp on stderr; verify without it fails with the
    hint, and with it succeeds."""
    f = shlex.quote(str(body))
    signed = shell(f"{GONKA} sign --file {f} --endpoint-account {v.TRANSFER_ADDRESS}", tmp_path)
    assert signed.returncode == 0, signed.stderr
    stamp = signed.stderr.split("timestamp: ")[1].split()[0]
    assert int(stamp) > 1_700_000_000 * 10**9
    verify = (
        f"{GONKA} verify --file {f} -s {shlex.quote(signed.stdout.strip())} "
        f"--address {v.PRIVATE_KEY_ADDRESS} --endpoint-account {v.TRANSFER_ADDRESS}"
    )
    missing = shell(verify, tmp_path)
    assert missing.returncode == 3
    assert "the timestamp is part of the signed message" in missing.stderr
    assert "--from-json" in missing.stderr
    assert shell(verify + f" --timestamp {stamp}", tmp_path).returncode == 0


def test_sign_warns_without_a_transfer_address(body: Path, tmp_path: Path) -> None:
    """No --endpoint-account: a warning on stderr in every format, the data on stdout intact."""
    for form in ("signature", "json", "headers"):
        done = shell(f"{GONKA} sign --file {body} --timestamp 1 -o {form}", tmp_path)
        assert done.returncode == 0, done.stderr
        assert "warning: no --endpoint-account" in done.stderr
        assert "warning" not in done.stdout
    headers = shell(f"{GONKA} sign --file {body} -o headers", tmp_path).stdout
    assert "X-Timestamp: " in headers


def test_from_json_refuses_bad_documents(body: Path, tmp_path: Path) -> None:
    """Not JSON, a wrong type, or stdin twice: exit 2 with one error line."""
    bad = tmp_path / "bad.json"
    for text in ("nope", "[1]", '{"signature": "x", "timestamp": "1"}'):
        bad.write_text(text)
        done = shell(
            f"{GONKA} verify --from-json {bad} -f {body} --address {v.PUBKEY_ADDRESS}", tmp_path
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: --from-json ")
    twice = shell(
        f"{GONKA} verify --from-json - -f - --address {v.PUBKEY_ADDRESS} </dev/null", tmp_path
    )
    assert twice.returncode == 2
