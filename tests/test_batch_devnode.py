"""Batches through the real single-request client against the dev node (127.0.0.1 only)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gonka_cli.batch.inputs import Shard
from gonka_cli.batch.plan import BatchPlan, BatchSource, client_sender, run_batch
from gonka_cli.batch.results import read_results
from gonka_cli.batch.stats import BatchStats
from gonka_cli.devnode import NodeConfig, fault_sequence, start_node
from gonka_cli.endpoints import Endpoint
from gonka_cli.errors import PartialFailure
from gonka_cli.keys import SigningKey
from gonka_cli.settings import BearerAuth, RetryPolicy, SendConfig, SignedAuth

KEY = SigningKey.from_secret(hashlib.sha256(b"gonka-cli batch tests").digest())
API_KEY = "sk-batch-tests"


class Quiet(io.StringIO):
    """stderr for run_batch: not a terminal, kept for assertions."""

    def isatty(self) -> bool:
        return False


def write_bodies(directory: Path, count: int, *, stream_every: int = 2) -> list[str]:
    """`count` echo requests q-0000.json...; every `stream_every`-th one streams."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"q-{i:04d}.json"
        request = {
            "model": "echo",
            "messages": [{"role": "user", "content": f"question {i}"}],
            "max_tokens": 16,
            "stream": i % stream_every == 0,
        }
        (directory / name).write_text(json.dumps(request))
        names.append(name)
    return names


def answer(record: dict[str, Any]) -> str:
    """The assistant text of a results line."""
    return str(record["response"]["body"]["choices"][0]["message"]["content"])


def check_one_correct_line_each(out: Path, names: list[str]) -> list[dict[str, Any]]:
    """Every name has exactly one successful line, answering its own question."""
    records = read_results(out)
    assert sorted(r["custom_id"] for r in records) == sorted(names)
    for record in records:
        assert record["error"] is None, record["error"]
        number = int(record["custom_id"][2:6])
        assert answer(record) == f"Echo: question {number}"
    return records


def signed(node: Any, retries: int = 8) -> SendConfig:
    """Signed requests to every participant, discovered from participant 0."""
    return SendConfig(SignedAuth(KEY), source_url=node.url, retry=RetryPolicy(max_retries=retries))


def run(plan: BatchPlan, config: SendConfig) -> tuple[BatchStats, str]:
    """run_batch through the real client; the stats and what went to stderr."""
    err = Quiet()
    return run_batch(plan, client_sender(config), stderr=err), err.getvalue()


@pytest.fixture(scope="module")
def faulty_node() -> Iterator[Any]:
    """Three participants, a fifth of answers faulty (every kind; slow ones short)."""
    config = NodeConfig(participants=3, fault_rate=0.2, seed=11, slow_ms=150)
    with start_node(config) as node:
        yield node


def test_every_input_one_correct_line_despite_faults(faulty_node: Any, tmp_path: Path) -> None:
    """60 requests (half streamed) over 3 faulty TAs: one correct line each, no replay refused."""
    names = write_bodies(tmp_path / "in", 60)
    out = tmp_path / "r.jsonl"
    before = faulty_node.stats.snapshot()
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out, concurrency=8)
    stats, err = run(plan, signed(faulty_node))
    records = check_one_correct_line_each(out, names)
    after = faulty_node.stats.snapshot()
    assert after["replays_refused"] == before["replays_refused"] == 0
    assert after["received"] - before["received"] == 60 + stats.retries
    assert stats.retries > 0
    addresses = {p.address for p in faulty_node.participants}
    assert {r["x_gonka"]["transfer_address"] for r in records} == addresses
    assert all(r["x_gonka"]["inference_id"] == r["response"]["body"]["id"] for r in records)
    assert "succeeded  60" in err


def test_five_hundred_requests_all_succeed(tmp_path: Path) -> None:
    """The issue's bar: 500 requests, 3 TAs, fault rate 0.2 (every kind): all succeed, once each."""
    names = write_bodies(tmp_path / "in", 500)
    out = tmp_path / "r.jsonl"
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out, concurrency=16)
    with start_node(NodeConfig(participants=3, fault_rate=0.2, seed=3, slow_ms=150)) as node:
        stats, _ = run(plan, signed(node))
        assert node.stats.replays_refused == 0
    check_one_correct_line_each(out, names)
    assert stats.succeeded == 500


def test_a_cut_stream_is_resent(tmp_path: Path) -> None:
    """A stream cut off mid-answer is sent again: in a batch nothing of it was shown to anyone."""
    names = write_bodies(tmp_path / "in", 12, stream_every=1)
    out = tmp_path / "r.jsonl"
    plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out)
    with start_node(NodeConfig(participants=2, fault_rate=0.3, faults=("cut",), seed=1)) as node:
        stats, _ = run(plan, signed(node))
        assert node.stats.faults.get("cut", 0) > 0
    check_one_correct_line_each(out, names)
    assert stats.retries == node.stats.faults["cut"]


def test_a_malformed_file_fails_alone_and_is_never_sent(tmp_path: Path) -> None:
    """One bad file among good ones: its failed line, the others succeed, exit 8, not sent."""
    names = write_bodies(tmp_path / "in", 5)
    (tmp_path / "in" / "q-9999.json").write_text('{"model": "echo", "messages": [')
    out = tmp_path / "r.jsonl"
    with start_node(NodeConfig()) as node:
        with pytest.raises(PartialFailure):
            run(BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out), signed(node))
        assert node.stats.received == 5
    by_id = {r["custom_id"]: r for r in read_results(out)}
    assert by_id["q-9999.json"]["error"]["code"] == "invalid_input"
    assert "not valid JSON" in by_id["q-9999.json"]["error"]["message"]
    assert all(by_id[name]["error"] is None for name in names)


def test_shards_cover_every_input_once_against_the_node(tmp_path: Path) -> None:
    """--shard K/N for N = 1..3 and every K: each input is sent in exactly one shard."""
    names = write_bodies(tmp_path / "in", 24)
    with start_node(NodeConfig(participants=2)) as node:
        for n in (1, 2, 3):
            seen: list[str] = []
            for k in range(1, n + 1):
                out = tmp_path / f"{k}-of-{n}.jsonl"
                plan = BatchPlan(BatchSource(directory=tmp_path / "in"), Shard(k, n), out)
                run(plan, signed(node))
                seen += [r["custom_id"] for r in read_results(out)]
            assert sorted(seen) == names
        assert node.stats.accepted == 24 * 3


def test_openai_batch_jsonl_in_and_out(tmp_path: Path) -> None:
    """OpenAI Batch input lines come back as OpenAI Batch output lines, by custom_id."""
    lines = [
        {
            "custom_id": f"task-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": [{"role": "user", "content": f"t{i}"}]},
        }
        for i in range(6)
    ]
    jsonl = tmp_path / "batch-input.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "batch-output.jsonl"
    with start_node(NodeConfig()) as node:
        run(BatchPlan(BatchSource(jsonl=str(jsonl)), output_file=out), signed(node))
    records = read_results(out)
    assert {r["custom_id"]: answer(r) for r in records} == {
        f"task-{i}": f"Echo: t{i}" for i in range(6)
    }
    for record in records:
        assert set(record) == {"id", "custom_id", "response", "error", "x_gonka"}
        assert record["id"].startswith("batch_req_")
        assert record["response"]["status_code"] == 200
        assert record["response"]["body"]["object"] == "chat.completion"


def test_retry_after_pauses_every_worker(tmp_path: Path) -> None:
    """A gateway's 429 with Retry-After: 1 holds every new request for that second (bearer)."""
    assert fault_sequence(9, 0, 0.1, ("429",), 20).count("429") == 1
    names = write_bodies(tmp_path / "in", 20, stream_every=3)
    posts: list[tuple[float, str]] = []
    lock = threading.Lock()

    def log(line: str) -> None:
        with lock:
            posts.append((time.monotonic(), line))

    config = NodeConfig(
        mode="gateway", api_keys=(API_KEY,), fault_rate=0.1, faults=("429",), seed=9, log=log
    )
    out = tmp_path / "r.jsonl"
    with start_node(config) as node:
        send = SendConfig(BearerAuth(API_KEY), endpoints=(Endpoint(node.base_url),))
        plan = BatchPlan(BatchSource(directory=tmp_path / "in"), output_file=out, concurrency=4)
        stats, _ = run(plan, send)
    check_one_correct_line_each(out, names)
    (limited_at,) = [t for t, line in posts if "-> 429" in line]
    during = [line for t, line in posts if limited_at + 0.25 < t < limited_at + 0.95]
    assert during == []
    assert stats.wall_s >= 1.0
    assert stats.retries == 1
