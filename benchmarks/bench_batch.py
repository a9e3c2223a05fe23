"""Batch throughput: `gonka send-request --dir` against a node with a fixed latency L.

    python -m benchmarks.bench_batch

The node (`gonka node --latency-ms 200`) runs in a process of its own.
The batches run in this process, through the command line's own entry point (parsing,
settings, the batch runner, the client), so that wall time and CPU time
(`time.process_time`) are those of the batch alone: no interpreter start-up, no node.
Figures: requests per second against the ideal C/L for concurrency C, and the client's
CPU per request. The baseline is a shell loop running one `gonka send-request --file`
process per file, the way `inferenced` would be scripted: those are whole processes,
start-up included. Medians of several interleaved runs.
Target: at least 0.8 of C/L at C=32, L=200 ms.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from benchmarks._node import (
    KEY,
    Node,
    client_env,
    cpu_seconds,
    node_process,
    run_measured,
    write_requests,
)
from benchmarks._util import machine, table

LATENCY_MS = 200
TARGET_CONCURRENCY = 32
TARGET_RATIO = 0.8
BATCHES = ((1, 10), (8, 80), (32, 960), (64, 640))  # (concurrency, requests)
SHELL_FILES = 6
REPEATS = 3
# $0 is this interpreter; the node's URL comes from GONKA_NODE_ADDRESS.
SHELL_LOOP = 'for f in "$@"; do "$0" -m gonka_cli send-request --file "$f" >/dev/null; done'


@dataclass(frozen=True)
class Run:
    """Wall and CPU seconds of one run, and the node's CPU seconds meanwhile (if known)."""

    wall_s: float
    cpu_s: float
    node_cpu_s: float | None = None


def _batch(node: Node, directory: Path, concurrency: int, work: Path) -> Run:
    """`gonka send-request --dir` in this process: the entry point a console script calls."""
    from gonka_cli.cli import app

    out = work / "results.jsonl"
    out.unlink(missing_ok=True)
    args = [
        "send-request", "--node-address", node.url, "--dir", str(directory),
        "--output-file", str(out), "-j", str(concurrency), "-q",
    ]  # fmt: skip
    summary = io.StringIO()
    node_cpu = cpu_seconds(node.pid)
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stderr(summary):
        code = app(args, prog_name="gonka", standalone_mode=False)
    run = Run(time.perf_counter() - wall, time.process_time() - cpu)
    node_after = cpu_seconds(node.pid)
    if node_cpu is not None and node_after is not None:
        run = Run(run.wall_s, run.cpu_s, node_after - node_cpu)
    if code:
        raise RuntimeError(f"the batch exited {code}:\n{summary.getvalue()}")
    return run


def _shell_loop(node: Node, files: list[Path], work: Path) -> Run:
    loop = ["sh", "-c", SHELL_LOOP, sys.executable, *map(str, files)]
    env = {**client_env(str(work / "home")), "GONKA_NODE_ADDRESS": node.url}
    node_cpu = cpu_seconds(node.pid)
    usage = run_measured(loop, env, log=work / "stderr.txt")
    node_after = cpu_seconds(node.pid)
    node_used = None if node_cpu is None or node_after is None else node_after - node_cpu
    return Run(usage.wall_s, usage.cpu_s, node_used)


def main() -> None:
    """Run the batches and the shell loop REPEATS times, interleaved; print the table."""
    runs: dict[str, list[Run]] = {}
    options = ("--latency-ms", str(LATENCY_MS))
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        node = stack.enter_context(node_process(*options))
        settings = {"GONKA_PRIVATE_KEY": KEY, "GONKA_HOME": str(work / "home")}
        stack.enter_context(mock.patch.dict(os.environ, settings))
        dirs = {n: work / f"in-{n}" for _, n in BATCHES}
        for n, directory in dirs.items():
            write_requests(directory, n)
        write_requests(work / "shell", SHELL_FILES)
        shell_files = sorted((work / "shell").iterdir())
        _batch(node, dirs[10], 8, work)  # imports, caches, connections
        for _ in range(REPEATS):
            for concurrency, n in BATCHES:
                runs.setdefault(f"batch {concurrency}", []).append(
                    _batch(node, dirs[n], concurrency, work)
                )
            runs.setdefault("shell", []).append(_shell_loop(node, shell_files, work))
    _report(runs)


def _median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def _node_ms(runs: list[Run], n: int) -> str:
    known = [run.node_cpu_s for run in runs if run.node_cpu_s is not None]
    return f"{statistics.median(known) / n * 1000:.1f}" if known else "n/a"


def _report(runs: dict[str, list[Run]]) -> None:
    latency = LATENCY_MS / 1000
    rows, ratios, rates = [], {}, {}
    for concurrency, n in BATCHES:
        done = runs[f"batch {concurrency}"]
        wall, cpu = _median(done, "wall_s"), _median(done, "cpu_s")
        rate, ideal = n / wall, concurrency / latency
        ratios[concurrency], rates[concurrency] = rate / ideal, rate
        name = f"`--dir`, -j {concurrency}"
        rows.append([*_row(name, n, wall, rate, ideal, cpu / n * 1000), _node_ms(done, n)])
    wall, cpu = _median(runs["shell"], "wall_s"), _median(runs["shell"], "cpu_s")
    shell_rate = SHELL_FILES / wall
    name = f"shell loop, a process per file ({wall / SHELL_FILES * 1000:.0f} ms each)"
    shell = _row(name, SHELL_FILES, wall, shell_rate, 1 / latency, cpu / SHELL_FILES * 1000)
    rows.append([*shell, _node_ms(runs["shell"], SHELL_FILES)])
    print(f"Batch throughput, node latency L = {LATENCY_MS} ms, median of {REPEATS} runs, "
          f"{machine()}")  # fmt: skip
    headers = ["client", "requests", "wall time", "requests/s", "ideal C/L", "vs ideal",
               "client CPU ms/request", "node CPU ms/request"]  # fmt: skip
    print(table(headers, rows))
    speedup = rates[TARGET_CONCURRENCY] / shell_rate
    print(f"-j {TARGET_CONCURRENCY} batch: {speedup:.0f}x the shell loop's requests per second")
    ok = ratios[TARGET_CONCURRENCY] >= TARGET_RATIO
    print(f"target >= {TARGET_RATIO} of C/L at C={TARGET_CONCURRENCY}, L={LATENCY_MS} ms: "
          f"{'met' if ok else 'MISSED'}")  # fmt: skip


def _row(name: str, n: int, wall: float, rate: float, ideal: float, cpu_ms: float) -> list[str]:
    cells = [str(n), f"{wall:.2f} s", f"{rate:.1f}", f"{ideal:.0f}", f"{rate / ideal:.2f}"]
    return [name, *cells, f"{cpu_ms:.1f}"]


if __name__ == "__main__":
    main()
