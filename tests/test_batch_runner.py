"""The batch runner with fake senders: concurrency, rate, pause, stops, failures, results."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gonka_cli.batch.inputs import Item
from gonka_cli.batch.results import Result, ResultsWriter
from gonka_cli.batch.runner import BatchRunner, PauseGate, RateLimiter, RunOptions
from gonka_cli.batch.stats import BatchStats
from gonka_cli.errors import HTTPClientError, HTTPServerError, NetworkError
from tests.batch_fakes import EchoSender, FakeOutcome, body, echo_outcome


class MemorySink:
    """A line sink that keeps the lines in memory."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.closed = False

    def write_line(self, line: bytes) -> None:
        self.lines.append(line)

    def sync(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


def _items(n: int) -> list[Item]:
    return [Item(f"r{i}", body=body(f"c{i}")) for i in range(n)]


def _run(send: Any, items: list[Item], **options: Any) -> tuple[BatchStats, MemorySink]:
    sink = MemorySink()

    async def main() -> BatchStats:
        runner = BatchRunner(ResultsWriter(sink), options=RunOptions(**options))
        return await runner.run(send, items)

    return asyncio.run(main()), sink


def test_every_item_gets_exactly_one_correct_line() -> None:
    """Each input yields one line, and each line carries that input's own answer."""
    stats, sink = _run(EchoSender(delay_s=0.001), _items(40), concurrency=5)
    records = sink.records()
    assert sorted(r["custom_id"] for r in records) == sorted(f"r{i}" for i in range(40))
    for record in records:
        content = record["response"]["body"]["choices"][0]["message"]["content"]
        assert content == "c" + record["custom_id"][1:]
    assert stats.succeeded == 40
    assert stats.failed_total == 0


def test_concurrency_bounds_requests_in_flight() -> None:
    """No more than --concurrency requests run at once, and that many do run together."""
    send = EchoSender(delay_s=0.01)
    _run(send, _items(30), concurrency=4)
    assert send.max_running == 4


def test_rate_spaces_launches() -> None:
    """--rate 100: the i-th launch starts no earlier than i/100 s after the run began."""
    send = EchoSender()
    sink = MemorySink()

    async def main() -> float:
        runner = BatchRunner(ResultsWriter(sink), options=RunOptions(10, rate=100.0))
        began = asyncio.get_running_loop().time()
        await runner.run(send, _items(10))
        return began

    began = asyncio.run(main())
    starts = sorted(send.started_at)
    assert all(t - began >= i * 0.01 - 1e-6 for i, t in enumerate(starts))
    assert len(sink.lines) == 10


def test_rate_limiter_without_rate_never_waits() -> None:
    """No --rate: acquire() returns at once."""

    async def main() -> float:
        limiter = RateLimiter(None)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(1000):
            await limiter.acquire()
        return loop.time() - start

    assert asyncio.run(main()) < 0.05


def test_pause_gate_holds_every_new_launch() -> None:
    """A pause_for(s) from one request holds all new launches until s seconds have passed."""
    sink = MemorySink()
    launches: list[float] = []

    async def main() -> None:
        pause = PauseGate()
        loop = asyncio.get_running_loop()

        async def send(data: bytes) -> FakeOutcome:
            launches.append(loop.time())
            if len(launches) == 1:
                pause.pause_for(0.2)
            return echo_outcome(data)

        runner = BatchRunner(ResultsWriter(sink), options=RunOptions(2), pause=pause)
        await runner.run(send, _items(4))

    asyncio.run(main())
    assert len(sink.lines) == 4
    assert all(t - launches[0] >= 0.19 for t in launches[2:])


def test_pause_gate_keeps_the_longest_pause() -> None:
    """A shorter pause never shortens a longer one already set."""
    now = [100.0]
    gate = PauseGate(clock=lambda: now[0])
    gate.pause_for(5)
    gate.pause_for(1)
    assert gate.remaining() == 5
    now[0] = 104.5
    assert gate.remaining() == pytest.approx(0.5)


def test_failures_become_lines_with_their_reason() -> None:
    """HTTP, network and unexpected errors become failed lines; the other inputs go on."""
    errors: dict[bytes, BaseException] = {
        body("c1"): HTTPClientError("bad request", status_code=400, body='{"error": "nope"}'),
        body("c2"): NetworkError("connection refused"),
        body("c3"): ValueError("a bug"),
        body("c4"): HTTPServerError("busy", status_code=503, body="not json"),
    }
    stats, sink = _run(EchoSender(fail=errors.get), _items(6))
    by_id = {r["custom_id"]: r for r in sink.records()}
    assert by_id["r1"]["error"] == {"code": "http_400", "message": "bad request"}
    assert by_id["r1"]["response"]["body"] == {"error": "nope"}
    assert by_id["r2"]["error"]["code"] == "network_error"
    assert by_id["r2"]["response"] is None
    assert by_id["r3"]["error"] == {"code": "internal_error", "message": "ValueError: a bug"}
    assert by_id["r4"]["response"] == {"status_code": 503, "request_id": None, "body": "not json"}
    assert by_id["r0"]["error"] is None
    assert stats.succeeded == 2
    assert dict(stats.failed) == {
        "http_400": 1,
        "network_error": 1,
        "internal_error": 1,
        "http_503": 1,
    }


def test_unloadable_input_is_a_failed_line_and_never_sent(tmp_path: Path) -> None:
    """A malformed file among good ones gets a failed line; it is not sent; the rest succeed."""
    (tmp_path / "bad.json").write_bytes(b"{nope")
    items = [*_items(2), Item("bad.json", path=tmp_path / "bad.json"), Item("x", error="why")]
    send = EchoSender()
    stats, sink = _run(send, items)
    by_id = {r["custom_id"]: r for r in sink.records()}
    assert by_id["bad.json"]["error"]["code"] == "invalid_input"
    assert "not valid JSON" in by_id["bad.json"]["error"]["message"]
    assert by_id["x"]["error"]["message"] == "why"
    assert len(send.bodies) == 2
    assert (stats.succeeded, stats.failed_total) == (2, 2)


def test_a_duplicate_custom_id_is_counted_not_written_twice() -> None:
    """The second input with an id already seen is not sent and writes no second line."""
    items = [Item("same", body=body("1")), Item("same", body=body("2"))]
    stats, sink = _run(EchoSender(), items)
    assert [r["custom_id"] for r in sink.records()] == ["same"]
    assert stats.failed["duplicate_custom_id"] == 1


def test_fail_fast_stops_launching_after_the_first_failure() -> None:
    """--fail-fast: after a failure nothing new starts; what was in flight still finishes."""
    send = EchoSender(delay_s=0.01, fail=lambda b: NetworkError("x") if b == body("c1") else None)
    stats, sink = _run(send, _items(50), concurrency=2, fail_fast=True)
    assert stats.stopped_by_failure
    assert len(send.bodies) <= 4
    assert len(sink.lines) == len(send.bodies)


def _interrupting_run(presses: int) -> tuple[BatchStats, MemorySink, EchoSender]:
    """Run 20 slow items at concurrency 4 and press Ctrl-C `presses` times mid-way."""
    sink = MemorySink()
    send = EchoSender(delay_s=0.05)

    async def main() -> BatchStats:
        runner = BatchRunner(ResultsWriter(sink), options=RunOptions(4))

        async def press() -> None:
            await asyncio.sleep(0.075)
            for _ in range(presses):
                runner.interrupt()

        presser = asyncio.create_task(press())
        stats = await runner.run(send, _items(20))
        await presser
        return stats

    return asyncio.run(main()), sink, send


def test_first_interrupt_drains_in_flight_requests() -> None:
    """One Ctrl-C: no new launches; the requests in flight finish and get their lines."""
    stats, sink, send = _interrupting_run(1)
    assert stats.interrupted
    assert 4 <= len(send.bodies) < 20
    assert len(sink.lines) == len(send.bodies)
    assert all(r["error"] is None for r in sink.records())


def test_second_interrupt_cancels_in_flight_requests_without_lines() -> None:
    """Two Ctrl-C: requests in flight are cancelled and write nothing (resume resends them)."""
    stats, sink, send = _interrupting_run(2)
    assert stats.interrupted
    assert len(sink.lines) < len(send.bodies)
    assert len({r["custom_id"] for r in sink.records()}) == len(sink.lines)


def test_a_results_write_failure_stops_the_batch() -> None:
    """If the results cannot be written (disk full, closed pipe) the run raises that error."""

    class BrokenSink(MemorySink):
        def write_line(self, line: bytes) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    async def main() -> None:
        runner = BatchRunner(ResultsWriter(BrokenSink()))
        await runner.run(EchoSender(), _items(5))

    with pytest.raises(BrokenPipeError):
        asyncio.run(main())


def test_body_dir_gets_one_file_per_success(tmp_path: Path) -> None:
    """--output-dir: each successful response body is written as <custom_id>.json."""
    _run(EchoSender(), _items(3), body_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0.json", "r1.json", "r2.json"]
    answer = json.loads((tmp_path / "r1.json").read_text())
    assert answer["choices"][0]["message"]["content"] == "c1"


def test_stats_count_retries_tokens_and_latency() -> None:
    """Retries are attempts beyond the first; tokens add up; latencies come from outcomes."""

    async def send(data: bytes) -> FakeOutcome:
        return echo_outcome(data, attempts=3, latency_s=0.5)

    stats, _ = _run(send, _items(4))
    assert stats.retries == 8
    assert (stats.prompt_tokens, stats.completion_tokens, stats.total_tokens) == (12, 8, 20)
    assert list(stats.latencies) == [0.5] * 4


def test_stats_add_tolerates_missing_or_odd_usage() -> None:
    """Usage may be absent or hold non-numbers; only integers are added up."""
    stats = BatchStats()
    ok = Result("a", status_code=200)
    stats.add(ok, {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    stats.add(ok, {"total_tokens": "3", "prompt_tokens": True})
    stats.add(ok, None)
    assert (stats.total_tokens, stats.prompt_tokens, stats.succeeded) == (2, 1, 3)


def test_retry_notices_replace_counting_from_attempts() -> None:
    """With the sender's retry notices wired, each notice is one retry, counted once."""
    sink = MemorySink()

    async def main() -> BatchStats:
        runner: BatchRunner

        async def send(data: bytes) -> FakeOutcome:
            runner.note_retry()
            runner.note_retry()
            return echo_outcome(data, attempts=3)

        runner = BatchRunner(ResultsWriter(sink))
        return await runner.run(send, _items(3))

    assert asyncio.run(main()).retries == 6


def test_tasks_do_not_grow_with_the_number_of_inputs() -> None:
    """C workers serve every input: no task (and no event-loop round) per input, the cost
    that made each request dearer the more were in flight."""
    created = 0
    sink = MemorySink()

    async def main() -> int:
        loop = asyncio.get_running_loop()

        def count(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            nonlocal created
            created += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(count)
        runner = BatchRunner(ResultsWriter(sink), options=RunOptions(4))
        stats = await runner.run(EchoSender(), _items(200))
        assert stats.succeeded == 200
        return created

    assert asyncio.run(main()) == 4 + 1  # the workers and the progress ticker
    assert len(sink.lines) == 200
