"""Helpers for the benchmarks that talk to a node: `gonka node` in a process of its own,
and `gonka send-request` processes measured one by one (wall time, CPU, peak RSS).

The node always runs in another process, so that its CPU time and memory never count as
the client's; each measured process is reaped by a small go-between (`run_measured`)
with `os.wait4`, which gives the resources of that one process.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KEY = "480293bb12c956967e64c039801ed48ead6b56d34bd5f985ed53f70755d5a3ad"
MODEL = "Qwen/QwQ-32B"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_PARTICIPANT = re.compile(rb"participant 0: (http://\S+)\s+(gonka1\w+)")


@dataclass(frozen=True)
class Node:
    """A running `gonka node`: its URL, its (participant 0's) address, its process id."""

    url: str
    address: str
    pid: int


@contextmanager
def node_process(*options: str) -> Iterator[Node]:
    """Run ``gonka node --port 0 --quiet OPTIONS`` until the block ends.

    URL and address are read from the start-up banner on its stderr (the port is free).
    """
    argv = [sys.executable, "-m", "gonka_cli", "node", "--port", "0", "--quiet", *options]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        url, address = _wait_for_banner(proc)
        yield Node(url, address, proc.pid)
    finally:
        _stop(proc)


def _wait_for_banner(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + START_TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stderr], [], [], left)
        chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
        if ready and not chunk:
            break  # the node exited
        seen += chunk
        if found := _PARTICIPANT.search(seen):
            return found.group(1).decode(), found.group(2).decode()
    raise RuntimeError(f"gonka node did not start: {seen.decode(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds used so far by a running process (Linux ``/proc``; None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_env(home: str) -> dict[str, str]:
    """The environment of a client process: a test key, an empty gonka home."""
    return {**os.environ, "GONKA_PRIVATE_KEY": KEY, "GONKA_HOME": home}


def gonka(*args: str) -> list[str]:
    """The argv of a `gonka` command run by this interpreter."""
    return [sys.executable, "-m", "gonka_cli", *args]


@dataclass(frozen=True)
class Usage:
    """What one child process cost: wall seconds, CPU seconds (user + system), peak RSS."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float


# Started between this process and the one measured. On Linux a process's peak RSS
# survives exec: a child spawned straight from this (perhaps large) process would report
# at least this process's RSS. A small fresh interpreter in between reports the true one.
_MEASURE = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
scale = 1024 * 1024 if sys.platform == "darwin" else 1024
report = [os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime,
          usage.ru_maxrss / scale]
with open(sys.argv[1], "w") as out:
    json.dump(report, out)
"""


def run_measured(argv: Sequence[str], env: dict[str, str], *, log: Path) -> Usage:
    """Run `argv` to completion and measure it alone; raise if it fails.

    stdout is discarded; stderr goes to `log`, shown on failure.
    """
    report = log.with_suffix(".usage.json")
    with log.open("wb") as err:
        measure = [sys.executable, "-c", _MEASURE, str(report), *argv]
        subprocess.run(measure, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=err, check=True)  # fmt: skip
    code, wall, cpu, rss_mb = json.loads(report.read_text())
    if code != 0:
        detail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(argv[:6])}... exited {code}\n{detail}")
    return Usage(wall, cpu, rss_mb)


def write_requests(directory: Path, count: int) -> None:
    """`count` small chat request files named 00000000.json... in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        body = f'{{"model":"{MODEL}","messages":[{{"role":"user","content":"question {n}"}}],'
        (directory / f"{n:08d}.json").write_text(body + '"max_tokens":16}')
