"""Batch statistics, exit codes, the plain progress line, the summary and the rich bar."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from gonka_cli.batch.stats import (
    BatchStats,
    PlainProgress,
    Snapshot,
    exit_code,
    format_summary,
    percentile,
    progress_line,
)
from gonka_cli.errors import ExitCode
from gonka_cli.render_batch import RichProgress

SNAP = Snapshot(
    total=500, succeeded=117, failed=3, in_flight=8, retries=4, elapsed_s=10.0, paused_s=0
)


def test_percentile_is_nearest_rank() -> None:
    """p50 and p95 use the nearest-rank method; an empty list has none."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([], 0.5) is None


def test_exit_code_is_0_8_or_130() -> None:
    """All ok is 0, any failure is 8, an interrupt is 130 whatever else happened."""
    assert exit_code(BatchStats(succeeded=3)) is ExitCode.OK
    assert exit_code(BatchStats(succeeded=3, failed=Counter(http_400=1))) is ExitCode.PARTIAL
    interrupted = BatchStats(failed=Counter(http_400=1), interrupted=True)
    assert exit_code(interrupted) is ExitCode.INTERRUPTED


def test_summary_lists_successes_failures_by_reason_retries_tokens_latency() -> None:
    """The summary names every number the issue asks for, failures grouped by reason."""
    stats = BatchStats(
        total=10,
        succeeded=7,
        failed=Counter(http_400=2, network_error=1),
        retries=5,
        prompt_tokens=30,
        completion_tokens=12,
        total_tokens=42,
        latencies=[0.1, 0.2, 0.3, 0.4],
        wall_s=2.0,
    )
    text = "\n".join(format_summary(stats))
    assert "10 requests finished in 2.0 s" in text
    assert "succeeded  7" in text
    assert "failed     3  (http_400 2, network_error 1)" in text
    assert "retries    5" in text
    assert "tokens     42 (prompt 30, completion 12)" in text
    assert "latency    p50 0.200 s, p95 0.400 s" in text
    assert "not done" not in text


def test_summary_says_what_is_left_after_an_interrupt() -> None:
    """Interrupted with inputs left: the summary says how many and how to finish them."""
    stats = BatchStats(total=10, succeeded=4, skipped=2, interrupted=True)
    text = "\n".join(format_summary(stats))
    assert "not done   6 (send again with --resume)" in text
    assert "skipped    2 already done" in text
    assert "interrupted" in text


def test_progress_line_shows_counts_rate_and_eta() -> None:
    """The plain progress line: done/total, failed, in flight, rate, retries, ETA."""
    assert progress_line(SNAP) == (
        "batch: 120/500 done, 3 failed, 8 in flight, 12.0/s, 4 retries, ETA 32 s"
    )
    unknown = Snapshot(None, 0, 0, 2, 0, elapsed_s=1.0, paused_s=30.0)
    assert progress_line(unknown) == (
        "batch: 0/? done, 0 failed, 2 in flight, 0.0/s, paused 30 s (Retry-After)"
    )


def test_plain_progress_writes_at_most_one_line_per_interval() -> None:
    """Updates between intervals are dropped; one line per interval gets through."""
    now = [0.0]
    lines: list[str] = []
    progress = PlainProgress(lines.append, interval_s=5.0, clock=lambda: now[0])
    for t in [1.0, 4.9, 5.0, 6.0, 9.9, 10.1]:
        now[0] = t
        progress.update(SNAP)
    progress.close(SNAP)
    assert len(lines) == 2


def test_rich_progress_draws_the_bar_into_its_console() -> None:
    """The rich bar shows done/total and the status fields, and stops cleanly."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    bar = RichProgress(out, console=console)
    bar.update(SNAP)
    bar.close(SNAP)
    text = out.getvalue()
    assert "120/500" in text
    assert "3 failed" in text
    assert "8 in flight" in text
