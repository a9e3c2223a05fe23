"""run_batch end to end with a fake sender: inputs, results file, resume, shards, summary."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from gonka_cli.batch.inputs import Shard
from gonka_cli.batch.plan import BatchPlan, BatchSource, run_batch
from gonka_cli.batch.results import read_results
from gonka_cli.batch.stats import BatchStats
from gonka_cli.errors import Interrupted, NetworkError, PartialFailure, Terminated, UsageError
from tests.batch_fakes import EchoSender, body, content_of, sender_factory, write_requests


class Stderr(io.StringIO):
    """A stderr stand-in that says whether it is a terminal."""

    def __init__(self, tty: bool = False) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _batch(plan: BatchPlan, send: Any = None, **kw: Any) -> tuple[BatchStats, Stderr]:
    err = Stderr()
    stats = run_batch(plan, sender_factory(send or EchoSender()), stderr=err, **kw)
    return stats, err


def test_a_directory_gives_one_correct_line_per_file(tmp_path: Path) -> None:
    """--dir: every file gets exactly one line with its own answer; summary on stderr."""
    names = write_requests(tmp_path / "in", 12)
    out = tmp_path / "results.jsonl"
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out, concurrency=3)
    stats, err = _batch(plan)
    records = read_results(out)
    assert sorted(r["custom_id"] for r in records) == names
    assert all(content_of(r) == f"content of {r['custom_id']}" for r in records)
    assert stats.succeeded == 12
    assert "succeeded  12" in err.getvalue()


def test_results_go_to_stdout_without_output_file(tmp_path: Path) -> None:
    """No --output-file: the JSONL results are the only thing on stdout."""
    names = write_requests(tmp_path / "in", 3)
    stdout = io.BytesIO()
    _batch(BatchPlan(BatchSource(directory=tmp_path / "in")), stdout=stdout)
    lines = stdout.getvalue().decode().splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in lines) == names


def test_a_malformed_file_fails_alone_and_the_run_exits_partial(tmp_path: Path) -> None:
    """One bad file among good ones: a failed line for it, the rest succeed, exit 8."""
    write_requests(tmp_path / "in", 3)
    (tmp_path / "in" / "broken.json").write_text('{"model": ')
    out = tmp_path / "r.jsonl"
    send = EchoSender()
    with pytest.raises(PartialFailure, match="1 of 4 request") as caught:
        _batch(BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out), send)
    assert caught.value.exit_code == 8
    by_id = {r["custom_id"]: r for r in read_results(out)}
    assert by_id["broken.json"]["error"]["code"] == "invalid_input"
    assert len(send.bodies) == 3


def test_repeated_files_and_jsonl_are_inputs_too(tmp_path: Path) -> None:
    """--file several times and --jsonl (Batch lines and bare bodies) work the same way."""
    files = [str(tmp_path / "in" / n) for n in write_requests(tmp_path / "in", 2)]
    out = tmp_path / "files.jsonl"
    _batch(BatchPlan(BatchSource(files=tuple(files)), output_file=out))
    assert sorted(r["custom_id"] for r in read_results(out)) == sorted(files)

    jsonl = tmp_path / "in.jsonl"
    batch_line = {"custom_id": "q", "method": "POST", "url": "/v1/chat/completions"}
    batch_line["body"] = json.loads(body("via batch line"))
    jsonl.write_bytes(json.dumps(batch_line).encode() + b"\n" + body("bare") + b"\n")
    out = tmp_path / "jsonl.jsonl"
    _batch(BatchPlan(BatchSource(jsonl=str(jsonl)), output_file=out))
    assert {r["custom_id"]: content_of(r) for r in read_results(out)} == {
        "q": "via batch line",
        "2": "bare",
    }


def test_jsonl_lines_repeating_a_custom_id_fail_as_duplicates(tmp_path: Path) -> None:
    """JSONL can repeat a custom_id (paths cannot): the repeat is refused, the first sent,
    and the final hint says the repeat has no line of its own."""
    line = {"custom_id": "same", "body": json.loads(body("same"))}
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n")
    send = EchoSender()
    with pytest.raises(PartialFailure) as failure:
        _batch(BatchPlan(BatchSource(jsonl=str(source)), output_file=tmp_path / "r.jsonl"), send)
    assert "1 input(s) repeated a custom_id and got no line" in str(failure.value.hint)
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1
    assert len(send.bodies) == 1
    assert BatchSource(jsonl=str(source)).unique_ids() is False
    assert BatchSource(directory=tmp_path).unique_ids() is True


def test_jsonl_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--jsonl - reads standard input, where the total is not known ahead."""

    class Stdin:
        buffer = io.BytesIO(body("a") + b"\n" + body("b") + b"\n")

    monkeypatch.setattr("sys.stdin", Stdin())
    out = tmp_path / "r.jsonl"
    stats, _ = _batch(BatchPlan(BatchSource(jsonl="-"), output_file=out))
    assert stats.total is None
    assert [content_of(r) for r in read_results(out)] in (["a", "b"], ["b", "a"])


def test_shards_split_a_batch_over_runners_without_overlap(tmp_path: Path) -> None:
    """--shard K/3 for K = 1..3: together every input once, each shard its own share."""
    names = write_requests(tmp_path / "in", 30)
    seen: list[str] = []
    for k in (1, 2, 3):
        out = tmp_path / f"shard{k}.jsonl"
        plan = BatchPlan(BatchSource(directory=tmp_path / "in"), Shard(k, 3), output_file=out)
        stats, _ = _batch(plan)
        assert stats.total == stats.succeeded
        seen += [r["custom_id"] for r in read_results(out)]
    assert sorted(seen) == names


def test_resume_sends_only_what_is_missing_or_failed(tmp_path: Path) -> None:
    """--resume: done inputs are skipped, failed and torn ones resent, each id once at the end."""
    names = write_requests(tmp_path / "in", 10)
    out = tmp_path / "r.jsonl"
    source = BatchSource(directory=tmp_path / "in")
    flaky = EchoSender(fail=lambda b: NetworkError("down") if b"req-003" in b else None)
    with pytest.raises(PartialFailure):
        _batch(BatchPlan(source, output_file=out), flaky)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:6]) + lines[6][:30])  # a crash: 4 lost, 1 torn

    again = EchoSender()
    stats, err = _batch(BatchPlan(source, output_file=out, resume=True), again)
    records = read_results(out)
    assert sorted(r["custom_id"] for r in records) == names
    assert all(r["error"] is None for r in records)
    assert out.read_bytes().endswith(b"\n")
    assert stats.skipped + stats.succeeded == 10
    assert len(again.bodies) == stats.succeeded
    assert "resume:" in err.getvalue()


def test_existing_results_need_resume_and_resume_needs_a_file(tmp_path: Path) -> None:
    """A non-empty results file is never overwritten silently; --resume needs --output-file."""
    write_requests(tmp_path / "in", 1)
    out = tmp_path / "r.jsonl"
    out.write_text("something\n")
    source = BatchSource(directory=tmp_path / "in")
    with pytest.raises(UsageError, match="already holds results"):
        _batch(BatchPlan(source, output_file=out))
    with pytest.raises(UsageError, match="--resume needs --output-file"):
        _batch(BatchPlan(source, resume=True))


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (BatchPlan(BatchSource()), "one of --dir, --file or --jsonl"),
        (BatchPlan(BatchSource(files=("a", "b"), jsonl="x")), "one of --dir"),
        (BatchPlan(BatchSource(files=("a", "b"), recursive=True)), "go with --dir"),
        (BatchPlan(BatchSource(files=("a", "a"))), "given twice"),
        (BatchPlan(BatchSource(jsonl="x"), concurrency=0), "--concurrency"),
        (BatchPlan(BatchSource(jsonl="x"), rate=0), "--rate"),
    ],
)
def test_bad_flag_combinations_are_usage_errors(plan: BatchPlan, message: str) -> None:
    """Flags that do not go together are refused before anything is sent."""
    with pytest.raises(UsageError, match=message):
        _batch(plan)


def test_output_dir_holds_each_body_and_is_created(tmp_path: Path) -> None:
    """--output-dir is created if missing and gets one body file per success."""
    write_requests(tmp_path / "in", 2)
    bodies = tmp_path / "bodies" / "deep"
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_dir=bodies, quiet=True)
    _batch(plan, stdout=io.BytesIO())
    assert sorted(p.name for p in bodies.iterdir()) == ["req-000.json", "req-001.json"]


def test_interrupt_exits_130_after_the_summary(tmp_path: Path) -> None:
    """Interrupted mid-run: lines so far stay whole, the summary prints, Interrupted is raised."""
    write_requests(tmp_path / "in", 20)
    out = tmp_path / "r.jsonl"
    calls = 0

    async def send(data: bytes) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return await EchoSender(delay_s=0.01)(data)

    err = Stderr()
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out, concurrency=2)
    with pytest.raises(Interrupted) as caught:
        run_batch(plan, sender_factory(send), stderr=err)
    assert caught.value.exit_code == 130
    assert 3 <= len(read_results(out)) < 20
    assert "not done" in err.getvalue()


def test_progress_lines_on_a_pipe_and_none_with_quiet(tmp_path: Path) -> None:
    """Not a terminal: plain progress lines every interval; --quiet: none, summary still."""
    write_requests(tmp_path / "in", 6)
    source = BatchSource(directory=tmp_path / "in")
    slow = EchoSender(delay_s=0.1)
    plan = BatchPlan(source, concurrency=1, progress_interval_s=0.2)
    _, err = _batch(plan, slow, stdout=io.BytesIO())
    assert "batch: " in err.getvalue()
    assert "/6 done" in err.getvalue()
    quiet = BatchPlan(source, concurrency=1, progress_interval_s=0.2, quiet=True)
    _, err = _batch(quiet, EchoSender(delay_s=0.1), stdout=io.BytesIO())
    assert "/6 done" not in err.getvalue()
    assert "succeeded  6" in err.getvalue()


def test_a_terminal_gets_the_rich_bar(tmp_path: Path) -> None:
    """stderr a terminal: the rich progress bar is drawn there."""
    write_requests(tmp_path / "in", 3)
    err = Stderr(tty=True)
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"))
    run_batch(plan, sender_factory(EchoSender()), stderr=err, stdout=io.BytesIO())
    assert "3/3" in err.getvalue()


def test_no_live_bar_when_results_go_to_the_same_terminal(tmp_path: Path) -> None:
    """Results on a terminal stdout would tear a live bar apart: plain progress instead."""

    class TerminalBytes(io.BytesIO):
        def isatty(self) -> bool:
            return True

    write_requests(tmp_path / "in", 3)
    err = Stderr(tty=True)
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"))
    run_batch(plan, sender_factory(EchoSender()), stderr=err, stdout=TerminalBytes())
    assert "3/3" not in err.getvalue()
    assert "succeeded  3" in err.getvalue()


def test_sigterm_gives_requests_in_flight_a_grace_period_then_cancels(tmp_path: Path) -> None:
    """SIGTERM mid-run: no new launches; an answer arriving within the grace period is
    written, one that never comes is cancelled when it ends; summary, exit 143."""
    write_requests(tmp_path / "in", 20)
    out = tmp_path / "r.jsonl"
    calls = 0

    async def send(data: bytes) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(3600)  # never answers: the grace period must end it
        return await EchoSender(delay_s=0.05)(data)

    err = Stderr()
    plan = BatchPlan(
        BatchSource(directory=tmp_path / "in"), output_file=out, concurrency=3, grace_s=0.3
    )
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught:
        run_batch(plan, sender_factory(send), stderr=err)
    assert caught.value.exit_code == 143
    assert calls == 3
    assert sorted(r["custom_id"] for r in read_results(out)) == ["req-000.json", "req-001.json"]
    assert "interrupted by SIGTERM: 1 request(s) still in flight were cancelled" in err.getvalue()
    assert signal.getsignal(signal.SIGTERM) == before  # the handlers are put back


def test_output_dir_may_not_be_the_input_dir(tmp_path: Path) -> None:
    """--output-dir equal to --dir would overwrite each request with its answer: refused
    before anything is sent, the requests untouched."""
    write_requests(tmp_path / "in", 2)
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    send = EchoSender()
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_dir=tmp_path / "in" / ".")
    with pytest.raises(UsageError, match="answers would overwrite requests"):
        _batch(plan, send, stdout=io.BytesIO())
    assert send.bodies == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before
