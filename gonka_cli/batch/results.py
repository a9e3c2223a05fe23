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
import errno
import fcntl
import hashlib
import json
import os
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote

from gonka_cli.errors import OutputError, ResultsBusy, UsageError
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


# --- the results file: one writer --------------------------------------------------------


class ResultsFile:
    """An ``--output-file`` held by this run alone, for the whole run.

    Opened for appending (created 0600: it holds answers someone paid for) and locked
    with ``flock`` (exclusive, not waiting), so that a second run on the same file is
    refused at once instead of sending every input a second time. A device or a pipe
    (``/dev/stdout``) is not a results file anyone resumes: it is opened, not locked.
    """

    def __init__(self, path: Path, fd: int, *, created: bool) -> None:
        self.path = path
        self.fd = fd
        self.created = created

    @classmethod
    def open(cls, path: Path) -> ResultsFile:
        """Open and lock `path`; `ResultsBusy` when another process holds the lock."""
        for _ in range(8):  # another run may replace the file between our open and lock
            fd, created = _open_for_append(path)
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                return cls(path, fd, created=created)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(path, status) from None
            except OSError:
                return cls(path, fd, created=created)  # no locks here (some network mounts)
            if _is_same_file(path, status):
                return cls(path, fd, created=created)
            os.close(fd)  # replaced by the run that held it: lock the file there now
        raise ResultsBusy(f"{path} keeps being replaced by another process")

    def size(self) -> int:
        """The file's size now."""
        return os.fstat(self.fd).st_size

    def regular(self) -> bool:
        """Whether this is a regular file (not a device or a pipe)."""
        return stat.S_ISREG(os.fstat(self.fd).st_mode)

    def truncate(self, size: int) -> None:
        """Cut the file to `size` bytes in place (no copy: works on a full disk)."""
        os.ftruncate(self.fd, size)
        os.fsync(self.fd)

    def adopt(self, fd: int) -> None:
        """Write to `fd` from now on (a rewritten file renamed into place, already locked)."""
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_APPEND)
        os.close(self.fd)
        self.fd = fd

    def close(self, *, remove_if_empty: bool = False) -> None:
        """Release the file (and its lock); remove it if this run created it and wrote nothing."""
        if self.fd < 0:
            return
        if remove_if_empty and self.created and self.regular() and self.size() == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):  # the writer's own close syncs and reports
            os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1


def _open_for_append(path: Path) -> tuple[int, bool]:
    append = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        try:
            fd, created = os.open(path, append | os.O_CREAT | os.O_EXCL, 0o600), True
        except FileExistsError:
            fd, created = os.open(path, append | os.O_CREAT, 0o600), False
    except OSError as exc:
        raise UsageError(f"{path}: cannot open for writing ({exc.strerror})") from None
    return _above_stdio(fd), created


def _above_stdio(fd: int) -> int:
    """`fd` moved to 3 or above: when the process started with stdout or stderr closed, a
    results file must not become descriptor 1 or 2, where anything else could write."""
    if fd > 2:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def _is_same_file(path: Path, status: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (status.st_dev, status.st_ino)


def _busy(path: Path, status: os.stat_result) -> ResultsBusy:
    holder = lock_holder(status)
    who = f"process {holder}" if holder else "another process"
    return ResultsBusy(
        f"{path} is being written by {who}: one run per results file",
        hint="wait for that run to finish (then --resume), or give another --output-file",
    )


def lock_holder(status: os.stat_result) -> int | None:
    """The pid holding a flock on the file `status` describes, from Linux's /proc/locks."""
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            for line in table:
                fields = line.split()
                # 1: FLOCK  ADVISORY  WRITE 12345 fe:00:2146497 0 EOF
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
                    return int(fields[4]) if fields[4].isdigit() else None
    except OSError:
        return None
    return None


# --- writing ---------------------------------------------------------------------------


class LineSink(Protocol):
    """Where whole result lines go."""

    def write_line(self, line: bytes) -> None:
        """Write one whole line (`OutputError` when it cannot)."""

    def sync(self) -> None:
        """Make what was written durable, where that means something."""

    def close(self) -> None:
        """Sync and release the sink."""


class FileSink:
    """A results file opened for appending, written with one ``os.write`` per line.

    A write that fails (no space, an I/O error) raises `OutputError`, after cutting
    away whatever part of the line did get written, so the file never ends torn when
    the process lives to see the error.
    """

    def __init__(self, path: Path, *, fd: int | None = None) -> None:
        if fd is None:
            fd, _ = _open_for_append(path)
        self._fd = fd
        self.path = path
        status = os.fstat(fd)
        self._regular = stat.S_ISREG(status.st_mode)
        self._size = status.st_size

    def write_line(self, line: bytes) -> None:
        """Write `line` whole (the loop only matters if the kernel ever writes short)."""
        view = memoryview(line)
        start = self._size
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
                self._size += written
        except OSError as exc:
            self._cut_back(start)
            raise write_error(self.path, exc) from None

    def _cut_back(self, size: int) -> None:
        if self._regular and self._size != size:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
                self._size = size

    def sync(self) -> None:
        """fsync the file (a device that cannot be synced has nothing to sync)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):
                raise write_error(self.path, exc) from None

    def close(self) -> None:
        """fsync and release (once); a `ResultsFile`'s descriptor stays open for its owner."""
        if self._fd < 0:
            return
        try:
            self.sync()
        finally:
            if self._owned:
                os.close(self._fd)
            self._fd = -1

    _owned = True

    @classmethod
    def of(cls, results: ResultsFile) -> FileSink:
        """A sink writing to an open `ResultsFile` (which closes its own descriptor)."""
        sink = cls(results.path, fd=results.fd)
        sink._owned = False
        return sink


def write_error(name: Path | str, exc: BaseException) -> OutputError:
    """``cannot write results.jsonl: No space left on device``."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return OutputError(f"cannot write {name}: {reason}")


class StreamSink:
    """A binary stream such as standard output: each line written and flushed at once."""

    def __init__(self, stream: IO[bytes], name: str = "<stdout>") -> None:
        self._stream = stream
        self._name = name
        self._broken = False

    def write_line(self, line: bytes) -> None:
        """Write and flush `line`."""
        try:
            self._stream.write(line)
            self._stream.flush()
        except (OSError, ValueError) as exc:
            self._give_up()
            raise write_error(self._name, exc) from None

    def _give_up(self) -> None:
        """After a failed write: point the descriptor at /dev/null, so that the bytes still
        buffered do not fail again (with a traceback) when the interpreter exits."""
        self._broken = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)

    def sync(self) -> None:
        """fsync when the stream is a regular file; a pipe or terminal has nothing to sync."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.fsync(self._stream.fileno())

    def close(self) -> None:
        """Flush and sync; the stream itself belongs to the caller."""
        if self._broken:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as exc:
            self._give_up()
            raise write_error(self._name, exc) from None
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


@dataclass(frozen=True)
class _Line:
    raw: bytes
    custom_id: str | None
    ok: bool
    whole: bool


# How every line we write begins: a torn last line is a piece of one of these.
_LINE_START = b'{"id":"batch_req_'


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
    if not _is_results_record(record):
        return _Line(raw, None, ok=False, whole=True)
    return _Line(raw, record["custom_id"], ok=record["error"] is None, whole=True)


def _is_results_record(record: Any) -> bool:
    """An OpenAI Batch output object: ``custom_id``, ``response`` and ``error``, where a
    success (no error) carries a response with its status code."""
    if not isinstance(record, dict) or not {"custom_id", "response", "error"} <= record.keys():
        return False
    custom_id, response, error = record["custom_id"], record["response"], record["error"]
    if not isinstance(custom_id, str) or not custom_id:
        return False
    if not isinstance(response, dict | None) or not isinstance(error, dict | None):
        return False
    return error is not None or (
        isinstance(response, dict) and isinstance(response.get("status_code"), int)
    )


def _is_torn_tail(raw: bytes) -> bool:
    """Whether a last line without its newline is what a cut write of ours leaves (a piece
    of a results line, possibly after the zeros a power cut can leave)."""
    piece = raw.lstrip(b"\0")
    return piece.startswith(_LINE_START) or _LINE_START.startswith(piece)


def prepare_resume(target: ResultsFile | Path) -> ResumeState:
    """Clean a results file for appending and say which inputs are done.

    Every line must be a results line (else `UsageError`, and the file is left exactly
    as it was): ``--resume`` never mistakes another file (a Batch *input* file, unrelated
    JSON lines) for finished work. Keeps each successful ``custom_id``'s first line;
    drops failed lines (those inputs are sent again), later duplicates and a torn last
    line. A torn tail is cut in place (no copy, so it works on a nearly full disk); when
    lines must go, the file is rewritten beside itself and renamed over the original once
    complete and fsynced, with the original's permissions.
    """
    if isinstance(target, Path):
        if not target.exists():
            return ResumeState(frozenset())
        results = ResultsFile.open(target)
        try:
            return prepare_resume(results)
        finally:
            results.close()
    if not target.regular():
        raise UsageError(f"{target.path}: --resume continues a results file, not a device")
    state, whole_bytes = _survey(target.path)
    if state.dropped_torn:
        target.truncate(whole_bytes)
    if state.dropped_failed:
        _rewrite_keeping(target, done_ids=set(state.done))
    return state


def _survey(path: Path) -> tuple[ResumeState, int]:
    """The resume state of `path` and the size of its whole lines; refuses a file that is
    not a results file."""
    done: set[str] = set()
    failed = whole_bytes = 0
    torn = False
    for number, line in enumerate(_scan(path), start=1):
        if not line.whole:
            if not _is_torn_tail(line.raw):
                raise _not_results(path, number)
            torn = True
        elif line.custom_id is None:
            raise _not_results(path, number)
        elif line.ok and line.custom_id not in done:
            done.add(line.custom_id)
        else:
            failed += 1
        whole_bytes += len(line.raw) if line.whole else 0
    return ResumeState(frozenset(done), failed, torn), whole_bytes


def _not_results(path: Path, number: int) -> UsageError:
    return UsageError(
        f"{path} line {number}: not a results line (custom_id, response, error); "
        "--resume continues only a results file, so it was left as it was",
        hint="check --output-file: it names where results go, not the batch input",
    )


def _rewrite_keeping(target: ResultsFile, *, done_ids: set[str]) -> None:
    path = target.path
    _refuse_symlink(path)
    mode = stat.S_IMODE(os.fstat(target.fd).st_mode)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    kept: set[str] = set()
    try:
        os.fchmod(fd, mode)
        with open(fd, "wb", closefd=False) as out:
            for line in _scan(path):
                if line.whole and line.ok and _first(line.custom_id, done_ids, kept):
                    out.write(line.raw)
        os.fsync(fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked before anyone can open it
        _refuse_symlink(path)
        os.rename(temporary, path)
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise OutputError(
                f"cannot rewrite {path} for --resume: {exc.strerror or exc} (the file is as it was)"
            ) from None
        raise
    _fsync_dir(path.parent)
    target.adopt(fd)


def _refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise UsageError(
            f"{path} is a symbolic link: --resume must rewrite it and will not replace the link",
            hint="give the path of the file it points to",
        )


def _first(custom_id: str | None, wanted: set[str], kept: set[str]) -> bool:
    if custom_id is None or custom_id not in wanted or custom_id in kept:
        return False
    kept.add(custom_id)
    return True


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


def body_name_clash(custom_ids: Iterable[str]) -> tuple[str, str, str] | None:
    """Two ids whose body files would share a name (and that name), or None: ``a`` and
    ``a.json`` both become ``a.json``, so such a batch is refused before it starts."""
    owners: dict[str, str] = {}
    for custom_id in custom_ids:
        name = body_file_name(custom_id)
        owner = owners.setdefault(name, custom_id)
        if owner != custom_id:
            return owner, custom_id, name
    return None


def write_body_file(directory: Path, custom_id: str, body: Any) -> Path:
    """Write `body` as JSON to its file in `directory`, atomically: a temporary file made
    with ``mkstemp`` (never through a planted symlink), fsynced, renamed into place. An
    existing symlink in its place is not replaced (``OSError``)."""
    target = directory / body_file_name(custom_id)
    try:
        data = (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate: see `encode_line`
        data = (json.dumps(body, indent=2) + "\n").encode()
    _refuse_link(target)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name[:64]}.", suffix=".tmp")
    try:
        with open(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _refuse_link(target)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return target


def _refuse_link(target: Path) -> None:
    if target.is_symlink():
        raise OSError(errno.EEXIST, f"{target.name} is a symbolic link, not replaced")
