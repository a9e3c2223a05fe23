"""Batch sending: many request bodies through the single-request path, to one results file.

This module is the entry point the command line calls (:func:`run_batch`); the parts
live beside it:

- :mod:`gonka_cli.batch.inputs`  inputs streamed from --dir, --file, --jsonl; --shard
- :mod:`gonka_cli.batch.results` the OpenAI Batch results file, crash-safe, resumable
- :mod:`gonka_cli.batch.runner`  concurrency, rate, pause gate, Ctrl-C, fail-fast
- :mod:`gonka_cli.batch.stats`   statistics, progress line and summary
- :mod:`gonka_cli.render_batch`  the rich progress bar (only on a terminal)

The HTTP side is handed in as `open_sender`: given the runner's hooks (the shared pause
gate, a retry callback), it yields an async ``send(body) -> Outcome`` (the single-request
client), so batch and single requests share one signing, failover and retry path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import itertools
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from gonka_cli.batch.inputs import (
    DEFAULT_GLOB,
    NO_OVERRIDES,
    Item,
    Shard,
    check_unique_files,
    count,
    iter_dir,
    iter_files,
    iter_jsonl,
    select,
)
from gonka_cli.batch.results import (
    FileSink,
    LineSink,
    ResultsFile,
    ResultsWriter,
    StreamSink,
    body_file_name,
    body_name_clash,
    prepare_resume,
)
from gonka_cli.batch.runner import (
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE_S,
    BatchRunner,
    RunOptions,
    SendFn,
    SendHooks,
)
from gonka_cli.batch.stats import (
    BatchStats,
    NoProgress,
    PlainProgress,
    ProgressView,
    Snapshot,
    exit_code,
    format_summary,
)
from gonka_cli.errors import (
    ExitCode,
    HungUp,
    Interrupted,
    OutputError,
    PartialFailure,
    Terminated,
    UsageError,
)
from gonka_cli.payloads import Overrides, parse_set

if TYPE_CHECKING:
    from gonka_cli.client import Notice
    from gonka_cli.settings import SendConfig

SenderFactory = Callable[[SendHooks], AbstractAsyncContextManager[SendFn]]
RETRY_NOTICES = frozenset({"retry", "failover"})


def client_sender(
    config: SendConfig, *, on_notice: Callable[[Notice], None] | None = None
) -> SenderFactory:
    """The real `open_sender`: one shared `gonka_cli.client.Sender` for the whole batch.

    Its retry and failover notices feed the runner's retry count (not the terminal, where
    hundreds of them would drown the progress bar); other notices go to `on_notice`.
    """

    @asynccontextmanager
    async def open_sender(hooks: SendHooks) -> AsyncIterator[SendFn]:
        from gonka_cli.client import Sender

        def notice(note: Notice) -> None:
            if note.kind in RETRY_NOTICES:
                hooks.on_retry()
            elif on_notice is not None:
                on_notice(note)

        async with Sender(config, pause=hooks.pause, on_notice=notice) as sender:
            await sender.endpoints()  # discovery fails once, up front, not once per input
            yield sender.send

    return open_sender


@dataclass(frozen=True)
class BatchSource:
    """Where the inputs come from: a directory, several files, or a JSONL file (or -)."""

    directory: Path | None = None
    recursive: bool = False
    glob: str = DEFAULT_GLOB
    files: tuple[str, ...] = ()
    jsonl: str | None = None

    def check(self) -> None:
        """Exactly one kind of input."""
        kinds = [self.directory is not None, bool(self.files), self.jsonl is not None]
        if sum(kinds) != 1:
            raise UsageError("give the batch inputs with one of --dir, --file or --jsonl")
        if self.files:
            check_unique_files(list(self.files))
        if (self.recursive or self.glob != DEFAULT_GLOB) and self.directory is None:
            raise UsageError("--recursive and --glob go with --dir")

    def nothing_to_send(self) -> UsageError:
        """The error for a source that holds no input at all (a mistake, not a success)."""
        if self.directory is not None:
            hint = None if self.recursive else "add --recursive to look in subdirectories"
            return UsageError(f"{self.directory}: no files match {self.glob!r}", hint=hint)
        name = "<stdin>" if self.jsonl == "-" else self.jsonl
        return UsageError(f"{name}: no request lines", hint="one JSON object per line")

    def unique_ids(self) -> bool:
        """Whether no two inputs can share a custom_id: paths can't, JSONL lines can."""
        return self.jsonl is None

    def countable(self) -> bool:
        """Whether the inputs can be read twice (not standard input), to count them first."""
        return self.jsonl != "-"

    def items(self, stack: ExitStack) -> Iterator[Item]:
        """The inputs, lazily; a JSONL file opened here is closed by `stack`."""
        if self.directory is not None:
            return iter_dir(self.directory, recursive=self.recursive, pattern=self.glob)
        if self.files:
            return iter_files(self.files)
        assert self.jsonl is not None
        if self.jsonl == "-":
            return iter_jsonl(sys.stdin.buffer, "<stdin>")
        try:
            stream = stack.enter_context(Path(self.jsonl).open("rb"))  # noqa: SIM115 (the stack closes it)
        except OSError as exc:
            raise UsageError(f"{self.jsonl}: cannot read ({exc.strerror})") from None
        return iter_jsonl(stream, self.jsonl)


@dataclass(frozen=True)
class BatchPlan:
    """Everything a batch run needs besides the sender."""

    source: BatchSource
    shard: Shard | None = None
    output_file: Path | None = None
    output_dir: Path | None = None
    resume: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    fail_fast: bool = False
    quiet: bool = False
    progress_interval_s: float = 5.0
    overrides: Overrides = NO_OVERRIDES
    grace_s: float | None = DEFAULT_GRACE_S

    def check(self) -> None:
        """Refuse flags that do not go together, before anything is sent."""
        self.source.check()
        for assignment in self.overrides.sets:
            parse_set(assignment)
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.rate is not None and not self.rate > 0:  # `not >` refuses NaN as well
            raise UsageError("--rate must be a positive number of requests per second")
        if self.resume and self.output_file is None:
            raise UsageError("--resume needs --output-file: it continues that results file")


def run_batch(
    plan: BatchPlan,
    open_sender: SenderFactory,
    *,
    stdout: IO[bytes] | None = None,
    stderr: TextIO | None = None,
) -> BatchStats:
    """Run the batch; print the summary; raise PartialFailure, Interrupted or OutputError.

    `stdout` receives the results when there is no ``--output-file``; `stderr` the
    progress and summary. Both default to the process's streams. The results file is
    locked for the whole run (a second run on it gets `ResultsBusy`); SIGINT, SIGTERM
    and SIGHUP stop it cleanly (see `_Stopper`).
    """
    plan.check()
    err = stderr or sys.stderr or io.StringIO()  # stderr closed: the batch runs, unheard
    stopper = _Stopper()
    with ExitStack() as stack:
        stack.callback(stopper.restore)
        stopper.install()
        results = _hold_results_file(plan, stack)
        done = _resume_state(plan, results, err)
        # Counted first: the count's own listing of a large directory is gone before
        # the batch's listing is made, rather than both held at once.
        total = _count(plan, done) if plan.source.countable() else None
        _check_body_names(plan, done)
        inputs = _some_inputs(plan.source, _inputs(plan, stack, done, err))
        if plan.output_dir is not None:
            _make_dir(plan.output_dir)
        writer = ResultsWriter(_open_sink(plan, results, stdout))
        skipped = _Tally(done)
        items = select(inputs, shard=plan.shard, skip=skipped)
        progress = _progress(plan, err, stdout)
        stats, failure = asyncio.run(
            _run(plan, open_sender, writer, items, progress, total, stopper)
        )
        failure = _close(writer, failure)
    stats.skipped = skipped.count
    _print_summary(stats, err)
    if failure is not None:
        raise failure
    _raise_for(stats, plan)
    return stats


def _hold_results_file(plan: BatchPlan, stack: ExitStack) -> ResultsFile | None:
    """Open and lock ``--output-file`` before anything else: a second run stops here."""
    if plan.output_file is None:
        return None
    results = ResultsFile.open(plan.output_file)
    stack.callback(results.close, remove_if_empty=True)
    if not plan.resume and results.size() > 0:
        raise UsageError(
            f"{plan.output_file} already holds results",
            hint="add --resume to finish that batch, or remove the file to start over",
        )
    return results


def _close(writer: ResultsWriter, failure: OutputError | None) -> OutputError | None:
    """Close the writer (its last fsync or flush can fail too); the first failure wins."""
    try:
        writer.close()
    except OutputError as exc:
        return failure or exc
    return failure


def _some_inputs(source: BatchSource, items: Iterator[Item]) -> Iterator[Item]:
    """`items` unchanged, after checking that there is at least one (before any output)."""
    first = next(items, None)
    if first is None:
        raise source.nothing_to_send()
    return itertools.chain((first,), items)


class _Tally:
    """A skip test for `select` that counts the inputs it skips (done in an earlier run)."""

    def __init__(self, done: frozenset[str]) -> None:
        self.done = done
        self.count = 0

    def __call__(self, custom_id: str) -> bool:
        skip = custom_id in self.done
        self.count += skip
        return skip


def _resume_state(plan: BatchPlan, results: ResultsFile | None, err: TextIO) -> frozenset[str]:
    if not plan.resume or results is None:
        return frozenset()
    state = prepare_resume(results)
    cleaned = []
    if state.dropped_failed:
        cleaned.append(f"{state.dropped_failed} failed line(s) to send again")
    if state.dropped_torn:
        cleaned.append("a torn last line")
    if cleaned:
        _say(err, f"resume: removed {', '.join(cleaned)} from {plan.output_file}")
    _say(err, f"resume: {len(state.done)} input(s) already done")
    return state.done


def _inputs(
    plan: BatchPlan, stack: ExitStack, done: frozenset[str], err: TextIO | None
) -> Iterator[Item]:
    """The source's items, minus this batch's own outputs (and, when the inputs cannot be
    read twice, with a body-file clash turned into a failed input)."""
    items = _without_outputs(plan, plan.source.items(stack), err)
    if plan.output_dir is not None and not plan.source.countable():
        items = _clashes_fail(items, done)
    return items


def _without_outputs(plan: BatchPlan, items: Iterator[Item], err: TextIO | None) -> Iterator[Item]:
    """A results file or ``--output-dir`` inside ``--dir`` is not an input: skipped, with a
    note, so that a resume does not send its own results as a request."""
    own_file, own_dir = _own_outputs(plan)
    if own_file is None and own_dir is None:
        yield from items
        return
    for item in items:
        if item.custom_id == own_file or (own_dir and item.custom_id.startswith(own_dir)):
            if err is not None:
                _say(err, f"note: {item.path} is an output of this batch: not sent")
            continue
        yield item


def _own_outputs(plan: BatchPlan) -> tuple[str | None, str | None]:
    """The ``custom_id`` the results file would have as an input of ``--dir``, and the
    prefix of those in ``--output-dir`` (None for each when it is not inside)."""
    if plan.source.directory is None:
        return None, None
    root = os.path.realpath(plan.source.directory)

    def inside(path: Path | None) -> str | None:
        if path is None:
            return None
        relative = os.path.relpath(os.path.realpath(path), root)
        return None if relative.startswith(os.pardir) else relative.replace(os.sep, "/")

    own_dir = inside(plan.output_dir)
    return inside(plan.output_file), (None if own_dir is None else own_dir.rstrip("/") + "/")


def _check_body_names(plan: BatchPlan, done: frozenset[str]) -> None:
    """``--output-dir``: refuse, before anything is sent, two ids that would share a file
    (or an answer that would overwrite its own request, with ``--output-dir`` = ``--dir``)."""
    if plan.output_dir is None:
        return
    if _own_outputs(plan)[1] == "./":
        raise UsageError(
            f"--output-dir {plan.output_dir} is the --dir: answers would overwrite requests",
            hint="give --output-dir another directory",
        )
    if not plan.source.countable():
        return
    with ExitStack() as stack:
        ids = (
            item.custom_id for item in select(_inputs(plan, stack, done, None), shard=plan.shard)
        )
        clash = body_name_clash(itertools.chain(done, ids))
    if clash is not None:
        first, second, name = clash
        raise UsageError(
            f"--output-dir: custom_ids {first!r} and {second!r} would both be written to {name}",
            hint="rename one of those inputs, or leave out --output-dir",
        )


def _clashes_fail(items: Iterator[Item], done: frozenset[str]) -> Iterator[Item]:
    """Standard input cannot be checked ahead: an id whose body file another id already
    has fails on its own (never sent) instead."""
    owners = {body_file_name(custom_id): custom_id for custom_id in done}
    for item in items:
        name = body_file_name(item.custom_id)
        owner = owners.setdefault(name, item.custom_id)
        if owner != item.custom_id and item.error is None:
            error = f"--output-dir: {name} already holds the answer of custom_id {owner!r}"
            item = Item(item.custom_id, error=error, source=item.source)
        yield item


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot create ({exc.strerror})") from None


def _open_sink(plan: BatchPlan, results: ResultsFile | None, stdout: IO[bytes] | None) -> LineSink:
    if results is not None:
        return FileSink.of(results)
    return StreamSink(stdout or _stdout())


def _stdout() -> IO[bytes]:
    """The process's standard output, checked before anything is sent: a closed one (or
    one open only for reading) would lose every answer."""
    stream = sys.stdout
    if stream is None:
        raise _no_stdout("standard output is closed")
    with contextlib.suppress(OSError, ValueError):  # not a real descriptor: left to writing
        flags = fcntl.fcntl(stream.fileno(), fcntl.F_GETFL)
        if flags & os.O_ACCMODE == os.O_RDONLY:
            raise _no_stdout("standard output is not open for writing")
    return stream.buffer


def _no_stdout(reason: str) -> OutputError:
    return OutputError(f"cannot write <stdout>: {reason}", hint="give --output-file PATH")


def _count(plan: BatchPlan, done: frozenset[str]) -> int:
    with ExitStack() as stack:
        items = _inputs(plan, stack, done, None)
        return count(select(items, shard=plan.shard, skip=done.__contains__))


def _progress(plan: BatchPlan, err: TextIO, stdout: IO[bytes] | None) -> ProgressView:
    if plan.quiet:
        return NoProgress()
    if err.isatty() and not _results_on_terminal(plan, stdout):
        from gonka_cli.render_batch import RichProgress

        return _Unfailing(RichProgress(err))
    view = PlainProgress(lambda line: _say(err, line), interval_s=plan.progress_interval_s)
    return _Unfailing(view)


class _Unfailing:
    """A progress view whose writes may fail (a terminal that hung up, a full disk under
    stderr) without failing the batch: progress is a courtesy, results are not."""

    def __init__(self, view: ProgressView) -> None:
        self._view = view

    def update(self, snapshot: Snapshot) -> None:
        """Show `snapshot`, if the view still can."""
        with contextlib.suppress(OSError, ValueError):
            self._view.update(snapshot)

    def close(self, snapshot: Snapshot) -> None:
        """Close the view, if it still can."""
        with contextlib.suppress(OSError, ValueError):
            self._view.close(snapshot)


def _results_on_terminal(plan: BatchPlan, stdout: IO[bytes] | None) -> bool:
    """Results lines on the same terminal would tear a live bar apart."""
    if plan.output_file is not None:
        return False
    try:
        return (stdout or sys.stdout).isatty()
    except (AttributeError, ValueError):
        return False


def _say(err: TextIO, line: str) -> None:
    """One line on stderr, if stderr still takes it (a hung-up terminal does not)."""
    with contextlib.suppress(OSError, ValueError):
        err.write(line + "\n")
        err.flush()


async def _run(
    plan: BatchPlan,
    open_sender: SenderFactory,
    writer: ResultsWriter,
    items: Iterator[Item],
    progress: ProgressView,
    total: int | None,
    stopper: _Stopper,
) -> tuple[BatchStats, OutputError | None]:
    """The runner's statistics, and the write failure that ended the run, if one did."""
    options = RunOptions(
        plan.concurrency,
        plan.rate,
        plan.fail_fast,
        plan.output_dir,
        plan.overrides,
        grace_s=plan.grace_s,
        unique_ids=plan.source.unique_ids(),
    )
    runner = BatchRunner(writer, options=options, progress=progress)
    runner.stats.total = total
    async with open_sender(SendHooks(runner.pause, runner.note_retry)) as send:
        with stopper.routing_to(runner):
            try:
                return await runner.run(send, items), None
            except OutputError as exc:
                return runner.stats, exc


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_BEFORE_SENDING: dict[str, type[Interrupted]] = {
    "SIGINT": Interrupted,
    "SIGTERM": Terminated,
    "SIGHUP": HungUp,
}


class _Stopper:
    """SIGINT, SIGTERM and SIGHUP, for the whole batch: each is a clean stop.

    While requests are being sent, a signal is the first Ctrl-C: the runner stops
    launching, gives the requests in flight a grace period, writes every answer that
    arrives, and the summary prints (exit 130, 143 or 129); a second Ctrl-C cancels at
    once. Before sending starts (discovery, a resume's clean-up) nothing is in flight, so
    the batch ends there; once every request is done, a late signal changes nothing.
    SIGXFSZ is ignored, so that a file size limit is a write error we report (EFBIG),
    not a kill. Installed only from the main thread (elsewhere signals stay as they are).
    """

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._runner: BatchRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished = False

    def install(self) -> None:
        """Take over the stop signals (and ignore SIGXFSZ) until `restore`."""
        if threading.current_thread() is not threading.main_thread():
            return
        for name in STOP_SIGNALS:
            number = getattr(signal, name, None)
            # An ignored signal stays ignored: `nohup gonka ...` must survive the hang-up.
            if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                self._previous[number] = signal.signal(number, self._handle)
        if hasattr(signal, "SIGXFSZ"):
            self._previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def routing_to(self, runner: BatchRunner) -> Iterator[None]:
        """Send stop signals to `runner` while it runs."""
        self._runner, self._loop = runner, asyncio.get_running_loop()
        try:
            yield
        finally:
            self._runner, self._loop, self._finished = None, None, True

    def _handle(self, number: int, frame: object) -> None:
        name = signal.Signals(number).name
        runner, loop = self._runner, self._loop
        if runner is not None and loop is not None:
            if runner.stats.stop_signal is None:
                runner.stats.stop_signal = name
            elif name != "SIGINT":
                # Only a second Ctrl-C means "now": `timeout` (and shells) signal the whole
                # process group as well as the child, so one SIGTERM often arrives twice,
                # and the grace period already bounds the stop.
                return
            loop.call_soon_threadsafe(runner.interrupt)
        elif not self._finished:
            if name == "SIGINT":
                raise KeyboardInterrupt
            raise _BEFORE_SENDING[name](f"stopped by {name} before sending began")


def _print_summary(stats: BatchStats, err: TextIO) -> None:
    """The summary, if it can still be written (a hung-up terminal or a full disk under
    stderr must not turn a clean stop into a crash)."""
    with contextlib.suppress(OSError, ValueError):
        for line in format_summary(stats):
            err.write(line + "\n")
        err.flush()


def _raise_for(stats: BatchStats, plan: BatchPlan) -> None:
    code = exit_code(stats)
    again = "--resume" if plan.output_file is not None else "--output-file PATH and --resume"
    if stats.interrupted:
        stopped = {ExitCode.TERMINATED: Terminated, ExitCode.HANGUP: HungUp}.get(code, Interrupted)
        by = f" by {stats.stop_signal}" if stats.stop_signal else ""
        raise stopped(
            f"interrupted{by} after {stats.finished} result(s)", hint=f"run again with {again}"
        )
    if code is ExitCode.PARTIAL:
        duplicates = stats.failed.get("duplicate_custom_id", 0)
        skipped = (
            f"; {duplicates} input(s) repeated a custom_id and got no line of their own"
            if duplicates
            else ""
        )
        raise PartialFailure(
            f"{stats.failed_total} of {stats.finished} request(s) failed",
            hint=f"their lines carry the error{skipped}; {again} sends them again",
        )
