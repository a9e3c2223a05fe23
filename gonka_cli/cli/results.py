"""``gonka results merge`` and ``gonka results report``: after a sharded batch.

The merge lists the inputs with the same code and flags as ``send-request`` (names
only, nothing is read or sent); the report is pure statistics (`gonka_cli.batch.report`)
shown with rich on a terminal, plain when piped, as JSON, or as an HTML page.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gonka_cli.cli._common import GonkaGroup, emit, help_markup
from gonka_cli.cli.send_batch import (
    DirOpt,
    GlobOpt,
    JsonlOpt,
    RecursiveOpt,
    ShardCountOpt,
    ShardOpt,
)
from gonka_cli.errors import OutputError, PartialFailure, UsageError

if TYPE_CHECKING:
    from gonka_cli.batch.inputs import Shard
    from gonka_cli.batch.merge import MergeReport
    from gonka_cli.batch.plan import BatchSource

app = typer.Typer(
    name="results",
    cls=GonkaGroup,
    help="Merge the result files of a sharded batch, and report on a results file.",
    no_args_is_help=True,
    rich_markup_mode=help_markup(),
)


class ReportOutput(StrEnum):
    """What stdout carries."""

    text = "text"
    json = "json"


OutputOpt = Annotated[
    ReportOutput, typer.Option("--output", "-o", help="text (a terminal or a pipe) or json.")
]


@app.command("merge", short_help="Merge shard result files into OUT: every input once, checked.")
def merge_command(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="The merged results file.")],
    parts: Annotated[
        list[Path], typer.Argument(metavar="PART...", help="Shard result files, in run order.")
    ],
    batch_dir: DirOpt = None,
    recursive: RecursiveOpt = False,
    glob: GlobOpt = "*.json",
    jsonl: JsonlOpt = None,
    shard: ShardOpt = None,
    shard_count: ShardCountOpt = None,
    output: OutputOpt = ReportOutput.text,
) -> None:
    """Merge shard result files into OUT: every input exactly once, checked.

    The inputs are given as to send-request (--dir or --jsonl, with --recursive, --glob,
    --shard). For each input OUT keeps its first successful line; a failure is superseded
    by a later line (list a retry run's file after the first run's); torn last lines are
    repaired or dropped; lines for ids that are no input are left out. OUT is written
    atomically (mode 0600) and may be one of the parts.

        gonka results merge all.jsonl part-*.jsonl --dir requests/

    Exit codes: 0 complete; 8 incomplete (inputs missing or failed, stray or repeated
    ids; OUT is still written, and the hint says how to send only what is missing);
    2 bad flags or an unreadable part; 74 OUT could not be written (OUT untouched);
    75 a run is still writing OUT or a part (nothing merged).
    """
    from gonka_cli.batch.merge import format_merge, merge
    from gonka_cli.batch.plan import BatchSource

    source = BatchSource(batch_dir, recursive, glob, (), jsonl)
    source.check()
    chosen = _shard(shard, shard_count)
    ids = _input_ids(source, chosen)
    report = merge(out, parts, ids)
    again = _send_again(source, chosen, out) if report.not_done else None
    if output is ReportOutput.json:
        _emit_json({**report.as_json(), "output_file": str(out), "send_again": again})
    else:
        for line in format_merge(report, out):
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
    if not report.complete:
        hint = f"send only those: {again}" if again else None
        raise PartialFailure(_incomplete(report), hint=hint)


def _shard(text: str | None, count: int | None) -> Shard | None:
    from gonka_cli.batch.shard import resolve_shard

    shard, found = resolve_shard(text, count, os.environ)
    if found is not None:
        sys.stderr.write(found + "\n")
    return shard


def _input_ids(source: BatchSource, shard: Shard | None) -> list[str]:
    from gonka_cli.batch.inputs import select

    with ExitStack() as stack:
        ids = [item.custom_id for item in select(source.items(stack), shard=shard)]
    if not ids:
        raise source.nothing_to_send() if shard is None else UsageError("this shard has no inputs")
    return ids


def _send_again(source: BatchSource, shard: Shard | None, out: Path) -> str:
    """The send-request command that sends only the inputs OUT has no success for:
    OUT holds every success, so ``--resume`` on it skips them and drops the failures."""
    words = ["gonka", "send-request"]
    if source.directory is not None:
        words += ["--dir", str(source.directory)]
        words += ["--recursive"] if source.recursive else []
        words += ["--glob", source.glob] if source.glob != "*.json" else []
    elif source.jsonl is not None:
        words += ["--jsonl", source.jsonl]
    if shard is not None:
        words += ["--shard", f"{shard.index}/{shard.count}"]
    words += ["--output-file", str(out), "--resume"]
    return shlex.join(words)


def _incomplete(report: MergeReport) -> str:
    counts = [
        (len(report.missing), "missing"),
        (len(report.failed), "failed"),
        (len(report.stray), "stray"),
        (len(report.repeated_inputs), "repeated"),
    ]
    what = ", ".join(f"{n} {word}" for n, word in counts if n)
    return f"results merge: incomplete ({what}) of {report.inputs} input(s)"


@app.command("report", short_help="Report on a results file: outcomes, tokens, latency.")
def report_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A results file (JSONL).")],
    output: OutputOpt = ReportOutput.text,
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="PATH", help="Also write a self-contained HTML page."),
    ] = None,
) -> None:
    """Counts by outcome and error code, retries, tokens, latency and time to first token
    (p50/p95/p99 and a histogram), per endpoint.

    Tables on a terminal, plain text when piped, JSON with -o json; --html writes one page
    with inline SVG charts (no JavaScript, nothing fetched) to attach to a CI run.

        gonka results report all.jsonl --html report.html

    Exit codes: 0 (whatever the results say), 2 an unreadable file, 74 the --html page
    could not be written.
    """
    from gonka_cli.batch.merge import scan_lines
    from gonka_cli.batch.report import build_report, format_text

    try:
        with file.open("rb") as handle:
            report = build_report(scan_lines(handle))
    except OSError as exc:
        raise UsageError(f"{file}: cannot read ({exc.strerror})") from None
    if html is not None:
        from gonka_cli.batch.report_html import render_html

        _write_text(html, render_html(report, title=file.name))
    if output is ReportOutput.json:
        _emit_json(report.as_json())
    elif sys.stdout.isatty():
        from gonka_cli.render_report import print_report

        print_report(report)
    else:
        for line in format_text(report):
            emit(line)


def _emit_json(value: dict[str, Any]) -> None:
    """One JSON document on stdout (indented on a terminal); a custom_id holding a lone
    surrogate cannot be UTF-8, so then every non-ASCII character is escaped instead."""
    indent = 2 if sys.stdout.isatty() else None
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=indent)
    emit(text)


def _write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file beside it, renamed), 0644."""
    from gonka_cli.atomic import replacing

    try:
        # 0644: a page to attach and share, unlike the results themselves
        with replacing(path, mode=0o644) as sink:
            sink.write(text.encode("utf-8"))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
