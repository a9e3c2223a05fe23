"""Peak memory of `gonka send-request --dir` over 100,000 small request files, and 10,000.

    python -m benchmarks.bench_memory                 # 100,000 and 10,000 files: minutes
    python -m benchmarks.bench_memory --count 20000   # a quicker look: 20,000 and 2,000

Each batch is a whole `gonka send-request` process against `gonka node` (no latency,
in a process of its own), and its peak RSS is its own (`os.wait4`). The baseline is a
one-file batch run in the same script: the interpreter, the libraries, one request.
Target: under 150 MB at 100,000 files, and flat: within 1.25x of the 10,000-file batch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks._node import (
    Node,
    Usage,
    client_env,
    gonka,
    node_process,
    run_measured,
    write_requests,
)
from benchmarks._util import machine, table

COUNT = 100_000
CONCURRENCY = 32
LIMIT_MB = 150.0
FLAT = 1.25


def _batch(node: Node, directory: Path, work: Path, expected: int) -> Usage:
    out = work / "results.jsonl"
    out.unlink(missing_ok=True)
    argv = gonka(
        "send-request", "--node-address", node.url, "--dir", str(directory),
        "--output-file", str(out), "-j", str(CONCURRENCY), "-q",
    )  # fmt: skip
    usage = run_measured(argv, client_env(str(work / "home")), log=work / "stderr.txt")
    lines = _count_lines(out)
    if lines != expected:
        raise RuntimeError(f"{out} has {lines} lines, expected {expected}")
    out.unlink()
    return usage


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Write the files, run the three batches, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT, help="files in the large batch")
    count = parser.parse_args(argv).count
    small = max(1, count // 10)
    with tempfile.TemporaryDirectory() as tmp, node_process() as node:
        work = Path(tmp)
        for n in (1, small, count):
            write_requests(work / f"in-{n}", n)
        _batch(node, work / "in-1", work, 1)  # warm the caches
        one = [_batch(node, work / "in-1", work, 1) for _ in range(3)]
        runs = {n: _batch(node, work / f"in-{n}", work, n) for n in (small, count)}
    base = statistics.median(usage.max_rss_mb for usage in one)
    rows = [["1", f"{base:.1f} MB", "1.00x", "", ""]]
    for n, usage in runs.items():
        rows.append([f"{n:,}", f"{usage.max_rss_mb:.1f} MB", f"{usage.max_rss_mb / base:.2f}x",
                     f"{usage.wall_s:.0f} s", f"{n / usage.wall_s:.0f}"])  # fmt: skip
    print(f"Peak memory of a batch, -j {CONCURRENCY}, one run each, {machine()}")
    print(table(["request files", "peak RSS", "vs one file", "wall time", "requests/s"], rows))
    large, smaller = runs[count].max_rss_mb, runs[small].max_rss_mb
    per_file = (large - smaller) * 1024 * 1024 / (count - small)
    print(f"growth from {small:,} to {count:,} files: {large / smaller:.2f}x, "
          f"{per_file:.0f} bytes per file")  # fmt: skip
    ok = large < LIMIT_MB and large <= FLAT * smaller
    print(f"target < {LIMIT_MB:.0f} MB at {count:,} files and within {FLAT}x of {small:,}: "
          f"{'met' if ok else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
