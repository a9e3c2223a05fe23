"""What an adversarial review of the merged product found, each pinned in a real process:
`results merge` racing a run that still writes its file, write failures of `results
merge` and `results report --html`, and secrets typed where a model name belongs."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gonka_cli.devnode import NodeConfig, start_node
from tests.test_batch_devnode import check_one_correct_line_each, write_bodies
from tests.test_reliability_writers import env, error_lines, lines_at_least, start, wait_until


@pytest.fixture(scope="module")
def node() -> Iterator[Any]:
    """One TA whose answers take 150 ms: a run can be caught in the middle."""
    with start_node(NodeConfig(latency_ms=150)) as running:
        yield running


def gonka(*args: str) -> list[str]:
    """A `gonka` command line in this interpreter."""
    return [sys.executable, "-m", "gonka_cli", *args]


def run(
    command: list[str], tmp_path: Path, limit: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run `command` to the end (bounded), optionally with files capped at `limit` bytes."""
    apply: Callable[[], None] | None = None
    if limit is not None:
        cap = limit

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))

    return subprocess.run(
        command, env=env(tmp_path), capture_output=True, timeout=60, check=False,
        preexec_fn=apply,
    )  # fmt: skip


def test_merge_refuses_a_file_that_a_run_is_still_writing(node: Any, tmp_path: Path) -> None:
    """`results merge r.jsonl r.jsonl` (and a merge reading r.jsonl as a part) while a run
    still appends to r.jsonl: exit 75 naming the run's pid, nothing merged; without the
    lock the merge renamed a new file over r.jsonl and the run's later answers went to
    the unlinked old one (20 answered, 5 in the file)."""
    names = write_bodies(tmp_path / "in", 12)
    out = tmp_path / "r.jsonl"
    send = ["send-request", "--node-address", node.url, "-q", "-j", "1"]
    first = start(gonka(*send, "--dir", str(tmp_path / "in"), "--output-file", str(out)), tmp_path)
    try:
        wait_until(lines_at_least(out, 2), first, "2 lines")
        selection = ["--dir", str(tmp_path / "in")]
        for target in (out, tmp_path / "all.jsonl"):
            merged = run(gonka("results", "merge", str(target), str(out), *selection), tmp_path)
            assert merged.returncode == 75, merged.stderr.decode()
            (line,) = error_lines(merged.stderr)
            assert f"process {first.pid}" in line
            assert str(out) in line
        assert not (tmp_path / "all.jsonl").exists()
        _, stderr = first.communicate(timeout=60)
    finally:
        first.kill() if first.poll() is None else None
    assert first.returncode == 0, stderr.decode()
    check_one_correct_line_each(out, names)
    done = run(gonka("results", "merge", str(out), str(out), *selection), tmp_path)
    assert done.returncode == 0, done.stderr.decode()


def test_merge_and_report_write_failures_exit_74_and_leave_the_file(tmp_path: Path) -> None:
    """A disk that fills (RLIMIT_FSIZE) while `results merge` writes OUT, or `results report`
    writes --html: one line, exit 74 (could not write results, as a batch), not 2 (bad
    input); OUT byte for byte as it was, no page, no temporary file left."""
    (tmp_path / "in").mkdir()
    lines = []
    for index in range(30):
        (tmp_path / "in" / f"q{index:02}.json").write_text('{"model": "m", "messages": []}')
        body = {"choices": [{"message": {"content": "x" * 200}}]}
        response = {"status_code": 200, "request_id": None, "body": body}
        line = {"custom_id": f"q{index:02}.json", "response": response, "error": None}
        lines.append(json.dumps(line) + "\n")
    out = tmp_path / "r.jsonl"
    out.write_text("".join(lines))
    before = out.read_bytes()
    merge = gonka("results", "merge", str(out), str(out), "--dir", str(tmp_path / "in"))
    full = run(merge, tmp_path, limit=2000)
    assert full.returncode == 74, full.stderr.decode()
    assert error_lines(full.stderr) == [f"error: {out}: cannot write (File too large)"]
    assert out.read_bytes() == before
    page = tmp_path / "report.html"
    report = run(gonka("results", "report", str(out), "--html", str(page)), tmp_path, 2000)
    assert report.returncode == 74, report.stderr.decode()
    assert error_lines(report.stderr) == [f"error: {page}: cannot write (File too large)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "r.jsonl"]


def test_a_key_given_as_set_model_is_refused_before_sending(node: Any, tmp_path: Path) -> None:
    """`--set model="<hex key>"` is the model name by another door: refused like `--model`
    (exit 2, nothing sent, the key not echoed); a profile's key-shaped model is refused
    naming the profile."""
    secret = "5f" * 32
    before = node.stats.received
    send = ["send-request", "--node-address", node.url]
    refused = run(gonka(*send, "--set", f'model="{secret}"', "hello"), tmp_path)
    assert refused.returncode == 2, refused.stderr.decode()
    (line,) = error_lines(refused.stderr)
    assert line.startswith("error: --set model: that model name looks like a private key")
    assert secret[:16] not in (refused.stdout + refused.stderr).decode()
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'[profiles.p]\nmodel = "{secret}"\n')
    profile = run(gonka(*send, "--profile", "p", "hello"), tmp_path)
    assert profile.returncode == 2, profile.stderr.decode()
    (line,) = error_lines(profile.stderr)
    assert line.startswith("error: profile 'p' (")
    assert "GONKA_MODEL" not in line
    assert node.stats.received == before


def _through_transport(wire: bytes, *, use_async: bool) -> BaseException | None:
    """One non-streamed request through (Async)GonkaTransport (cap 1 MiB) to a TA that
    answers 200 with `wire` as a gzip body; the error raised, if any."""
    import asyncio

    import httpx2

    import gonka_cli

    def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return httpx2.Response(200, headers=headers, stream=httpx2.ByteStream(wire))

    key = gonka_cli.SigningKey.from_hex("11" * 32)
    options: dict[str, Any] = {"max_retries": 0, "max_response_bytes": 1 << 20}
    options.update(endpoints=[f"http://ta.test;{TA}"], transport=httpx2.MockTransport(answer))
    body = {"model": "m", "messages": []}
    try:
        if use_async:

            async def main() -> None:
                transport = gonka_cli.AsyncGonkaTransport(key, **options)
                async with httpx2.AsyncClient(transport=transport) as client:
                    await client.post("http://gonka/v1/chat/completions", json=body)

            asyncio.run(main())
        else:
            with httpx2.Client(transport=gonka_cli.GonkaTransport(key, **options)) as client:
                client.post("http://gonka/v1/chat/completions", json=body)
    except Exception as exc:  # the test inspects whatever was raised
        return exc
    return None


TA = "gonka1rnjrtkq8g46360jz0ts55m0ym2d46zw2d2sz7w"


@pytest.mark.parametrize("use_async", [False, True])
def test_the_python_transports_cap_a_gzip_bomb_after_inflating(use_async: bool) -> None:
    """GonkaTransport counted an answer's wire bytes and handed them to the client, which
    inflated them (a hostile server's gzip went past 7 GB in 95 s at the default cap): 64
    kB of gzip that inflates to 64 MB, under a 1 MiB cap, is now a clean "over the limit"
    error; a body that does not decode is the package's own NetworkError, not httpx2's."""
    import gzip

    from gonka_cli.errors import NetworkError

    bomb = gzip.compress(b"0" * (64 << 20), 9)
    assert len(bomb) < 1 << 20
    raised = _through_transport(bomb, use_async=use_async)
    assert isinstance(raised, NetworkError), repr(raised)
    assert "over the 1,048,576-byte limit" in str(raised)
    broken = _through_transport(b"\x1f\x8b\x08\x00" + b"\xff" * 64, use_async=use_async)
    assert isinstance(broken, NetworkError), repr(broken)
    assert "could not be decoded" in str(broken)


def test_the_python_transport_redacts_what_a_server_echoes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TA's 500 whose message holds terminal escapes, URL user-info and a 64-hex key: the
    retry log line and the final `HTTPServerError` carry none of them (the CLI already
    printed them redacted; a Python caller's traceback or log printed them raw)."""
    import logging

    import httpx2

    import gonka_cli
    from gonka_cli.errors import HTTPServerError

    hostile = "bad \x1b]0;pwned\x07\x1b[2J see http://alice:pw@10.0.0.1/x key " + "ab" * 32

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(500, json={"error": {"message": hostile}})

    key = gonka_cli.SigningKey.from_hex("11" * 32)
    transport = gonka_cli.GonkaTransport(
        key, endpoints=[f"http://ta.test;{TA}"], max_retries=1, base_delay=0.01,
        transport=httpx2.MockTransport(answer),
    )  # fmt: skip
    caplog.set_level(logging.INFO)
    with httpx2.Client(transport=transport) as client, pytest.raises(HTTPServerError) as caught:
        client.post("http://gonka/v1/chat/completions", json={"model": "m", "messages": []})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "retrying" in logged
    for text in (str(caught.value), caught.value.message, logged):
        assert "bad" in text
        assert "\x1b" not in text
        assert "\x07" not in text
        assert "alice:pw" not in text
        assert "ab" * 20 not in text


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_mid_merge_leaves_no_temporary_copy(tmp_path: Path, number: int) -> None:
    """SIGTERM or SIGHUP while `results merge` writes OUT: one line, exit 143 or 129, OUT as
    it was, and no ``.OUT.*.tmp`` left beside it (the default action killed the process
    before the all-or-nothing write could remove its temporary file: a stray copy of the
    results, as of a key file or keyring entry written the same way)."""
    count = 20_000
    requests = tmp_path / "in.jsonl"
    part = tmp_path / "part.jsonl"
    with requests.open("w") as inputs, part.open("w") as results:
        for index in range(count):
            custom_id = f"r{index:05}"
            line = {"custom_id": custom_id, "body": {"model": "m", "messages": []}}
            inputs.write(json.dumps(line) + "\n")
            body = {"choices": [{"message": {"content": "x" * 2000}}]}
            response = {"status_code": 200, "request_id": None, "body": body}
            results.write(json.dumps({"custom_id": custom_id, "response": response}) + "\n")
    out = tmp_path / "out.jsonl"
    out.write_text("before\n")
    merge = gonka("results", "merge", str(out), str(part), "--jsonl", str(requests))
    process = subprocess.Popen(
        merge, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".out.jsonl.*.tmp")):
            assert process.poll() is None, "the merge ended before its temporary file appeared"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        process.send_signal(number)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == 128 + number, stderr.decode()
    name = signal.Signals(number).name
    assert error_lines(stderr) == [f"error: stopped by {name}"]
    assert out.read_text() == "before\n"
    assert list(tmp_path.glob(".out.jsonl.*")) == []


def test_a_full_disk_while_a_file_keyring_is_made_is_one_line(tmp_path: Path) -> None:
    """`keys add --keyring-backend file` on a new keyring whose keyhash cannot be written
    (RLIMIT_FSIZE): exit 7 and one line, not a traceback with exit 1; nothing left in the
    keyring directory."""
    keyring = tmp_path / "kr"
    command = gonka("keys", "add", "a", "--keyring-backend", "file", "--keyring-dir", str(keyring))
    environment = {**env(tmp_path), "GONKA_KEYRING_PASSPHRASE": "a passphrase"}
    cap = 30

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))

    result = subprocess.run(
        command, env=environment, capture_output=True, timeout=60, check=False, preexec_fn=limit
    )
    assert result.returncode == 7, result.stderr.decode()
    assert error_lines(result.stderr) == [
        f"error: {keyring / 'keyring-file'}: cannot write the keyring (File too large)"
    ]
    assert result.stdout == b""
    assert list((keyring / "keyring-file").iterdir()) == []


@pytest.mark.parametrize("where", ["full", "closed"])
def test_a_full_or_closed_stdout_is_one_line_for_every_command(tmp_path: Path, where: str) -> None:
    """`gonka sign`, `results report` and `--help` into /dev/full, or the first two into a
    closed stdout: exit 74 and one ``cannot write <stdout>`` line, as a batch does; before,
    a rich traceback and exit 1 (and the signing key is not in what is printed instead)."""
    body = tmp_path / "body.json"
    body.write_text('{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps({"custom_id": "a", "response": None, "error": None}) + "\n")
    secret = "3c" * 32
    environment = {**env(tmp_path), "GONKA_PRIVATE_KEY": secret}
    commands = [
        ["sign", "--file", str(body), "--endpoint-account", TA],
        ["results", "report", str(results)],
    ]
    if where == "full":  # help into a closed stdout is dropped silently by click (exit 0)
        commands.append(["--help"])
    for args in commands:
        if where == "full":
            with open("/dev/full", "wb") as full:
                result = subprocess.run(
                    gonka(*args), env=environment, stdout=full, stderr=subprocess.PIPE,
                    timeout=60, check=False,
                )  # fmt: skip
        else:
            result = subprocess.run(
                gonka(*args), env=environment, stderr=subprocess.PIPE, timeout=60, check=False,
                preexec_fn=lambda: os.close(1),
            )  # fmt: skip
        reason = "No space left on device" if where == "full" else "it is closed"
        assert result.returncode == 74, (args, result.stderr.decode())
        assert error_lines(result.stderr) == [f"error: cannot write <stdout>: {reason}"], args
        assert secret[:16] not in result.stderr.decode()


def test_secret_files_are_read_bounded(tmp_path: Path) -> None:
    """`/dev/zero` given as --passphrase-file, --api-key-file or --private-key-file: one line
    naming the limit (it was read until the kernel killed the process for its memory),
    under a 1 GB address-space cap so that the old behaviour fails fast; a FIFO (as
    ``<(pass show x)`` makes) still works as a passphrase file."""
    body = tmp_path / "body.json"
    body.write_text('{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    sign = ["sign", "--file", str(body), "--endpoint-account", TA]
    cases = [
        ([*sign, "--passphrase-file", "/dev/zero", "--key", "k"], "passphrase file", 7),
        (["send-request", "--base-url", "http://127.0.0.1:9/v1", "--api-key-file", "/dev/zero",
          "--file", str(body)], "API key file", 7),
        ([*sign, "--private-key-file", "/dev/zero"], "key file", 2),
    ]  # fmt: skip
    stored = subprocess.run(
        gonka("keys", "import", "k"), env={**env(tmp_path), "GONKA_KEYRING_PASSPHRASE": "pw-12345"},
        input=b"5d" * 32, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr.decode()
    gigabyte = 1 << 30

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (gigabyte, gigabyte))

    no_env_key = {k: v for k, v in env(tmp_path).items() if k != "GONKA_PRIVATE_KEY"}
    for args, what, code in cases:
        result = subprocess.run(
            gonka(*args), env=no_env_key, capture_output=True, timeout=60, check=False,
            preexec_fn=cap_memory,
        )  # fmt: skip
        assert result.returncode == code, (args, result.stderr.decode()[-500:])
        assert error_lines(result.stderr) == [
            f"error: /dev/zero: cannot read the {what} (larger than 65536 bytes)"
        ]


def test_an_api_key_command_that_never_stops_talking_is_stopped(tmp_path: Path) -> None:
    """`--api-key-cmd yes`: exit 7 at once with one line naming the limit; it was read into
    memory for the whole 30 s time-out (under a 1 GB address-space cap: a MemoryError
    traceback)."""
    body = tmp_path / "body.json"
    body.write_text('{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    args = ["send-request", "--base-url", "http://127.0.0.1:9/v1", "--api-key-cmd", "yes"]
    gigabyte = 1 << 30

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (gigabyte, gigabyte))

    started = time.monotonic()
    result = subprocess.run(
        gonka(*args, "--file", str(body)), env=env(tmp_path), capture_output=True, timeout=60,
        check=False, preexec_fn=cap_memory,
    )  # fmt: skip
    assert result.returncode == 7, result.stderr.decode()[-500:]
    assert error_lines(result.stderr) == [
        "error: --api-key-cmd yes: printed more than 65536 bytes; stopped it"
    ]
    assert time.monotonic() - started < 10
