"""The batch results file: OpenAI Batch output lines, written crash-safe, resumable.

One line per finished input::

    {"id": "batch_req_...", "custom_id": "...",
     "response": {"status_code": 200, "request_id": "...", "body": {...}} | null,
     "error": null | {"code": "...", "message": "..."},
     "x_gonka": {"endpoint", "transfer_address", "inference_id", "attempts",
                 "latency_s", "ttft_s"}}

A line is a success exactly when ``error`` is null. A failure that got a final HTTP
answer keeps it in ``response`` (status code and body) besides its ``error``.

Crash safety: each line goes out in one ``os.write`` of the whole line (no user-space
buffer), the file is fsynced every few lines or seconds and when closed, so a crash
can tear at most the last line. ``--resume`` (:func:`prepare_resume`) drops a torn last
line and every failed line, keeping each successful ``custom_id`` once, so that the
re-sent inputs append their one new line and no ``custom_id`` ever appears twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote

from gonka_cli.errors import UsageError
from gonka_cli.jsontext import loads

Clock = Callable[[], float]


@dataclass(frozen=True)
class Result:
    """What one finished input produced, before it becomes a results line."""

    custom_id: str
    status_code: int | None = None
    request_id: str | None = None
    body: Any = None
    error_code: str | None = None
    error_message: str | None = None
    endpoint: str | None = None
    transfer_address: str | None = None
    inference_id: str | None = None
    attempts: int | None = None
    latency_s: float | None = None
    ttft_s: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the input succeeded (no error)."""
        return self.error_code is None


def result_record(result: Result, *, line_id: str | None = None) -> dict[str, Any]:
    """The OpenAI Batch output object (plus ``x_gonka``) for `result`."""
    response = None
    if result.status_code is not None:
        response = {
            "status_code": result.status_code,
            "request_id": result.request_id,
            "body": result.body,
        }
    error = None
    if result.error_code is not None:
        error = {"code": result.error_code, "message": result.error_message or ""}
    return {
        "id": line_id or f"batch_req_{uuid.uuid4().hex}",
        "custom_id": result.custom_id,
        "response": response,
        "error": error,
        "x_gonka": {
            "endpoint": result.endpoint,
            "transfer_address": result.transfer_address,
            "inference_id": result.inference_id,
            "attempts": result.attempts,
            "latency_s": _rounded(result.latency_s),
            "ttft_s": _rounded(result.ttft_s),
        },
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 6)


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSONL line: compact JSON, UTF-8, newline-terminated (no raw newline inside).

    An answer holding a lone surrogate (a server's ``"\\ud800"`` escape) cannot be UTF-8:
    that line keeps every non-ASCII character escaped instead, which is the same JSON.
    """
    try:
        return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    except UnicodeEncodeError:
        return (json.dumps(record, separators=(",", ":")) + "\n").encode()


# --- writing ---------------------------------------------------------------------------


class LineSink(Protocol):
    """Where whole result lines go."""

    def write_line(self, line: bytes) -> None:
        """Write one whole line."""

    def sync(self) -> None:
        """Make what was written durable, where that means something."""

    def close(self) -> None:
        """Sync and release the sink."""


class FileSink:
    """A results file opened for appending, written with one ``os.write`` per line."""

    def __init__(self, path: Path, *, truncate: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        try:
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise UsageError(f"{path}: cannot open for writing ({exc.strerror})") from None
        self.path = path

    def write_line(self, line: bytes) -> None:
        """Write `line` whole (the loop only matters if the kernel ever writes short)."""
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]

    def sync(self) -> None:
        """fsync the file."""
        os.fsync(self._fd)

    def close(self) -> None:
        """fsync and close (once)."""
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


class StreamSink:
    """A binary stream such as standard output: each line written and flushed at once."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write_line(self, line: bytes) -> None:
        """Write and flush `line`."""
        self._stream.write(line)
        self._stream.flush()

    def sync(self) -> None:
        """fsync when the stream is a regular file; a pipe or terminal has nothing to sync."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.fsync(self._stream.fileno())

    def close(self) -> None:
        """Flush and sync; the stream itself belongs to the caller."""
        self._stream.flush()
        self.sync()


class ResultsWriter:
    """Writes result lines to a sink, fsyncing every `every_lines` lines or `every_s` seconds."""

    def __init__(
        self,
        sink: LineSink,
        *,
        every_lines: int = 100,
        every_s: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._sink = sink
        self._every_lines = every_lines
        self._every_s = every_s
        self._clock = clock
        self._unsynced = 0
        self._last_sync = clock()
        self.lines = 0

    def write(self, result: Result) -> None:
        """Append the line for `result`, and sync if one is due."""
        self._sink.write_line(encode_line(result_record(result)))
        self.lines += 1
        self._unsynced += 1
        now = self._clock()
        if self._unsynced >= self._every_lines or now - self._last_sync >= self._every_s:
            self._sync(now)

    def _sync(self, now: float) -> None:
        self._sink.sync()
        self._unsynced = 0
        self._last_sync = now

    def close(self) -> None:
        """Sync and close the sink."""
        self._sink.close()


# --- resuming --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumeState:
    """What an earlier run left: successful ``custom_id`` values and what was cleaned up."""

    done: frozenset[str]
    dropped_failed: int = 0
    dropped_torn: bool = False
    dropped_unreadable: int = 0


@dataclass(frozen=True)
class _Line:
    raw: bytes
    custom_id: str | None
    ok: bool
    whole: bool


def _scan(path: Path) -> Iterator[_Line]:
    with path.open("rb") as handle:
        for raw in handle:
            yield _classify(raw)


def _classify(raw: bytes) -> _Line:
    if not raw.endswith(b"\n"):
        return _Line(raw, None, ok=False, whole=False)
    try:
        record = loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _Line(raw, None, ok=False, whole=True)
    if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
        return _Line(raw, None, ok=False, whole=True)
    return _Line(raw, record["custom_id"], ok=record.get("error") is None, whole=True)


def prepare_resume(path: Path) -> ResumeState:
    """Clean `path` for appending and say which inputs are done.

    Keeps each successful ``custom_id``'s first line; drops failed lines (those inputs
    are sent again), later duplicates, unreadable lines and a torn last line. When
    something besides a torn tail must go, the file is rewritten atomically (a temporary
    file beside it, fsynced, then renamed over it); a torn tail alone is truncated away.
    """
    if not path.exists():
        return ResumeState(frozenset())
    done: set[str] = set()
    failed = unreadable = 0
    torn = False
    keep_bytes = 0
    for line in _scan(path):
        if not line.whole:
            torn = True
        elif line.ok and line.custom_id is not None and line.custom_id not in done:
            done.add(line.custom_id)
            keep_bytes += len(line.raw)
        elif line.custom_id is None:
            unreadable += 1
        else:
            failed += 1
    state = ResumeState(frozenset(done), failed, torn, unreadable)
    if failed or unreadable:
        _rewrite_keeping(path, done_ids=done)
    elif torn:
        _truncate(path, keep_bytes)
    return state


def _rewrite_keeping(path: Path, *, done_ids: set[str]) -> None:
    temporary = path.with_name(f".{path.name}.resume-{os.getpid()}.tmp")
    kept: set[str] = set()
    try:
        with temporary.open("wb") as out:
            for line in _scan(path):
                if line.whole and line.ok and _first(line.custom_id, done_ids, kept):
                    out.write(line.raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _first(custom_id: str | None, wanted: set[str], kept: set[str]) -> bool:
    if custom_id is None or custom_id not in wanted or custom_id in kept:
        return False
    kept.add(custom_id)
    return True


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every whole, parseable line of a results file (for tests and tools)."""
    return [json.loads(line.raw) for line in _scan(path) if line.whole and line.custom_id]


# --- --output-dir ----------------------------------------------------------------------

_MAX_NAME = 200


def body_file_name(custom_id: str) -> str:
    """A safe file name for `custom_id`'s response body: percent-encoded, ending in .json.

    Path separators and other unsafe characters are percent-encoded (``a/b.json`` becomes
    ``a%2Fb.json``), so the name stays in the output directory; a very long id keeps a
    prefix plus a hash of the whole id.
    """
    name = quote(custom_id, safe="-_.~+=@,")
    if name in ("", ".", ".."):
        name = quote(name, safe="").replace(".", "%2E") or "%00"
    if not name.endswith(".json"):
        name += ".json"
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(custom_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        name = f"{name[:150]}-{digest}.json"
    return name


def write_body_file(directory: Path, custom_id: str, body: Any) -> Path:
    """Write `body` as JSON to its file in `directory`, atomically (temporary file + rename)."""
    target = directory / body_file_name(custom_id)
    temporary = directory / f".{target.name}.{os.getpid()}.tmp"
    try:
        data = (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate: see `encode_line`
        data = (json.dumps(body, indent=2) + "\n").encode()
    try:
        with temporary.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
