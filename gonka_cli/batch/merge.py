"""``gonka results merge``: shard result files into one, checked against the inputs.

The inputs are listed by the same code as ``send-request`` (names only; nothing is read
or sent). Each part is scanned once, remembering for every ``custom_id`` where its best
line is (part, offset, length), not the line itself, so 200,000 results merge in a few
tens of megabytes. The best line of an input is its first success; a failure is
superseded by any later line (a retry run's success, or its newer failure). A torn last
line (no newline) is kept when it is a whole record that only lost its newline, and
dropped otherwise. Lines whose ``custom_id`` is not an input (stray) are left out.

The merged file lists the inputs in input order, each exactly once, and is written
atomically: a temporary file beside it (mode 0600), fsynced, renamed over it. A merge
holds the results-file lock of OUT (exclusive) and of every part (shared) while it runs: a
`send-request` still writing one of them is refused with exit 75 (`ResultsBusy`) instead
of the merge reading half a part, or renaming a new OUT over a file that a run keeps
appending its paid answers to (they would go to the unlinked old file and be lost).
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gonka_cli.atomic import replacing
from gonka_cli.errors import OutputError, ResultsBusy, UsageError
from gonka_cli.jsontext import loads


@dataclass(frozen=True)
class RawLine:
    """One line of a results file as found on disk."""

    offset: int
    raw: bytes
    record: dict[str, Any] | None  # None: not a results record (unreadable or torn)

    @property
    def whole(self) -> bool:
        """Whether the line ends in a newline (only a file's last line may not)."""
        return self.raw.endswith(b"\n")

    @property
    def custom_id(self) -> str | None:
        """The line's ``custom_id`` when it is a results record."""
        return None if self.record is None else self.record["custom_id"]

    @property
    def ok(self) -> bool:
        """A success: ``error`` is null."""
        return self.record is not None and self.record.get("error") is None


def scan_lines(handle: IO[bytes]) -> Iterator[RawLine]:
    """Every line of a results file with its offset, parsed when it is a record."""
    offset = 0
    for raw in handle:
        yield RawLine(offset, raw, parse_record(raw))
        offset += len(raw)


def parse_record(raw: bytes) -> dict[str, Any] | None:
    """The record on `raw` (a JSON object with a string ``custom_id``), else None."""
    try:
        record = loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
        return None
    return record


@dataclass(frozen=True, slots=True)  # one per input: 200,000 of them
class _Pick:
    part: int
    offset: int
    length: int
    ok: bool
    whole: bool


@dataclass
class MergeReport:
    """What a merge found and did."""

    inputs: int = 0
    parts: int = 0
    lines_read: int = 0
    written: int = 0
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)  # best line is a failure
    missing: list[str] = field(default_factory=list)  # no line at all
    stray: list[str] = field(default_factory=list)  # lines for ids that are no input
    repeated_inputs: list[str] = field(default_factory=list)  # an input id given twice
    duplicates: int = 0  # extra lines of an input that already had its success
    superseded: int = 0  # failures replaced by a later line
    torn_repaired: int = 0  # a last line that had only lost its newline
    torn_dropped: int = 0  # a last line cut inside the record
    unreadable: int = 0  # whole lines that are no results record

    @property
    def complete(self) -> bool:
        """Every input exactly once, all successes, nothing stray."""
        return not (self.failed or self.missing or self.stray or self.repeated_inputs)

    @property
    def not_done(self) -> list[str]:
        """The inputs still to send: missing, then failed."""
        return self.missing + self.failed

    def as_json(self) -> dict[str, Any]:
        """For ``--output json``."""
        return {
            "complete": self.complete,
            "inputs": self.inputs,
            "parts": self.parts,
            "lines_read": self.lines_read,
            "written": self.written,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "missing": self.missing,
            "stray": self.stray,
            "repeated_inputs": self.repeated_inputs,
            "duplicates_dropped": self.duplicates,
            "failures_superseded": self.superseded,
            "torn_lines_repaired": self.torn_repaired,
            "torn_lines_dropped": self.torn_dropped,
            "unreadable_lines": self.unreadable,
        }


def merge(out: Path, parts: list[Path], input_ids: Iterable[str]) -> MergeReport:
    """Merge `parts` into `out` (which may be one of them), checked against `input_ids`."""
    held = _hold_out(out)
    try:
        handles = _open_parts(parts)
        try:
            _hold_parts(parts, handles, held)
            report = MergeReport(parts=len(parts))
            order, wanted = _inputs(input_ids, report)
            picks = _pick(handles, wanted, report)
            _write(out, handles, order, picks, report)
        finally:
            for handle in handles:
                handle.close()
    finally:
        if held is not None:
            os.close(held)
    return report


def _hold_out(out: Path) -> int | None:
    """An open descriptor of an existing OUT, locked exclusively (released by closing)."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None  # none yet (or unreadable: writing it will say so)
    try:
        _lock(fd, out, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _hold_parts(parts: list[Path], handles: list[IO[bytes]], out_fd: int | None) -> None:
    """A shared lock on every part that is not OUT itself (that one is already held)."""
    held = os.fstat(out_fd) if out_fd is not None else None
    for path, handle in zip(parts, handles, strict=True):
        status = os.fstat(handle.fileno())
        if held is None or (status.st_dev, status.st_ino) != (held.st_dev, held.st_ino):
            _lock(handle.fileno(), path, fcntl.LOCK_SH)


def _lock(fd: int, path: Path, mode: int) -> None:
    from gonka_cli.batch.results import lock_holder

    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        return
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = lock_holder(status)
        who = f"process {holder}" if holder else "another process"
        raise ResultsBusy(
            f"{path} is being written by {who}; nothing was merged",
            hint="merge when that run has finished",
        ) from None
    except OSError:
        return  # no locks here (some network mounts): merge as before


def _open_parts(parts: list[Path]) -> list[IO[bytes]]:
    handles: list[IO[bytes]] = []
    try:
        for path in parts:
            try:
                handles.append(path.open("rb"))
            except OSError as exc:
                raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    except BaseException:
        for handle in handles:
            handle.close()
        raise
    return handles


def _inputs(input_ids: Iterable[str], report: MergeReport) -> tuple[list[str], set[str]]:
    order: list[str] = []
    wanted: set[str] = set()
    for custom_id in input_ids:
        report.inputs += 1
        if custom_id in wanted:
            report.repeated_inputs.append(custom_id)
            continue
        wanted.add(custom_id)
        order.append(custom_id)
    return order, wanted


def _pick(handles: list[IO[bytes]], wanted: set[str], report: MergeReport) -> dict[str, _Pick]:
    picks: dict[str, _Pick] = {}
    strays: dict[str, None] = {}  # ordered, each once
    for number, handle in enumerate(handles):
        for line in scan_lines(handle):
            report.lines_read += 1
            custom_id = line.custom_id
            if custom_id is None:
                if line.whole:
                    report.unreadable += 1
                else:
                    report.torn_dropped += 1
                continue
            if not line.whole:
                report.torn_repaired += 1
            if custom_id not in wanted:
                strays[custom_id] = None
                continue
            pick = _Pick(number, line.offset, len(line.raw), line.ok, line.whole)
            _choose(picks, custom_id, pick, report)
    report.stray = list(strays)
    return picks


def _choose(picks: dict[str, _Pick], custom_id: str, new: _Pick, report: MergeReport) -> None:
    """Keep an input's first success; a failure gives way to any later line."""
    old = picks.get(custom_id)
    if old is None:
        picks[custom_id] = new
    elif old.ok:
        report.duplicates += 1
    else:
        report.superseded += 1
        picks[custom_id] = new


def _write(
    out: Path,
    handles: list[IO[bytes]],
    order: list[str],
    picks: dict[str, _Pick],
    report: MergeReport,
) -> None:
    try:
        with replacing(out) as sink:
            for custom_id in order:
                _copy_one(sink, handles, custom_id, picks.get(custom_id), report)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from None


def _copy_one(
    sink: IO[bytes],
    handles: list[IO[bytes]],
    custom_id: str,
    pick: _Pick | None,
    report: MergeReport,
) -> None:
    if pick is None:
        report.missing.append(custom_id)
        return
    handle = handles[pick.part]
    handle.seek(pick.offset)
    data = handle.read(pick.length)
    sink.write(data if pick.whole else data + b"\n")
    report.written += 1
    if pick.ok:
        report.succeeded += 1
    else:
        report.failed.append(custom_id)


# --- the summary -----------------------------------------------------------------------

SHOWN = 20


def format_merge(report: MergeReport, out: Path) -> list[str]:
    """The merge's summary, one line each, for stderr."""
    lines = [
        f"merge: {report.parts} part(s), {report.lines_read} line(s) read; "
        f"{report.written} written to {out} for {report.inputs} input(s)",
        f"  succeeded  {report.succeeded}",
        f"  failed     {len(report.failed)}",
        f"  missing    {len(report.missing)}",
    ]
    if report.stray:
        lines.append(f"  stray      {len(report.stray)} line id(s) that are no input (left out)")
    if report.repeated_inputs:
        lines.append(f"  repeated   {len(report.repeated_inputs)} input custom_id(s) given twice")
    repairs = [
        (report.superseded, "failure(s) superseded by a later line"),
        (report.duplicates, "duplicate line(s) dropped"),
        (report.torn_repaired, "torn last line(s) repaired"),
        (report.torn_dropped, "torn last line(s) dropped"),
        (report.unreadable, "unreadable line(s) dropped"),
    ]
    lines.extend(f"  {count} {what}" for count, what in repairs if count)
    lines.extend(_named("missing", report.missing))
    lines.extend(_named("failed", report.failed))
    lines.extend(_named("stray", report.stray))
    lines.extend(_named("repeated", report.repeated_inputs))
    lines.append("merge: complete" if report.complete else "merge: incomplete")
    return lines


def _named(label: str, ids: list[str]) -> list[str]:
    shown = [f"  {label}: {_printable(custom_id)}" for custom_id in ids[:SHOWN]]
    if len(ids) > SHOWN:
        shown.append(f"  {label}: ... and {len(ids) - SHOWN} more (--output json lists all)")
    return shown


def _printable(custom_id: str) -> str:
    """The id as is, or JSON-quoted when it holds a control or non-printable character."""
    return custom_id if custom_id.isprintable() else json.dumps(custom_id)
