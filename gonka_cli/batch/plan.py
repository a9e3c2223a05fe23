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
import itertools
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

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
from gonka_cli.batch.results import FileSink, LineSink, ResultsWriter, StreamSink, prepare_resume
from gonka_cli.batch.runner import DEFAULT_CONCURRENCY, BatchRunner, RunOptions, SendFn, SendHooks
from gonka_cli.batch.stats import (
    BatchStats,
    NoProgress,
    PlainProgress,
    ProgressView,
    exit_code,
    format_summary,
)
from gonka_cli.errors import ExitCode, Interrupted, PartialFailure, UsageError
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
        if not self.resume and self.output_file is not None and _has_content(self.output_file):
            raise UsageError(
                f"{self.output_file} already holds results",
                hint="add --resume to finish that batch, or remove the file to start over",
            )


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def run_batch(
    plan: BatchPlan,
    open_sender: SenderFactory,
    *,
    stdout: IO[bytes] | None = None,
    stderr: TextIO | None = None,
) -> BatchStats:
    """Run the batch; print the summary; raise PartialFailure or Interrupted when due.

    `stdout` receives the results when there is no ``--output-file``; `stderr` the
    progress and summary. Both default to the process's streams.
    """
    plan.check()
    err = stderr or sys.stderr
    done = _resume_state(plan, err)
    with ExitStack() as stack:
        # Counted first: the count's own listing of a large directory is gone before
        # the batch's listing is made, rather than both held at once.
        total = _count(plan, done) if plan.source.countable() else None
        inputs = _some_inputs(plan.source, plan.source.items(stack))
        if plan.output_dir is not None:
            _make_dir(plan.output_dir)
        sink = _open_sink(plan, stdout)
        writer = stack.enter_context(contextlib.closing(ResultsWriter(sink)))
        skipped = _Tally(done)
        items = select(inputs, shard=plan.shard, skip=skipped)
        progress = _progress(plan, err, stdout)
        stats = asyncio.run(_run(plan, open_sender, writer, items, progress, total))
    stats.skipped = skipped.count
    _print_summary(stats, err)
    _raise_for(stats, plan)
    return stats


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


def _resume_state(plan: BatchPlan, err: TextIO) -> frozenset[str]:
    if not plan.resume or plan.output_file is None:
        return frozenset()
    state = prepare_resume(plan.output_file)
    cleaned = []
    if state.dropped_failed:
        cleaned.append(f"{state.dropped_failed} failed line(s) to send again")
    if state.dropped_torn:
        cleaned.append("a torn last line")
    if state.dropped_unreadable:
        cleaned.append(f"{state.dropped_unreadable} unreadable line(s)")
    if cleaned:
        err.write(f"resume: removed {', '.join(cleaned)} from {plan.output_file}\n")
    err.write(f"resume: {len(state.done)} input(s) already done\n")
    return state.done


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot create ({exc.strerror})") from None


def _open_sink(plan: BatchPlan, stdout: IO[bytes] | None) -> LineSink:
    if plan.output_file is not None:
        return FileSink(plan.output_file)
    return StreamSink(stdout or sys.stdout.buffer)


def _count(plan: BatchPlan, done: frozenset[str]) -> int:
    with ExitStack() as stack:
        return count(select(plan.source.items(stack), shard=plan.shard, skip=done.__contains__))


def _progress(plan: BatchPlan, err: TextIO, stdout: IO[bytes] | None) -> ProgressView:
    if plan.quiet:
        return NoProgress()
    if err.isatty() and not _results_on_terminal(plan, stdout):
        from gonka_cli.render_batch import RichProgress

        return RichProgress(err)
    return PlainProgress(lambda line: _say(err, line), interval_s=plan.progress_interval_s)


def _results_on_terminal(plan: BatchPlan, stdout: IO[bytes] | None) -> bool:
    """Results lines on the same terminal would tear a live bar apart."""
    if plan.output_file is not None:
        return False
    try:
        return (stdout or sys.stdout).isatty()
    except (AttributeError, ValueError):
        return False


def _say(err: TextIO, line: str) -> None:
    err.write(line + "\n")
    err.flush()


async def _run(
    plan: BatchPlan,
    open_sender: SenderFactory,
    writer: ResultsWriter,
    items: Iterator[Item],
    progress: ProgressView,
    total: int | None,
) -> BatchStats:
    options = RunOptions(
        plan.concurrency,
        plan.rate,
        plan.fail_fast,
        plan.output_dir,
        plan.overrides,
        unique_ids=plan.source.unique_ids(),
    )
    runner = BatchRunner(writer, options=options, progress=progress)
    runner.stats.total = total
    async with open_sender(SendHooks(runner.pause, runner.note_retry)) as send:
        with _interrupts_to(runner.interrupt):
            return await runner.run(send, items)


@contextlib.contextmanager
def _interrupts_to(handler: Callable[[], None]) -> Iterator[None]:
    """Route SIGINT to `handler` while the batch runs (where the platform allows it)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):
        yield  # not the main thread, or no signal support: Ctrl-C stays KeyboardInterrupt
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _print_summary(stats: BatchStats, err: TextIO) -> None:
    for line in format_summary(stats):
        err.write(line + "\n")
    err.flush()


def _raise_for(stats: BatchStats, plan: BatchPlan) -> None:
    code = exit_code(stats)
    again = "--resume" if plan.output_file is not None else "--output-file PATH and --resume"
    if code is ExitCode.INTERRUPTED:
        raise Interrupted(
            f"interrupted after {stats.finished} result(s)", hint=f"run again with {again}"
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
