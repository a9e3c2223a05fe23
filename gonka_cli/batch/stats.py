"""Batch statistics, the progress line and the end-of-batch summary (pure; no terminal)."""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gonka_cli.batch.results import Result
from gonka_cli.errors import ExitCode

Clock = Callable[[], float]


@dataclass
class BatchStats:
    """What a batch run did, for the progress display, the summary and the exit code."""

    total: int | None = None
    skipped: int = 0
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    # Packed doubles: 8 bytes a request, where a list of floats costs 32.
    latencies: array[float] = field(default_factory=lambda: array("d"))
    wall_s: float = 0.0
    paused_s: float = 0.0
    interrupted: bool = False
    # The signal that stopped the run ("SIGINT", "SIGTERM", "SIGHUP"), when one did.
    stop_signal: str | None = None
    # Requests still in flight when the stop's grace period ended (or a second signal
    # came): cancelled, so they have no line, though a server may have answered them.
    cancelled: int = 0
    stopped_by_failure: bool = False

    @property
    def failed_total(self) -> int:
        """All failures, whatever the reason."""
        return sum(self.failed.values())

    @property
    def finished(self) -> int:
        """Inputs that got their result in this run."""
        return self.succeeded + self.failed_total

    def add(self, result: Result, usage: dict[str, Any] | None = None) -> None:
        """Count one finished input."""
        if result.ok:
            self.succeeded += 1
            if result.latency_s is not None:
                self.latencies.append(result.latency_s)
            self._add_usage(usage)
        else:
            self.failed[result.error_code or "error"] += 1

    def _add_usage(self, usage: dict[str, Any] | None) -> None:
        self.prompt_tokens += _token_count(usage, "prompt_tokens")
        self.completion_tokens += _token_count(usage, "completion_tokens")
        self.total_tokens += _token_count(usage, "total_tokens")


def _token_count(usage: dict[str, Any] | None, key: str) -> int:
    value = (usage or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


_SIGNAL_CODES = {"SIGTERM": ExitCode.TERMINATED, "SIGHUP": ExitCode.HANGUP}


def exit_code(stats: BatchStats) -> ExitCode:
    """130 when interrupted (143 by SIGTERM, 129 by SIGHUP), 8 when any input failed, else 0."""
    if stats.interrupted:
        return _SIGNAL_CODES.get(stats.stop_signal or "", ExitCode.INTERRUPTED)
    return ExitCode.PARTIAL if stats.failed_total else ExitCode.OK


def format_summary(stats: BatchStats) -> list[str]:
    """The end-of-batch summary, one line each, for stderr."""
    lines = [f"batch: {stats.finished} requests finished in {stats.wall_s:.1f} s"]
    lines.append(f"  succeeded  {stats.succeeded}")
    reasons = ", ".join(f"{code} {n}" for code, n in sorted(stats.failed.items()))
    lines.append(f"  failed     {stats.failed_total}" + (f"  ({reasons})" if reasons else ""))
    if stats.skipped:
        lines.append(f"  skipped    {stats.skipped} already done (--resume)")
    if stats.total is not None and stats.total > stats.finished:
        lines.append(f"  not done   {stats.total - stats.finished} (send again with --resume)")
    lines.append(f"  retries    {stats.retries}")
    lines.append(
        f"  tokens     {stats.total_tokens} "
        f"(prompt {stats.prompt_tokens}, completion {stats.completion_tokens})"
    )
    p50, p95 = percentile(stats.latencies, 0.5), percentile(stats.latencies, 0.95)
    if p50 is not None and p95 is not None:
        lines.append(f"  latency    p50 {p50:.3f} s, p95 {p95:.3f} s")
    if stats.interrupted:
        by = f" by {stats.stop_signal}" if stats.stop_signal else ""
        if stats.cancelled:
            lines.append(
                f"  interrupted{by}: {stats.cancelled} request(s) still in flight were cancelled"
            )
        else:
            lines.append(f"  interrupted{by}: requests in flight were allowed to finish")
    elif stats.stopped_by_failure:
        lines.append("  stopped at the first failure (--fail-fast)")
    return lines


# --- progress --------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The state of a run at one moment, for a progress display."""

    total: int | None
    succeeded: int
    failed: int
    in_flight: int
    retries: int
    elapsed_s: float
    paused_s: float

    @property
    def finished(self) -> int:
        """Inputs with a result so far."""
        return self.succeeded + self.failed

    @property
    def rate(self) -> float:
        """Finished inputs per second so far."""
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, when the total is known and there is a rate."""
        if self.total is None or not self.rate:
            return None
        return max(0, self.total - self.finished) / self.rate


class ProgressView(Protocol):
    """A progress display: told the state now and then, and once at the end."""

    def update(self, snapshot: Snapshot) -> None:
        """Show `snapshot` (a view may ignore updates that come too often)."""

    def close(self, snapshot: Snapshot) -> None:
        """Show the final state and release the display."""


class NoProgress:
    """``--quiet``: no progress display."""

    def update(self, snapshot: Snapshot) -> None:
        """Ignore."""

    def close(self, snapshot: Snapshot) -> None:
        """Ignore."""


def progress_line(snapshot: Snapshot) -> str:
    """``batch: 120/500 done, 3 failed, 8 in flight, 12.3/s, ETA 31 s``."""
    total = "?" if snapshot.total is None else str(snapshot.total)
    parts = [
        f"batch: {snapshot.finished}/{total} done",
        f"{snapshot.failed} failed",
        f"{snapshot.in_flight} in flight",
        f"{snapshot.rate:.1f}/s",
    ]
    if snapshot.retries:
        parts.append(f"{snapshot.retries} retries")
    if snapshot.paused_s > 0:
        parts.append(f"paused {snapshot.paused_s:.0f} s (Retry-After)")
    if snapshot.eta_s is not None:
        parts.append(f"ETA {snapshot.eta_s:.0f} s")
    return ", ".join(parts)


class PlainProgress:
    """A progress line every `interval_s` seconds, for logs and pipes."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        interval_s: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._write = write
        self._interval = interval_s
        self._clock = clock
        self._last = clock()

    def update(self, snapshot: Snapshot) -> None:
        """Write a line if the last one is `interval_s` old."""
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._write(progress_line(snapshot))

    def close(self, snapshot: Snapshot) -> None:
        """Nothing: the summary follows."""
