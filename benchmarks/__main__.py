"""Run every benchmark, one process each, and print their tables (Markdown, for the README).

python -m benchmarks            # all six; the memory one takes a few minutes
python -m benchmarks --quick    # the memory one over 20,000 files instead of 100,000
"""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHMARKS = (
    "bench_sign",
    "bench_startup",
    "bench_batch",
    "bench_clients",
    "bench_memory",
    "bench_stream",
)


def main() -> None:
    """Run each benchmark module in turn; stop at the first that fails."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smaller memory benchmark")
    quick = parser.parse_args().quick
    for n, name in enumerate(BENCHMARKS):
        extra = ["--count", "20000"] if quick and name == "bench_memory" else []
        if n:
            print(flush=True)
        subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *extra], check=True)


if __name__ == "__main__":
    main()
