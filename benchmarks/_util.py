"""Shared helpers for the benchmark scripts: medians of repeated runs and a plain table."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence


def median_rate(fn: Callable[[], object], *, seconds: float = 0.5, repeats: int = 5) -> float:
    """Calls per second of `fn`: the median over `repeats` runs of about `seconds` each."""
    rates = []
    for _ in range(repeats):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(50):
                fn()
            calls += 50
        rates.append(calls / (time.perf_counter() - start))
    return statistics.median(rates)


def machine() -> str:
    """One line naming this machine, for the tables in the README."""
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, so that the output can go into the README as it is."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
