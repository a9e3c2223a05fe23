"""The batch runner: many requests, concurrent, rate-limited, interruptible.

Inputs (:mod:`gonka_cli.batch.inputs`) are consumed lazily; at most ``concurrency``
requests are in flight, launched no faster than ``rate`` per second and never while the
shared :class:`PauseGate` is closed (a 429/503 ``Retry-After`` closes it for everyone).
Each finished input becomes exactly one results line (:mod:`gonka_cli.batch.results`).

Stopping: ``interrupt()`` once (first Ctrl-C, SIGTERM, SIGHUP) stops launching and lets
the requests in flight finish, for ``grace_s`` at most; then, or on a second call, they
are cancelled (a cancelled request writes no line, so ``--resume`` sends it again).
``fail_fast`` stops launching at the first failure the same way.

The request itself goes through the single-request path: the runner only calls
``send(body)``, which signs, fails over and retries as ``gonka send-request`` does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gonka_cli.batch.inputs import NO_OVERRIDES, Item, load
from gonka_cli.batch.results import Result, ResultsWriter, write_body_file
from gonka_cli.batch.scrub import scrubbed
from gonka_cli.batch.stats import BatchStats, NoProgress, ProgressView, Snapshot
from gonka_cli.errors import GonkaError, HTTPError, NetworkError, UsageError
from gonka_cli.jsontext import loads
from gonka_cli.payloads import Overrides

Clock = Callable[[], float]
SendFn = Callable[[bytes], Awaitable["OutcomeLike"]]

DEFAULT_CONCURRENCY = 8
# How long requests in flight may take to finish once a batch is told to stop: well
# inside the 10 s a container runtime waits between SIGTERM and SIGKILL.
DEFAULT_GRACE_S = 5.0


class PauseGate:
    """A shared pause: ``pause_for(s)`` makes every worker wait until s seconds from now."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0

    def pause_for(self, seconds: float) -> None:
        """Close the gate for `seconds` from now (a longer pause already set wins)."""
        self._until = max(self._until, self._clock() + max(0.0, seconds))

    def remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        return max(0.0, self._until - self._clock())

    async def wait(self) -> None:
        """Return once the gate is open (it may be closed again meanwhile; then wait more)."""
        while (delay := self.remaining()) > 0:
            await asyncio.sleep(delay)


class RateLimiter:
    """At most `rate` launches per second, spaced evenly; no limit when rate is None."""

    def __init__(self, rate: float | None, clock: Clock = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = -math.inf

    async def acquire(self) -> None:
        """Wait for the next launch slot."""
        if not self._interval:
            return
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True)
class SendHooks:
    """What the sender is given: the shared pause gate and a callback per retry."""

    pause: PauseGate
    on_retry: Callable[[], None]


# --- outcomes -> results ---------------------------------------------------------------


class OutcomeLike(Protocol):
    """What the runner reads from the single-request client's `Outcome`."""

    @property
    def status_code(self) -> int: ...
    @property
    def response(self) -> dict[str, Any]: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def transfer_address(self) -> str: ...
    @property
    def inference_id(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def latency_s(self) -> float: ...
    @property
    def ttft_s(self) -> float | None: ...
    @property
    def usage(self) -> dict[str, Any] | None: ...


def result_from_outcome(custom_id: str, outcome: OutcomeLike) -> Result:
    """The success result for the single-request path's `outcome` (a streamed answer
    arrives already reassembled as one ``chat.completion``)."""
    return Result(
        custom_id=custom_id,
        status_code=outcome.status_code,
        request_id=outcome.request_id,
        body=outcome.response,
        endpoint=outcome.endpoint,
        transfer_address=outcome.transfer_address or None,
        inference_id=outcome.inference_id or None,
        attempts=outcome.attempts,
        latency_s=outcome.latency_s,
        ttft_s=outcome.ttft_s,
    )


def error_code(exc: BaseException) -> str:
    """A short reason for a failure, used in results lines and the summary (``http_429``...)."""
    if isinstance(exc, HTTPError):
        return f"http_{exc.status_code}"
    if isinstance(exc, NetworkError):
        return "network_error"
    if isinstance(exc, UsageError):  # found only when sending, like a body over the TA's limit
        return "invalid_input"
    if isinstance(exc, GonkaError):
        return exc.__class__.__name__.lower()
    return "internal_error"


def result_from_error(custom_id: str, exc: BaseException, elapsed_s: float) -> Result:
    """The failure result for a request that raised `exc`."""
    message = exc.message if isinstance(exc, GonkaError) else f"{type(exc).__name__}: {exc}"
    status = body = None
    if isinstance(exc, HTTPError):
        status, body = exc.status_code, _parsed(exc.body)
    return Result(
        custom_id=custom_id,
        status_code=status,
        body=body,
        error_code=error_code(exc),
        error_message=message,
        latency_s=elapsed_s,
    )


def _parsed(body: str) -> Any:
    try:
        return loads(body)
    except ValueError:
        return body or None


def result_from_input_error(item: Item) -> Result:
    """The failure result for an input that cannot be sent."""
    return Result(custom_id=item.custom_id, error_code="invalid_input", error_message=item.error)


# --- the runner ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """How a batch is sent."""

    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    fail_fast: bool = False
    body_dir: Path | None = None
    overrides: Overrides = NO_OVERRIDES
    tick_s: float = 0.5
    grace_s: float | None = DEFAULT_GRACE_S
    # The inputs cannot repeat a custom_id (a directory's paths, checked --file paths):
    # no need to remember every id, which for 100,000 files costs megabytes.
    unique_ids: bool = False


class BatchRunner:
    """Sends items, writes one result each, and keeps the statistics.

    Built before the sender, so that the sender can be given this runner's pause gate
    and retry hook (:class:`SendHooks`); `run` then takes the sender's ``send``.

    ``concurrency`` workers share one lazy iterator of the inputs: each takes the next
    input, sends it and writes its line, then takes the next. A connection freed by one
    answer is reused by that worker's next request at once, without a task, a semaphore
    or an event-loop round in between (an idle connection costs the HTTP pool a socket
    check on every request, so idle time would grow the cost per request with -j).
    """

    def __init__(
        self,
        writer: ResultsWriter,
        *,
        options: RunOptions = RunOptions(),
        pause: PauseGate | None = None,
        progress: ProgressView | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._writer = writer
        self._options = options
        self.pause = pause or PauseGate(clock)
        self._progress = progress or NoProgress()
        self._live = not isinstance(self._progress, NoProgress)
        self._clock = clock
        self._rate = RateLimiter(options.rate, clock)
        self._workers: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()  # workers not sending right now
        self._in_flight = 0
        self._items: Iterator[Item] = iter(())
        self._seen: set[str] = set()
        self._started = clock()
        self._stopping = False
        self._interrupts = 0
        self._fatal: BaseException | None = None
        self._input_failure: BaseException | None = None
        self._retry_notices = False
        self._send: SendFn | None = None
        self.stats = BatchStats()

    # control

    def note_retry(self) -> None:
        """A request is being retried (the sender's notice): count it as it happens.

        Once notices arrive they are the count (they also cover requests that end up
        failing); without them, retries are counted from each outcome's attempts.
        """
        self._retry_notices = True
        self.stats.retries += 1

    def interrupt(self) -> None:
        """First call: stop launching, let in-flight requests finish. Second: cancel them."""
        self._interrupts += 1
        self.stats.interrupted = True
        if self._interrupts == 1:
            self._stop()
            if self._options.grace_s is not None:
                asyncio.get_running_loop().call_later(self._options.grace_s, self._cancel_in_flight)
        else:
            self._cancel_in_flight()

    def _stop(self) -> None:
        """Launch nothing more: workers waiting for a launch slot give up now."""
        self._stopping = True
        for worker in list(self._waiting):
            worker.cancel()

    def _cancel_in_flight(self) -> None:
        self._stop()
        for worker in list(self._workers):
            worker.cancel()

    # running

    async def run(self, send: SendFn, items: Iterable[Item]) -> BatchStats:
        """Send every item through `send` (until stopped); return the statistics."""
        self._send = send
        self._items = iter(items)
        self._started = self._clock()
        for _ in range(max(1, self._options.concurrency)):
            worker = asyncio.create_task(self._work())
            self._workers.add(worker)
            self._waiting.add(worker)
        ticker = asyncio.create_task(self._tick())
        try:
            await asyncio.wait(list(self._workers))
        finally:
            ticker.cancel()
            await asyncio.wait([ticker])
            self.stats.wall_s = self._clock() - self._started
            self._progress.close(self.snapshot())
        self._raise_failure()
        return self.stats

    def _raise_failure(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._input_failure is not None:
            raise self._input_failure

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._options.tick_s)
            self._progress.update(self.snapshot())

    def snapshot(self) -> Snapshot:
        """The run's state now."""
        stats = self.stats
        return Snapshot(
            total=stats.total,
            succeeded=stats.succeeded,
            failed=stats.failed_total,
            in_flight=self._in_flight,
            retries=stats.retries,
            elapsed_s=self._clock() - self._started,
            paused_s=self.pause.remaining(),
        )

    async def _work(self) -> None:
        """One worker: next sendable input, launch slot, send, line; until none is left.

        An input taken but not sent (stopped while waiting for the rate or the pause)
        gets no line, like one cancelled in flight: ``--resume`` sends it.
        """
        worker = asyncio.current_task()
        assert worker is not None
        sending = False
        try:
            while not self._stopping:
                item = self._next_item()
                if item is None:
                    return
                await self._rate.acquire()
                await self.pause.wait()
                if self._stopping:
                    return
                self._waiting.discard(worker)
                self._in_flight += 1
                sending = True
                try:
                    await self._send_one(item)
                finally:
                    self._in_flight -= 1
                    self._waiting.add(worker)
                sending = False
        except asyncio.CancelledError:
            # stopped while waiting, or cancelled in flight (a second signal, or the grace
            # period ran out): no line for this input, so --resume sends it again
            self.stats.cancelled += sending
            return
        except BaseException as exc:  # the results file failed, or a bug: stop everything
            if self._fatal is None:
                self._fatal = exc
                self._cancel_in_flight()
        finally:
            self._workers.discard(worker)
            self._waiting.discard(worker)

    def _next_item(self) -> Item | None:
        """The next input that can be sent; the others get their line (or count) here."""
        try:
            for item in self._items:
                if self._duplicate(item.custom_id):
                    self.stats.failed["duplicate_custom_id"] += 1
                    continue
                loaded = load(item, self._options.overrides)
                if loaded.error is not None:
                    self._record(result_from_input_error(loaded))
                    if self._stopping:
                        return None
                    continue
                return loaded
        except Exception as exc:  # reading the inputs failed: stop launching, then raise it
            if self._input_failure is None:
                self._input_failure = exc
            self._stop()
        return None

    def _duplicate(self, custom_id: str) -> bool:
        if self._options.unique_ids:
            return False
        seen = custom_id in self._seen
        self._seen.add(custom_id)
        return seen

    async def _send_one(self, item: Item) -> None:
        assert item.body is not None
        assert self._send is not None
        started = self._clock()
        usage: dict[str, Any] | None = None
        try:
            outcome = await self._send(item.body)
        except Exception as exc:  # a GonkaError; or a bug, which must cost one input, not all
            result = result_from_error(item.custom_id, exc, self._clock() - started)
        else:
            result = result_from_outcome(item.custom_id, outcome)
            usage = outcome.usage
            result = await self._save_body(result)
        self._record(result, usage)

    async def _save_body(self, result: Result) -> Result:
        directory = self._options.body_dir
        if directory is None:
            return result
        try:
            body = scrubbed(result).body  # issue 13: no secret in a body file
            await asyncio.to_thread(write_body_file, directory, result.custom_id, body)
        except OSError as exc:
            message = f"{directory}: cannot write the response body ({exc.strerror or exc})"
            return Result(
                custom_id=result.custom_id, error_code="output_error", error_message=message
            )
        return result

    def _record(self, result: Result, usage: dict[str, Any] | None = None) -> None:
        self._writer.write(scrubbed(result))  # issue 13: redacted before it is stored
        self.stats.add(result, usage)
        if result.attempts and not self._retry_notices:
            self.stats.retries += result.attempts - 1
        if self._live:
            self._progress.update(self.snapshot())
        if not result.ok and self._options.fail_fast and not self._stopping:
            self.stats.stopped_by_failure = True
            self._stop()
