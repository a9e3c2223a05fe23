"""`gonka send-request` in batch mode: CliRunner, and real processes killed or interrupted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gonka_cli.cli import app
from gonka_cli.devnode import NodeConfig, start_node
from tests.test_batch_devnode import KEY, check_one_correct_line_each, write_bodies

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("GONKA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GONKA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GONKA_PRIVATE_KEY", KEY.to_hex())


@pytest.fixture(scope="module")
def node() -> Iterator[Any]:
    """One fault-free TA for the quick CLI checks."""
    with start_node(NodeConfig()) as running:
        yield running


def test_dir_to_output_file_exits_0_with_summary_on_stderr(node: Any, tmp_path: Path) -> None:
    """--dir with --output-file: results in the file, nothing on stdout, summary on stderr."""
    names = write_bodies(tmp_path / "in", 5)
    out = tmp_path / "r.jsonl"
    args = ["send-request", "--node-address", node.url, "--dir", str(tmp_path / "in")]
    result = runner.invoke(app, [*args, "--output-file", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "succeeded  5" in result.stderr
    check_one_correct_line_each(out, names)


def test_results_on_stdout_and_exit_8_when_one_fails(node: Any, tmp_path: Path) -> None:
    """Without --output-file the JSONL goes to stdout; a malformed file makes the exit 8."""
    write_bodies(tmp_path / "in", 3)
    (tmp_path / "in" / "q-0099.json").write_text("not json")
    args = ["send-request", "--node-address", node.url, "--dir", str(tmp_path / "in"), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 8
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["error"] is None for r in records) == [False, True, True, True]
    assert "error: 1 of 4 request(s) failed" in result.stderr
    assert "failed     1  (invalid_input 1)" in result.stderr


def test_repeated_file_and_jsonl_from_stdin(node: Any, tmp_path: Path) -> None:
    """--file twice is a batch named by path; --jsonl - reads bare bodies from stdin."""
    files = [str(tmp_path / "in" / n) for n in write_bodies(tmp_path / "in", 2)]
    args = ["send-request", "--node-address", node.url, "--file", files[0], "--file", files[1]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert sorted(json.loads(x)["custom_id"] for x in result.stdout.splitlines()) == files
    lines = "".join(
        (tmp_path / "in" / n).read_text() + "\n" for n in ("q-0000.json", "q-0001.json")
    )
    args = ["send-request", "--node-address", node.url, "--jsonl", "-", "--model", "echo"]
    result = runner.invoke(app, args, input=lines)
    assert result.exit_code == 0, result.stderr
    assert sorted(json.loads(x)["custom_id"] for x in result.stdout.splitlines()) == ["1", "2"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["hello"], "not TEXT"),
        (["--dry-run"], "--dry-run shows one request"),
        (["--timestamp", "5"], "replays"),
        (["--output", "json"], "--output applies to a single request"),
        (["--shard", "3/2"], "K must be between 1 and N"),
        (["--resume"], "--resume needs --output-file"),
    ],
)
def test_single_request_options_are_refused_in_a_batch(
    node: Any, tmp_path: Path, extra: list[str], message: str
) -> None:
    """Options a batch cannot honour fail with exit 2 before anything is sent."""
    write_bodies(tmp_path / "in", 1)
    args = ["send-request", "--node-address", node.url, "--dir", str(tmp_path / "in"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_an_unreachable_discovery_source_fails_once_up_front(tmp_path: Path) -> None:
    """Discovery that cannot connect ends the batch with exit 6 before any result line (and
    the results file it created, still empty, is removed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    write_bodies(tmp_path / "in", 3)
    out = tmp_path / "r.jsonl"
    args = ["send-request", "--source-url", f"http://127.0.0.1:{closed_port}"]
    result = runner.invoke(app, [*args, "--dir", str(tmp_path / "in"), "--output-file", str(out)])
    assert result.exit_code == 6
    assert "could not connect" in result.stderr
    assert not out.exists()


# --- real processes --------------------------------------------------------------------


def _gonka(*args: str) -> list[str]:
    return [sys.executable, "-m", "gonka_cli", "send-request", *args]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONKA_")}
    return {**env, "GONKA_HOME": str(tmp_path / "home"), "GONKA_PRIVATE_KEY": KEY.to_hex()}


def _wait_for_lines(out: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    """Wait (bounded) until `out` holds at least `count` lines."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{out} did not reach {count} lines (exit {process.poll()})")


def _parsed_lines(out: Path) -> list[dict[str, Any]]:
    """Every line of the results file, each one required to parse (a torn tail allowed)."""
    data = out.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in whole.splitlines()]


@pytest.fixture(scope="module")
def slow_faulty_node() -> Iterator[Any]:
    """Three slow-ish TAs with faults, so that a run can be stopped in the middle."""
    config = NodeConfig(participants=3, fault_rate=0.2, seed=5, latency_ms=25, slow_ms=100)
    with start_node(config) as running:
        yield running


def test_sigkill_midway_then_resume_leaves_each_id_once(
    slow_faulty_node: Any, tmp_path: Path
) -> None:
    """Killed with SIGKILL half-way, rerun with --resume: every id exactly once, all parse."""
    names = write_bodies(tmp_path / "in", 120)
    out = tmp_path / "r.jsonl"
    common = ["--source-url", slow_faulty_node.url, "--dir", str(tmp_path / "in")]
    common += ["--output-file", str(out), "--concurrency", "4", "--max-retries", "8"]
    process = subprocess.Popen(_gonka(*common), env=_env(tmp_path), stderr=subprocess.DEVNULL)
    try:
        _wait_for_lines(out, 40, process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    before = _parsed_lines(out)
    assert 40 <= len(before) < 120
    resumed = subprocess.run(
        _gonka(*common, "--resume"), env=_env(tmp_path), capture_output=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert resumed.stdout == b""
    check_one_correct_line_each(out, names)
    assert b"already done" in resumed.stderr
    assert slow_faulty_node.stats.replays_refused == 0


def test_sigint_drains_writes_summary_and_exits_130(slow_faulty_node: Any, tmp_path: Path) -> None:
    """Ctrl-C: in-flight requests finish, the summary prints, exit 130, results intact."""
    names = write_bodies(tmp_path / "in", 120)
    out = tmp_path / "r.jsonl"
    common = ["--source-url", slow_faulty_node.url, "--dir", str(tmp_path / "in")]
    common += ["--output-file", str(out), "--concurrency", "4", "--max-retries", "8"]
    process = subprocess.Popen(
        _gonka(*common), env=_env(tmp_path), stderr=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        _wait_for_lines(out, 20, process)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr.decode()
    assert stdout == b""
    text = stderr.decode()
    assert "not done" in text
    assert "error: interrupted" in text
    assert "Traceback" not in text
    partial = _parsed_lines(out)
    assert out.read_bytes().endswith(b"\n")
    assert 20 <= len(partial) < 120
    assert len({r["custom_id"] for r in partial}) == len(partial)
    finish = subprocess.run(
        _gonka(*common, "--resume"), env=_env(tmp_path), capture_output=True, timeout=60
    )
    assert finish.returncode == 0, finish.stderr.decode()
    check_one_correct_line_each(out, names)
