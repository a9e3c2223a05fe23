"""``gonka results report --html FILE``: the report as one self-contained page.

Inline CSS and inline SVG charts; no JavaScript, no fonts, images or styles from
anywhere else, so the page reads the same offline or attached to a CI run. Every string
that came from the results file (endpoints, error codes) is HTML-escaped. Each number
sits in an element with a ``data-k`` name, so that a script (or a test) can read the
page back.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from gonka_cli.batch.report import (
    Report,
    bucket_label,
    clean,
    histogram,
    shown_buckets,
    summary,
)
from gonka_cli.batch.stats import percentile

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17702a}.bad{color:#b3261e}.warn{color:#8a5a00}
svg text{font:11px system-ui,sans-serif;fill:#333}
"""


def render_html(report: Report, *, title: str) -> str:
    """The whole page for `report`; `title` names the results file."""
    title = clean(title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gonka results report: {escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>gonka results report: {escape(title)}</h1>",
        _outcomes(report),
        _errors(report),
        _distribution("Latency", "latency", report.latencies),
    ]
    if report.ttfts:
        parts.append(_distribution("Time to first token", "ttft", report.ttfts))
    parts.extend([_endpoints(report), _problems(report), "</body></html>"])
    return "\n".join(parts) + "\n"


def _cell(key: str, value: object) -> str:
    return f'<td class="n" data-k="{escape(key)}">{escape(str(value))}</td>'


def _row(label: str, key: str, value: object) -> str:
    return f"<tr><th>{escape(label)}</th>{_cell(key, value)}</tr>"


def _outcomes(report: Report) -> str:
    rows = [
        _row("lines", "lines", report.lines),
        _row("succeeded", "succeeded", report.succeeded),
        _row("failed", "failed", report.failed),
        _row("retries", "retries", report.retries),
        _row("prompt tokens", "prompt_tokens", report.prompt_tokens),
        _row("completion tokens", "completion_tokens", report.completion_tokens),
        _row("total tokens", "total_tokens", report.total_tokens),
    ]
    return "<h2>Outcomes</h2>" + _outcome_bar(report) + "<table>" + "".join(rows) + "</table>"


def _outcome_bar(report: Report) -> str:
    """One horizontal bar: green for successes, red for failures."""
    width, total = 600, max(1, report.lines)
    ok = round(width * report.succeeded / total)
    return (
        f'<svg width="{width}" height="22" role="img" aria-label="outcomes">'
        f'<rect x="0" y="0" width="{ok}" height="22" fill="#3a9d4f">'
        f"<title>{report.succeeded} succeeded</title></rect>"
        f'<rect x="{ok}" y="0" width="{width - ok}" height="22" fill="#d0473d">'
        f"<title>{report.failed} failed</title></rect></svg>"
    )


def _errors(report: Report) -> str:
    if not report.errors and not report.statuses:
        return ""
    rows = [
        f"<tr><td>{escape(code)}</td>{_cell('error:' + code, count)}</tr>"
        for code, count in sorted(report.errors.items())
    ]
    statuses = [
        f"<tr><td>HTTP {status}</td>{_cell(f'status:{status}', count)}</tr>"
        for status, count in sorted(report.statuses.items())
    ]
    return (
        "<h2>Errors and status codes</h2><table><tr><th>error code</th><th>lines</th></tr>"
        + "".join(rows)
        + "</table><table><tr><th>status</th><th>lines</th></tr>"
        + "".join(statuses)
        + "</table>"
    )


def _distribution(title: str, key: str, values: Sequence[float]) -> str:
    facts = summary(values)
    rows = "".join(
        _row(name, f"{key}_{name}", _ms(facts[name]))
        for name in ("count", "min", "mean", "p50", "p95", "p99", "max")
    )
    return f"<h2>{escape(title)}</h2><table>{rows}</table>{_histogram_svg(key, values)}"


def _ms(value: object) -> str:
    if isinstance(value, float):
        return f"{value * 1000:.1f} ms"
    return "-" if value is None else str(value)


def _histogram_svg(key: str, values: Sequence[float]) -> str:
    """Vertical bars, one per bucket from the first to the last used; label and count."""
    counts = histogram(values)
    buckets = shown_buckets(counts)
    if not buckets:
        return "<p>No successful line carries this time.</p>"
    peak = max(counts)
    bar_w, gap, plot_h, top = 56, 8, 160, 18
    width = len(buckets) * (bar_w + gap) + gap
    height = top + plot_h + 34
    shapes = []
    for slot, index in enumerate(buckets):
        count = counts[index]
        bar_h = round(plot_h * count / peak)
        x, y = gap + slot * (bar_w + gap), top + plot_h - bar_h
        label = bucket_label(index)
        shapes.append(
            f'<rect x="{x}" y="{y}" width="{bar_w}" height="{bar_h}" fill="#4a78c2" '
            f'data-k="{key}_bucket" data-bucket="{escape(label)}" data-count="{count}">'
            f"<title>{escape(label)}: {count}</title></rect>"
            f'<text x="{x + bar_w / 2}" y="{y - 4}" text-anchor="middle">{count}</text>'
            f'<text x="{x + bar_w / 2}" y="{top + plot_h + 14}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="{key} histogram">'
        f'<line x1="0" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" stroke="#999"/>'
        + "".join(shapes)
        + "</svg>"
    )


def _endpoints(report: Report) -> str:
    head = (
        "<tr><th>endpoint</th><th>requests</th><th>succeeded</th><th>failed</th>"
        "<th>completion tokens</th><th>p50</th><th>p95</th></tr>"
    )
    rows = []
    for number, (name, stats) in enumerate(sorted(report.endpoints.items())):
        prefix = f"endpoint{number}"
        rows.append(
            f'<tr><td data-k="{prefix}_name">{escape(name)}</td>'
            + _cell(f"{prefix}_requests", stats.requests)
            + _cell(f"{prefix}_succeeded", stats.succeeded)
            + _cell(f"{prefix}_failed", stats.failed)
            + _cell(f"{prefix}_completion_tokens", stats.completion_tokens)
            + _cell(f"{prefix}_p50", _ms(percentile(stats.latencies, 0.5)))
            + _cell(f"{prefix}_p95", _ms(percentile(stats.latencies, 0.95)))
            + "</tr>"
        )
    return "<h2>Per endpoint</h2><table>" + head + "".join(rows) + "</table>"


def _problems(report: Report) -> str:
    problems = [
        ("duplicate_custom_ids", report.duplicates, "lines repeat a custom_id"),
        ("torn_lines", report.torn, "torn last lines skipped"),
        ("unreadable_lines", report.unreadable, "unreadable lines skipped"),
    ]
    found = [
        f'<li class="warn"><span data-k="{key}">{count}</span> {what}</li>'
        for key, count, what in problems
        if count
    ]
    return "<h2>Problems</h2><ul>" + "".join(found) + "</ul>" if found else ""
