"""`gonka results report`: golden numbers for a hand-written results file, in JSON, plain
text, rich tables and a self-contained HTML page read back with html.parser."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from gonka_cli.batch.merge import scan_lines
from gonka_cli.batch.report import Report, bucket_label, build_report
from gonka_cli.batch.report_html import render_html
from gonka_cli.cli import app
from gonka_cli.render_report import render_report

FIXTURE = Path(__file__).parent / "fixtures" / "results_report.jsonl"


def hist(*counts: int) -> list[dict[str, Any]]:
    """The 13 histogram buckets with these counts (the rest zero)."""
    bounds: list[float | None] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    bounds += [30.0, 60.0, None]
    full = list(counts) + [0] * (len(bounds) - len(counts))
    return [{"le": b, "count": n} for b, n in zip(bounds, full, strict=True)]


# Worked out by hand from the fixture (see the comments there is no room for in JSONL):
# successes a, b, c, f and a again; failures d (429), e (network), g (invalid input);
# one unreadable line and one torn last line.
GOLDEN: dict[str, Any] = {
    "lines": 8,
    "succeeded": 5,
    "failed": 3,
    "errors": {"http_429": 1, "invalid_input": 1, "network_error": 1},
    "status_codes": {"200": 5, "429": 1},
    "retries": 3,
    "tokens": {"prompt": 40, "completion": 22, "total": 62},
    "latency_s": {
        "count": 5,
        "min": 0.004,
        "mean": 0.7688,
        "p50": 0.12,
        "p95": 3.0,
        "p99": 3.0,
        "max": 3.0,
        "histogram": hist(1, 1, 0, 0, 1, 0, 1, 0, 1),
    },
    "ttft_s": {
        "count": 4,
        "min": 0.003,
        "mean": 0.13825,
        "p50": 0.01,
        "p95": 0.5,
        "p99": 0.5,
        "max": 0.5,
        "histogram": hist(2, 0, 1, 0, 0, 1),
    },
    "endpoints": [
        {
            "endpoint": "(none)",
            "requests": 3,
            "succeeded": 0,
            "failed": 3,
            "completion_tokens": 0,
            "latency_p50_s": None,
            "latency_p95_s": None,
        },
        {
            "endpoint": "http://ta-1.example/v1",
            "requests": 3,
            "succeeded": 3,
            "failed": 0,
            "completion_tokens": 17,
            "latency_p50_s": 0.02,
            "latency_p95_s": 0.12,
        },
        {
            "endpoint": "http://ta-2.example/v1",
            "requests": 2,
            "succeeded": 2,
            "failed": 0,
            "completion_tokens": 5,
            "latency_p50_s": 0.7,
            "latency_p95_s": 3.0,
        },
    ],
    "problems": {"duplicate_custom_ids": 1, "torn_lines": 1, "unreadable_lines": 1},
}


def fixture_report() -> Report:
    with FIXTURE.open("rb") as handle:
        return build_report(scan_lines(handle))


def test_report_json_matches_the_hand_worked_golden() -> None:
    """`-o json` of the fixture is exactly the numbers worked out by hand."""
    result = CliRunner().invoke(app, ["results", "report", str(FIXTURE), "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == GOLDEN
    assert result.stderr == ""


def test_report_plain_text_when_piped() -> None:
    """Piped (CliRunner is no terminal), the report is plain lines with the key numbers."""
    result = CliRunner().invoke(app, ["results", "report", str(FIXTURE)])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out
    assert "┃" not in out
    assert "succeeded  5" in out
    assert "failed     3" in out
    assert "retries    3" in out
    assert "http_429" in out
    assert "network_error" in out
    assert "latency: p50 120.0 ms, p95 3000.0 ms, p99 3000.0 ms" in out
    assert "time to first token: p50 10.0 ms" in out
    assert "warning: 1 torn last line(s) skipped" in out


def test_rich_tables_hold_the_counts_and_the_histogram() -> None:
    """On a terminal: tables with the counts, the percentiles and one histogram bar per
    bucket between the first and the last used."""
    buffer = io.StringIO()
    render_report(fixture_report(), Console(file=buffer, width=120, color_system=None))
    text = buffer.getvalue()
    for needle in ("Outcomes", "Latency", "Time to first token", "Per endpoint", "http_429"):
        assert needle in text
    assert "120.0 ms" in text
    assert "3000.0 ms" in text
    labels = [bucket_label(index) for index in range(13)]
    rows = [
        (label, line.strip().removeprefix(label).split())
        for line in text.splitlines()
        for label in labels
        if line.strip().startswith(label + " ")
    ]
    counts = [int(words[0]) for _, words in rows]
    assert counts[:9] == [1, 1, 0, 0, 1, 0, 1, 0, 1]  # latency
    assert counts[9:] == [2, 0, 1, 0, 0, 1]  # time to first token
    bars = [len(words[1]) if len(words) > 1 else 0 for _, words in rows]
    assert bars[:9] == [40, 40, 0, 0, 40, 0, 40, 0, 40]  # every used bucket at the peak
    assert bars[9:] == [40, 0, 20, 0, 0, 20]


class PageReader(HTMLParser):
    """Collects what a test needs from the page: data-k texts, bars, and what must
    never be there (scripts, outside resources)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.bars: dict[str, list[tuple[str, int]]] = {}
        self.tags: list[str] = []
        self.links: list[str] = []
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href") or k.startswith("on")]
        key = found.get("data-k")
        if tag == "rect" and key:
            bucket, count = found["data-bucket"] or "", int(found["data-count"] or 0)
            self.bars.setdefault(key, []).append((bucket, count))
        elif key:
            self._key = key
            self.values[key] = ""

    def handle_endtag(self, tag: str) -> None:
        self._key = None

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.values[self._key] += data


def test_html_page_read_back_has_the_numbers_and_nothing_external(tmp_path: Path) -> None:
    """--html writes one page whose numbers and histogram bars match the fixture, with
    no script, no link and no source to fetch."""
    page = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["results", "report", str(FIXTURE), "--html", str(page)])
    assert result.exit_code == 0, result.stderr
    reader = PageReader()
    reader.feed(page.read_text(encoding="utf-8"))
    values = reader.values
    expected = {"lines": "8", "succeeded": "5", "failed": "3", "retries": "3"}
    expected |= {"prompt_tokens": "40", "completion_tokens": "22", "total_tokens": "62"}
    expected |= {"latency_p50": "120.0 ms", "latency_p95": "3000.0 ms", "ttft_p50": "10.0 ms"}
    expected |= {"error:http_429": "1", "status:200": "5", "endpoint1_completion_tokens": "17"}
    expected |= {"endpoint0_name": "(none)", "endpoint2_p50": "700.0 ms", "torn_lines": "1"}
    assert {k: values.get(k) for k in expected} == expected
    assert reader.bars["latency_bucket"] == [
        ("<= 10 ms", 1),
        ("10 ms - 25 ms", 1),
        ("25 ms - 50 ms", 0),
        ("50 ms - 100 ms", 0),
        ("100 ms - 250 ms", 1),
        ("250 ms - 500 ms", 0),
        ("500 ms - 1 s", 1),
        ("1 s - 2.5 s", 0),
        ("2.5 s - 5 s", 1),
    ]
    assert [n for _, n in reader.bars["ttft_bucket"]] == [2, 0, 1, 0, 0, 1]
    assert "script" not in reader.tags
    assert "link" not in reader.tags
    assert "img" not in reader.tags
    assert reader.links == []
    assert "svg" in reader.tags
    assert stat.S_IMODE(page.stat().st_mode) == 0o644


def test_html_escapes_every_string_from_the_file() -> None:
    """An endpoint or error code that holds markup shows as text, never as a tag."""
    report = Report()
    evil = '<script>alert("x")</script><img src=http://x/>'
    report.add(
        {
            "custom_id": "a",
            "error": None,
            "response": {"status_code": 200},
            "x_gonka": {"endpoint": evil, "latency_s": 0.1},
        }
    )
    report.add({"custom_id": "b", "error": {"code": evil}, "response": None, "x_gonka": None})
    page = render_html(report, title=evil)
    reader = PageReader()
    reader.feed(page)
    assert "script" not in reader.tags
    assert "img" not in reader.tags
    assert reader.values["endpoint1_name"] == evil
    assert f"error:{evil}" in reader.values


def test_report_of_a_missing_file_is_exit_2() -> None:
    """A results file that cannot be read: one error line, exit 2, nothing on stdout."""
    result = CliRunner().invoke(app, ["results", "report", "/nonexistent/results.jsonl"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: /nonexistent/results.jsonl: cannot read")


def test_lone_surrogates_in_the_file_cannot_break_any_output(tmp_path: Path) -> None:
    """A `\\ud800` escape in an endpoint or error code (valid JSON, not UTF-8) is spelled
    out in JSON, text and HTML rather than failing to encode."""
    source = tmp_path / "odd.jsonl"
    lines = [
        '{"custom_id":"a","error":null,"response":{"status_code":200},'
        '"x_gonka":{"endpoint":"http://ta/\\ud800","latency_s":0.1}}',
        '{"custom_id":"b","error":{"code":"x\\udfff"},"response":null,"x_gonka":null}',
    ]
    source.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    as_json = runner.invoke(app, ["results", "report", str(source), "-o", "json"])
    assert as_json.exit_code == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["errors"] == {"x\\udfff": 1}
    assert report["endpoints"][1]["endpoint"] == "http://ta/\\ud800"
    page = tmp_path / "odd.html"
    as_text = runner.invoke(app, ["results", "report", str(source), "--html", str(page)])
    assert as_text.exit_code == 0, as_text.stderr
    assert "x\\udfff" in as_text.stdout
    assert "http://ta/\\ud800" in page.read_text(encoding="utf-8")


def test_piped_report_gives_each_endpoint_its_p50_and_p95() -> None:
    """A real `gonka results report` process, piped: each endpoint's line has the p50 and
    the p95 of its latencies, as the JSON and the terminal table do."""
    done = subprocess.run(
        [sys.executable, "-m", "gonka_cli", "results", "report", str(FIXTURE)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"},
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if "requests " in line}
    assert lines["http://ta-1.example/v1"].endswith("p50 20.0 ms, p95 120.0 ms")
    assert lines["http://ta-2.example/v1"].endswith("p50 700.0 ms, p95 3000.0 ms")
    assert lines["(none)"].endswith("p50 -, p95 -")
