"""``gonka results report`` on a terminal: rich tables and latency histograms.

Like :mod:`gonka_cli.render`, a module allowed to talk to rich, imported only when the
report goes to a terminal. Strings from the results file (endpoints, error codes) go
into `Text` objects, never into markup, so a crafted file cannot style or hide output.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from gonka_cli.batch.report import Report, bucket_label, histogram, shown_buckets
from gonka_cli.batch.stats import percentile

BAR_WIDTH = 40


def print_report(report: Report) -> None:
    """The report on the terminal that stdout is."""
    render_report(report, Console(file=sys.stdout, highlight=False))


def render_report(report: Report, console: Console) -> None:
    """Print the report's tables and histograms to `console`."""
    console.print(_outcomes(report))
    if report.errors or report.statuses:
        console.print(_errors(report))
    console.print(_distribution("Latency", report.latencies))
    if report.ttfts:
        console.print(_distribution("Time to first token", report.ttfts))
    console.print(_endpoints(report))
    for count, what in (
        (report.duplicates, "line(s) repeat a custom_id"),
        (report.torn, "torn last line(s) skipped"),
        (report.unreadable, "unreadable line(s) skipped"),
    ):
        if count:
            console.print(Text(f"warning: {count} {what}", style="yellow"))


def _outcomes(report: Report) -> Table:
    table = Table(title="Outcomes", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("lines", str(report.lines))
    table.add_row(Text("succeeded", style="green"), str(report.succeeded))
    table.add_row(Text("failed", style="red" if report.failed else ""), str(report.failed))
    table.add_row("retries", str(report.retries))
    table.add_row("prompt tokens", str(report.prompt_tokens))
    table.add_row("completion tokens", str(report.completion_tokens))
    table.add_row("total tokens", str(report.total_tokens))
    return table


def _errors(report: Report) -> Table:
    table = Table(title="Errors and status codes", title_justify="left")
    table.add_column("error code / status")
    table.add_column("lines", justify="right")
    for code, count in sorted(report.errors.items()):
        table.add_row(Text(code, style="red"), str(count))
    for status, count in sorted(report.statuses.items()):
        table.add_row(Text(f"HTTP {status}"), str(count))
    return table


def _distribution(title: str, values: Sequence[float]) -> Group | Text:
    if not values:
        return Text(f"{title}: no successful line carries it")
    quantiles = Table(title=title, title_justify="left")
    for name in ("count", "p50", "p95", "p99", "max"):
        quantiles.add_column(name, justify="right")
    quantiles.add_row(
        str(len(values)),
        _ms(percentile(values, 0.5)),
        _ms(percentile(values, 0.95)),
        _ms(percentile(values, 0.99)),
        _ms(max(values)),
    )
    return Group(quantiles, _histogram(values))


def _histogram(values: Sequence[float]) -> Table:
    counts = histogram(values)
    peak = max(counts)
    table = Table(show_header=False, box=None, padding=(0, 1))
    table.add_column("bucket", justify="right")
    table.add_column("count", justify="right")
    table.add_column("bar")
    for index in shown_buckets(counts):
        bar = "█" * round(BAR_WIDTH * counts[index] / peak)
        table.add_row(bucket_label(index), str(counts[index]), Text(bar, style="blue"))
    return table


def _endpoints(report: Report) -> Table:
    table = Table(title="Per endpoint", title_justify="left")
    for name, justify in (
        ("endpoint", "left"),
        ("requests", "right"),
        ("succeeded", "right"),
        ("failed", "right"),
        ("completion tokens", "right"),
        ("p50", "right"),
        ("p95", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, stats in sorted(report.endpoints.items()):
        table.add_row(
            Text(name),
            str(stats.requests),
            str(stats.succeeded),
            str(stats.failed),
            str(stats.completion_tokens),
            _ms(percentile(stats.latencies, 0.5)),
            _ms(percentile(stats.latencies, 0.95)),
        )
    return table


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"
