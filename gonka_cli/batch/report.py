"""``gonka results report``: what a results file says, as numbers (pure; no terminal).

One pass over the file, keeping counters and the latencies (8 bytes each). Latency and
time to first token are those of the successful lines (a failure's time says how long
it took to give up, not how fast the network answered); tokens are the successes'
``usage``; retries are each line's ``x_gonka.attempts`` minus one. The same
:class:`Report` feeds the terminal tables, the plain text, ``--output json`` and the
HTML page.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gonka_cli.batch.merge import RawLine
from gonka_cli.batch.stats import percentile

# Upper bounds (seconds) of the histogram's buckets; the last bucket is everything above.
BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
NO_ENDPOINT = "(none)"


@dataclass
class EndpointStats:
    """One endpoint's share of the lines."""

    requests: int = 0
    succeeded: int = 0
    completion_tokens: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))

    @property
    def failed(self) -> int:
        """Lines for this endpoint that failed."""
        return self.requests - self.succeeded


@dataclass
class Report:
    """Everything counted in a results file."""

    lines: int = 0
    succeeded: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    ttfts: array[float] = field(default_factory=lambda: array("d"))
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    duplicates: int = 0
    torn: int = 0
    unreadable: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    @property
    def failed(self) -> int:
        """Lines that carry an error."""
        return sum(self.errors.values())

    def add(self, record: dict[str, Any]) -> None:
        """Count one results record."""
        self.lines += 1
        custom_id = record["custom_id"]
        if custom_id in self._seen:
            self.duplicates += 1
        self._seen.add(custom_id)
        gonka = _dict(record.get("x_gonka"))
        response = _dict(record.get("response"))
        status = _int(response.get("status_code"))
        if status is not None:
            self.statuses[status] += 1
        attempts = _int(gonka.get("attempts"))
        if attempts is not None and attempts > 1:
            self.retries += attempts - 1
        endpoint = self._endpoint(gonka.get("endpoint"))
        endpoint.requests += 1
        if record.get("error") is None:
            self._add_success(gonka, response, endpoint)
        else:
            self.errors[_error_code(record.get("error"))] += 1

    def _endpoint(self, name: Any) -> EndpointStats:
        key = clean(name) if isinstance(name, str) and name else NO_ENDPOINT
        return self.endpoints.setdefault(key, EndpointStats())

    def _add_success(
        self, gonka: dict[str, Any], response: dict[str, Any], endpoint: EndpointStats
    ) -> None:
        self.succeeded += 1
        endpoint.succeeded += 1
        latency, ttft = _seconds(gonka.get("latency_s")), _seconds(gonka.get("ttft_s"))
        if latency is not None:
            self.latencies.append(latency)
            endpoint.latencies.append(latency)
        if ttft is not None:
            self.ttfts.append(ttft)
        usage = _dict(_dict(response.get("body")).get("usage"))
        prompt, completion = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.total_tokens += _tokens(usage, "total_tokens") or prompt + completion
        endpoint.completion_tokens += completion

    def as_json(self) -> dict[str, Any]:
        """The report as ``--output json`` prints it (a stable shape for scripts)."""
        return {
            "lines": self.lines,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "errors": dict(sorted(self.errors.items())),
            "status_codes": {str(k): v for k, v in sorted(self.statuses.items())},
            "retries": self.retries,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.total_tokens,
            },
            "latency_s": summary(self.latencies),
            "ttft_s": summary(self.ttfts) if self.ttfts else None,
            "endpoints": [
                _endpoint_json(name, stats) for name, stats in sorted(self.endpoints.items())
            ],
            "problems": {
                "duplicate_custom_ids": self.duplicates,
                "torn_lines": self.torn,
                "unreadable_lines": self.unreadable,
            },
        }


def build_report(lines: Iterable[RawLine]) -> Report:
    """The report for a results file's lines (see `gonka_cli.batch.merge.scan_lines`)."""
    report = Report()
    for line in lines:
        if line.record is not None:
            report.add(line.record)
        elif line.whole:
            report.unreadable += 1
        else:
            report.torn += 1
    return report


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: Any) -> float | None:
    if _int(value) is not None or isinstance(value, float):
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


def _tokens(usage: dict[str, Any], key: str) -> int:
    value = _int(usage.get(key))
    return value if value is not None and value >= 0 else 0


def _error_code(error: Any) -> str:
    code = _dict(error).get("code")
    return clean(code) if isinstance(code, str) and code else "error"


def clean(text: str) -> str:
    """`text` as valid UTF-8: a lone surrogate (a ``"\\ud800"`` escape in the file) is
    spelled out as ``\\ud800``, so that no output of the report can fail to encode."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _endpoint_json(name: str, stats: EndpointStats) -> dict[str, Any]:
    return {
        "endpoint": name,
        "requests": stats.requests,
        "succeeded": stats.succeeded,
        "failed": stats.failed,
        "completion_tokens": stats.completion_tokens,
        "latency_p50_s": _round(percentile(stats.latencies, 0.5)),
        "latency_p95_s": _round(percentile(stats.latencies, 0.95)),
    }


# --- distributions ---------------------------------------------------------------------


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Count, min, mean, p50/p95/p99 (nearest rank), max and the histogram of `values`."""
    return {
        "count": len(values),
        "min": _round(min(values)) if values else None,
        "mean": _round(math.fsum(values) / len(values)) if values else None,
        "p50": _round(percentile(values, 0.50)),
        "p95": _round(percentile(values, 0.95)),
        "p99": _round(percentile(values, 0.99)),
        "max": _round(max(values)) if values else None,
        "histogram": [
            {"le": bound, "count": n} for bound, n in zip(_bounds(), histogram(values), strict=True)
        ],
    }


def _bounds() -> list[float | None]:
    return [*BUCKETS_S, None]  # None: the open last bucket (above the last bound)


def histogram(values: Iterable[float]) -> list[int]:
    """How many of `values` fall in each bucket of `BUCKETS_S` (value <= bound), plus one
    last bucket for everything above."""
    counts = [0] * (len(BUCKETS_S) + 1)
    for value in values:
        counts[_bucket(value)] += 1
    return counts


def _bucket(value: float) -> int:
    for index, bound in enumerate(BUCKETS_S):
        if value <= bound:
            return index
    return len(BUCKETS_S)


def bucket_label(index: int) -> str:
    """``<= 10 ms``, ``25-50 ms``, ``> 60 s``: the range of bucket `index`."""
    if index >= len(BUCKETS_S):
        return f"> {_duration(BUCKETS_S[-1])}"
    if index == 0:
        return f"<= {_duration(BUCKETS_S[0])}"
    return f"{_duration(BUCKETS_S[index - 1])} - {_duration(BUCKETS_S[index])}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g} ms"
    return f"{seconds:g} s"


def shown_buckets(counts: Sequence[int]) -> range:
    """The buckets worth drawing: from the first to the last that holds anything."""
    used = [index for index, count in enumerate(counts) if count]
    return range(used[0], used[-1] + 1) if used else range(0)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


# --- plain text ------------------------------------------------------------------------


def format_text(report: Report) -> list[str]:
    """The report as plain lines (for a pipe or a log)."""
    lines = [
        f"results: {report.lines} line(s)",
        f"  succeeded  {report.succeeded}",
        f"  failed     {report.failed}",
    ]
    lines.extend(f"    {_printable(code):<22} {n}" for code, n in sorted(report.errors.items()))
    lines.append(f"  retries    {report.retries}")
    lines.append(
        f"  tokens     prompt {report.prompt_tokens}, completion {report.completion_tokens}, "
        f"total {report.total_tokens}"
    )
    lines.extend(_distribution_text("latency", report.latencies))
    if report.ttfts:
        lines.extend(_distribution_text("time to first token", report.ttfts))
    lines.append("per endpoint:")
    for name, stats in sorted(report.endpoints.items()):
        p50 = percentile(stats.latencies, 0.5)
        p95 = percentile(stats.latencies, 0.95)
        lines.append(
            f"  {_printable(name)}  requests {stats.requests}, succeeded {stats.succeeded}, "
            f"failed {stats.failed}, completion tokens {stats.completion_tokens}, "
            f"p50 {_ms(p50)}, p95 {_ms(p95)}"
        )
    lines.extend(_problems_text(report))
    return lines


def _distribution_text(title: str, values: Sequence[float]) -> list[str]:
    if not values:
        return [f"{title}: no successful line carries it"]
    lines = [
        f"{title}: p50 {_ms(percentile(values, 0.5))}, p95 {_ms(percentile(values, 0.95))}, "
        f"p99 {_ms(percentile(values, 0.99))}, max {_ms(max(values))}"
    ]
    counts = histogram(values)
    peak = max(counts)
    for index in shown_buckets(counts):
        bar = "#" * round(30 * counts[index] / peak)
        lines.append(f"  {bucket_label(index):>17} {counts[index]:>7}  {bar}")
    return lines


def _problems_text(report: Report) -> list[str]:
    problems = [
        (report.duplicates, "line(s) repeat a custom_id"),
        (report.torn, "torn last line(s) skipped"),
        (report.unreadable, "unreadable line(s) skipped"),
    ]
    return [f"warning: {count} {what}" for count, what in problems if count]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _printable(text: str) -> str:
    """Server-supplied text for a terminal or log: control characters escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
