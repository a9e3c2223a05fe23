"""A hostile server can't exhaust the client or read its secrets (issue 13, client half).

Each test runs `gonka send-request` as a real process against `tests.hostile_server`,
samples the process's resident memory from /proc while it runs, and checks the exit
code, that memory stayed under a fixed bound, and that neither a secret nor a
terminal escape reached stdout, stderr or a results file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gonka_cli.keys import SigningKey
from tests.hostile_server import HEX_KEY, HostileServer, hostile_server

API_KEY = "sk-hostile-7Qx2v9LmN4pR8sT1wY6z"
PRIVATE_KEY = hashlib.sha256(b"gonka-cli hostile server").hexdigest()
BODY = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
SMALL_MB = 150  # a gonka process that read at most a few MiB (about 60 MB at rest)
DONE_WHEN_MB = 200  # issue 13: an endless body, default limits, RSS under 200 MB
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@dataclass(frozen=True)
class Run:
    """A finished gonka process: exit code, output, peak resident memory, time taken."""

    code: int
    stdout: bytes
    stderr: bytes
    peak_mb: float
    seconds: float

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    """One misbehaving server for the module (every case has its own path)."""
    with hostile_server() as running:
        yield running


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no GONKA_* from outside, an empty gonka home."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GONKA_")}
    clean.update(GONKA_HOME=str(tmp_path / "home"), NO_COLOR="1", GONKA_MAX_RETRIES="0")
    clean.pop("http_proxy", None)
    clean.pop("HTTP_PROXY", None)
    return clean


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def gonka(env: dict[str, str], tmp_path: Path, *args: str, body: object = BODY) -> Run:
    """Run ``gonka send-request`` on a body file; sample its RSS every 10 ms; 90 s at most."""
    body_file = tmp_path / "body.json"
    body_file.write_text(json.dumps(body))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    command = [sys.executable, "-m", "gonka_cli", "send-request", *args]
    if "--jsonl" not in args and "--file" not in args:
        command += ["--file", str(body_file)]
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        peak = 0.0
        while process.poll() is None and time.monotonic() - started < 90:
            peak = max(peak, _rss_mb(process.pid))
            time.sleep(0.01)
        if process.poll() is None:
            process.kill()
        code = process.wait()
    return Run(code, out.read_bytes(), err.read_bytes(), peak, time.monotonic() - started)


def assert_clean(*texts: bytes) -> None:
    """No secret (whole or 12 characters of it), no terminal control byte, in any text."""
    for raw in texts:
        text = raw.decode("utf-8", "replace")
        for secret in (API_KEY, PRIVATE_KEY, HEX_KEY):
            pieces = {secret[i : i + 12] for i in range(len(secret) - 11)}
            assert not any(piece in text.lower() or piece in text for piece in pieces), text
        for control in ("\x1b", "\x07", "\x9b", "\x9d"):
            assert control not in text, repr(text)


def bearer(env: dict[str, str]) -> dict[str, str]:
    return {**env, "GONKA_BROKER_API_KEY": API_KEY}


def one_error_line(run: Run) -> str:
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_endless_200_body_stops_at_the_cap(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """An endless 200 body ends in one line naming --max-response-bytes, exit 6."""
    url = server.url("endless200")
    run = gonka(bearer(env), tmp_path, "--base-url", url, "--max-response-bytes", "1000000")
    assert run.code == 6, run.err
    assert "--max-response-bytes (1,000,000 bytes)" in one_error_line(run)
    assert run.peak_mb < SMALL_MB
    assert run.stdout == b""
    assert_clean(run.stdout, run.stderr)


def test_endless_body_at_the_default_cap_meets_the_issue_bound(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """Default limits (no --timeout): one clear line within 60 s, RSS under 200 MB."""
    run = gonka(bearer(env), tmp_path, "--base-url", server.url("endless200"))
    assert run.code == 6, run.err
    assert "--max-response-bytes (67,108,864 bytes)" in one_error_line(run)
    assert run.seconds < 60
    assert run.peak_mb < DONE_WHEN_MB


def test_a_gzip_bomb_stops_at_the_cap(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """A gzip body inflating a thousandfold without end: the cap counts inflated bytes."""
    run = gonka(bearer(env), tmp_path, "--base-url", server.url("gzipbomb"))
    assert run.code == 6, run.err
    assert "--max-response-bytes (67,108,864 bytes)" in one_error_line(run)
    assert run.peak_mb < DONE_WHEN_MB


def test_a_body_that_does_not_decode_is_one_line(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """Broken gzip is a network error line (exit 6), not a traceback."""
    run = gonka(bearer(env), tmp_path, "--base-url", server.url("badgzip"))
    assert run.code == 6, run.err
    assert "could not be decoded" in one_error_line(run)


def test_env_variable_sets_the_cap(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """GONKA_MAX_RESPONSE_BYTES is the cap when no flag is given; a bad value is exit 7."""
    env = {**bearer(env), "GONKA_MAX_RESPONSE_BYTES": "500000"}
    run = gonka(env, tmp_path, "--base-url", server.url("endless200"))
    assert run.code == 6
    assert "(500,000 bytes)" in run.err
    bad = gonka({**env, "GONKA_MAX_RESPONSE_BYTES": "0"}, tmp_path, "--base-url", "http://x")
    assert bad.code == 7
    assert "GONKA_MAX_RESPONSE_BYTES" in bad.err


def test_endless_500_body_is_read_only_in_part(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """An endless error body: its first 64 KiB are read, the HTTP 500 is reported (exit 5)."""
    run = gonka(bearer(env), tmp_path, "--base-url", server.url("endless500"))
    assert run.code == 5, run.err
    assert "HTTP 500" in run.err
    assert len(run.stderr) < 2000
    assert run.peak_mb < SMALL_MB
    assert_clean(run.stdout, run.stderr)


def test_endless_sse_line_stops_at_the_event_limit(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """One SSE data line without end: stopped at the 1 MiB event limit, exit 6."""
    body = {**BODY, "stream": True}
    run = gonka(bearer(env), tmp_path, "--base-url", server.url("sseline"), body=body)
    assert run.code == 6, run.err
    assert "server-sent event" in run.err
    assert "1,048,576-byte limit" in one_error_line(run)
    assert run.peak_mb < SMALL_MB


def test_endless_deltas_with_json_output_stop_at_the_cap(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """Endless content deltas with -o json: the assembled answer is capped, nothing printed."""
    body = {**BODY, "stream": True}
    args = ("--base-url", server.url("ssedeltas"), "-o", "json", "--max-response-bytes", "3000000")
    run = gonka(bearer(env), tmp_path, *args, body=body)
    assert run.code == 6, run.err
    assert "the stream from" in one_error_line(run)
    assert "--max-response-bytes (3,000,000 bytes)" in run.err
    assert run.stdout == b""
    assert run.peak_mb < SMALL_MB


def test_endless_deltas_in_text_mode_are_cut_off(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """In text mode the deltas print until the cap, then the answer is reported cut off."""
    body = {**BODY, "stream": True}
    args = ("--base-url", server.url("ssedeltas"), "--max-response-bytes", "500000")
    run = gonka(bearer(env), tmp_path, *args, body=body)
    assert run.code == 6
    assert run.stdout.startswith(b"xxxx")
    assert 100_000 < len(run.stdout) < 500_000
    assert "cut off" in run.err


def test_huge_identity_is_refused(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """A /v1/identity without end (signed request, no --endpoint-account): 4 MiB, exit 6."""
    env = {**env, "GONKA_PRIVATE_KEY": PRIVATE_KEY}
    run = gonka(env, tmp_path, "--node-address", server.url("hugeidentity"))
    assert run.code == 6, run.err
    assert "4,194,304-byte limit" in run.err
    assert run.peak_mb < SMALL_MB
    assert_clean(run.stdout, run.stderr)


def test_a_401_echoing_the_key_shows_stars(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """The server's echo of `Bearer <key>` shows *** on stderr, with -v too (exit 4)."""
    run = gonka(bearer(env), tmp_path, "--base-url", server.url("echo401"), "-v")
    assert run.code == 4, run.err
    assert "Incorrect API key provided: Bearer ***" in run.err
    assert_clean(run.stdout, run.stderr)


def test_a_401_echoing_the_key_is_scrubbed_from_results(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """A batch against the echoing server stores *** for the key in every results line."""
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps(BODY) for _ in range(3)) + "\n")
    results = tmp_path / "results.jsonl"
    args = ("--base-url", server.url("echo401"), "--jsonl", str(jsonl), "--output-file")
    run = gonka(bearer(env), tmp_path, *args, str(results), "-q")
    assert run.code == 8, run.err
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 3
    assert all("Bearer ***" in line["error"]["message"] for line in lines)
    assert_clean(run.stdout, run.stderr, results.read_bytes())


@pytest.mark.parametrize("case", ["moved", "location"])
def test_a_move_to_another_origin_keeps_the_key_home(
    server: HostileServer, env: dict[str, str], tmp_path: Path, case: str
) -> None:
    """--follow-moved refuses a 308 (new_url or Location) to another port: nothing goes
    there, exit 4 with the --trust-origin line; naming that origin follows it."""
    before = len(server.on_other_port())
    args = ("--base-url", server.url(case), "--follow-moved")
    refused = gonka(bearer(env), tmp_path, *args)
    assert refused.code == 4, refused.err
    assert f"--trust-origin {server.origin(other=True)}" in refused.err
    assert len(server.on_other_port()) == before
    trusted = gonka(bearer(env), tmp_path, *args, "--trust-origin", server.origin(other=True))
    assert trusted.code == 0, trusted.err
    assert trusted.stdout == b"landed\n"
    landed = server.on_other_port()[before:]
    assert [s.headers.get("authorization") for s in landed] == [f"Bearer {API_KEY}"]


def test_escape_codes_and_user_info_never_reach_the_terminal(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """A server message with OSC/CSI/BEL/C1 escapes, user-info and a key: all removed."""
    run = gonka(bearer(env), tmp_path, "--base-url", server.url("escapes"))
    assert run.code == 4, run.err
    line = one_error_line(run)
    assert "http://***@10.0.0.1/x" in line
    assert "<redacted>" in line
    assert "red" in line
    assert_clean(run.stdout, run.stderr)


def test_escape_codes_never_reach_a_results_file(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """The same message in a results line: no escape, even as a JSON \\u escape."""
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps(BODY) + "\n")
    results = tmp_path / "results.jsonl"
    args = ("--base-url", server.url("escapes"), "--jsonl", str(jsonl), "-q")
    run = gonka(bearer(env), tmp_path, *args, "--output-file", str(results))
    assert run.code == 8
    text = json.dumps(json.loads(results.read_text()), ensure_ascii=False)
    assert "\\u001b" not in text
    assert_clean(text.encode(), run.stderr)


def test_user_info_is_not_shown_in_endpoint_fields(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """A base URL with user:password shows http://***@ in -o json, -v and results lines."""
    url = server.url("landing").replace("http://", "http://alice:s3cretpw@")
    run = gonka(bearer(env), tmp_path, "--base-url", url, "-o", "json", "-v")
    assert run.code == 0, run.err
    assert json.loads(run.stdout)["gonka"]["endpoint"].startswith("http://***@127.0.0.1:")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps(BODY) + "\n")
    results, bodies = tmp_path / "results.jsonl", tmp_path / "bodies"
    args = ("--base-url", url, "--jsonl", str(jsonl), "--output-file", str(results))
    batch = gonka(bearer(env), tmp_path, *args, "--output-dir", str(bodies), "-q")
    assert batch.code == 0, batch.err
    assert json.loads(results.read_text())["x_gonka"]["endpoint"].startswith("http://***@")
    for text in (run.stdout, run.stderr, batch.stderr, results.read_bytes()):
        assert b"s3cretpw" not in text
        assert b"alice" not in text


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("--model", "0x" + PRIVATE_KEY),
        ("--model", PRIVATE_KEY[:40]),
        ("GONKA_MODEL", " ".join(["abandon"] * 11 + ["about"])),
        ("profile", PRIVATE_KEY.upper()),
    ],
)
def test_a_key_shaped_model_is_refused_before_sending(
    server: HostileServer, env: dict[str, str], tmp_path: Path, where: str, value: str
) -> None:
    """A model name that looks like a key or a mnemonic: exit 2, redacted, nothing sent."""
    args = ["--base-url", server.url("landing")]
    env = bearer(env)
    if where == "--model":
        args += ["--model", value]
    elif where == "GONKA_MODEL":
        env["GONKA_MODEL"] = value
    else:
        home = Path(env["GONKA_HOME"])
        home.mkdir(parents=True)
        (home / "config.toml").write_text(f'[profiles.default]\nmodel = "{value}"\n')
    before = len(server.seen)
    run = gonka(env, tmp_path, *args, body={"messages": BODY["messages"]})
    assert run.code == 2, run.err
    assert "looks like a private key or a mnemonic" in run.err
    assert len(server.seen) == before
    assert value.lower()[:12] not in run.err.lower()
    assert "abandon abandon" not in run.err


def test_the_signing_key_in_use_is_redacted_from_server_text(
    server: HostileServer, env: dict[str, str], tmp_path: Path
) -> None:
    """The signing key registered by settings is scrubbed when a server echoes a piece."""
    from gonka_cli import redact

    redact.forget_all()
    key = SigningKey.from_hex(PRIVATE_KEY)
    from gonka_cli.settings import key_in_use

    key_in_use(key)
    try:
        assert redact.redact(f"got {PRIVATE_KEY[5:17].upper()}!") == "got ***!"
    finally:
        redact.forget_all()
