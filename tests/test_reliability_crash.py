"""Crash safety: `gonka send-request --dir ... --output-file` killed with SIGKILL, resumed.

A seeded generator picks the kill points: right after start (before or around the first
line), after a few lines, about half-way, and near the end, each run resuming the previous
one; then a torn last line is left as a power cut would leave it, and a last ``--resume``
finishes. After every kill each whole line must parse and no ``custom_id`` may appear
twice; at the end every input has exactly one successful line.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gonka_cli.devnode import NodeConfig, start_node
from tests.test_batch_devnode import KEY, check_one_correct_line_each, write_bodies

INPUTS = 160
KILL_SEED = 20_260_101
TORN_TAIL = b'{"id":"batch_req_torn","custom_id":"q-00'


@pytest.fixture(scope="module")
def node() -> Iterator[Any]:
    """Three TAs, a little latency so runs can be stopped mid-way, and some faults."""
    config = NodeConfig(participants=3, fault_rate=0.1, seed=9, latency_ms=10, slow_ms=40)
    with start_node(config) as running:
        yield running


def gonka_env(tmp_path: Path) -> dict[str, str]:
    """The test's environment without GONKA_* leaking in, plus a signing key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONKA_")}
    return {**env, "GONKA_HOME": str(tmp_path / "home"), "GONKA_PRIVATE_KEY": KEY.to_hex()}


def line_count(out: Path) -> int:
    """Whole lines written so far (0 before the file exists)."""
    try:
        return out.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_at(process: subprocess.Popen[bytes], out: Path, lines: int, delay_s: float) -> None:
    """SIGKILL `process` once `out` holds `lines` lines (0: after `delay_s`); bounded wait."""
    deadline = time.monotonic() + 20
    if lines == 0:
        time.sleep(delay_s)
    while lines and line_count(out) < lines:
        assert process.poll() is None, f"the run ended before {lines} lines"
        assert time.monotonic() < deadline, f"{out} did not reach {lines} lines"
        time.sleep(0.003)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=20)


def check_after_kill(out: Path) -> int:
    """Whole lines parse and name distinct inputs (a torn tail is allowed); their count."""
    if not out.exists():
        return 0
    data = out.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    records = [json.loads(line) for line in whole.splitlines()]
    ids = [record["custom_id"] for record in records]
    assert len(ids) == len(set(ids))
    return len(records)


def kill_points(rng: random.Random) -> list[int]:
    """Lines at which to kill successive runs: at start, a few, about half, most."""
    return [0, rng.randint(3, 25), rng.randint(60, 90), rng.randint(115, 145)]


def test_sigkill_at_random_points_then_resume_leaves_each_id_once(
    node: Any, tmp_path: Path
) -> None:
    """Four runs SIGKILLed at seeded points (each resuming the last), a torn tail, then a
    final --resume: exit 0, every line parses, every custom_id exactly once and correct."""
    names = write_bodies(tmp_path / "in", INPUTS)
    out = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "gonka_cli", "send-request", "--source-url", node.url]
    command += ["--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "4", "-q"]
    rng = random.Random(KILL_SEED)  # noqa: S311  # seeded kill points, not secrets
    for run, lines in enumerate(kill_points(rng)):
        resume = ["--resume"] if run else []
        process = subprocess.Popen(
            [*command, *resume], env=gonka_env(tmp_path), stderr=subprocess.DEVNULL
        )
        kill_at(process, out, lines, delay_s=rng.uniform(0.0, 0.4))
        assert process.returncode == -signal.SIGKILL
        assert check_after_kill(out) >= lines
    with out.open("ab") as handle:
        handle.write(TORN_TAIL)  # what a power cut in the middle of a write would leave
    final = subprocess.run(
        [*command, "--resume"], env=gonka_env(tmp_path), capture_output=True, timeout=60
    )
    assert final.returncode == 0, final.stderr.decode()
    assert final.stdout == b""
    assert b"torn last line" in final.stderr
    assert out.read_bytes().count(b"\n") == INPUTS
    check_one_correct_line_each(out, names)
    assert node.stats.replays_refused == 0
