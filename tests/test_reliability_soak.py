"""Fault soak: batches through `gonka send-request` against dev nodes that fail on purpose.

Every fault kind at a 20 % rate, the default retry budget (``--max-retries`` 5), signed
(three TAs found by discovery) and bearer (a gateway): every input must end with exactly
one successful result line, the node must never see a signature twice, and the node's own
counters must add up to what the results file says. A request fails only if all six of
its attempts fault, about (0.2 x 5/6)^6 = 2e-5 per request: the 225 requests here make
that a roughly 0.5 % chance per run, the price of soaking with the default budget.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gonka_cli.cli import app
from gonka_cli.devnode import FAULT_KINDS, NodeConfig, fault_sequence, start_node
from tests.test_batch_devnode import KEY, check_one_correct_line_each, write_bodies

RATE = 0.2
SLOW_MS = 60  # the "slow" fault: late enough to notice, short enough for CI
SIGNED_SEEDS = (101, 202, 303)
SIGNED_REQUESTS = 60
GATEWAY_REQUESTS = 45
GATEWAY_SEED = 8  # its plan holds every fault kind within the first 45 requests
API_KEY = "sk-reliability-soak-0123456789"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("GONKA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GONKA_HOME", str(tmp_path / "home"))


def send(*args: str, env: dict[str, str]) -> Result:
    """`gonka send-request ARGS -q` in-process, with the default retry budget."""
    return runner.invoke(app, ["send-request", *args, "-q"], env=env)


def summary_retries(stderr: str) -> int:
    """The retry count of the batch summary on stderr."""
    found = re.search(r"^\s*retries\s+(\d+)", stderr, re.MULTILINE)
    assert found is not None, stderr
    return int(found.group(1))


def whole_lines(out: Path) -> list[dict[str, Any]]:
    """Every line of the results file; each must be whole and parse on its own."""
    data = out.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def planned_faults(seed: int, received: list[int]) -> Counter[str]:
    """The faults the node's seeded plans make for these per-participant request counts."""
    planned: Counter[str] = Counter()
    for index, count in enumerate(received):
        planned.update(k for k in fault_sequence(seed, index, RATE, FAULT_KINDS, count) if k)
    return planned


def soak_signed(seed: int, inputs: Path, out: Path) -> tuple[Result, dict[str, Any], list[int]]:
    """One batch to three faulty TAs found by discovery; the CLI result and node counters."""
    config = NodeConfig(
        participants=3, fault_rate=RATE, faults=FAULT_KINDS, seed=seed, slow_ms=SLOW_MS
    )
    with start_node(config) as node:
        args = ["--source-url", node.url, "--dir", str(inputs), "--output-file", str(out)]
        result = send(*args, env={"GONKA_PRIVATE_KEY": KEY.to_hex()})
        received = [p.stats.received for p in node.participants]
        return result, node.stats.snapshot(), received


def test_signed_batches_survive_every_fault_kind_with_the_default_budget(tmp_path: Path) -> None:
    """Three seeds of 60 requests (half streamed) over 3 TAs at 20 % faults of every kind:
    exit 0, one correct line per input, no replay refused, and the node's counters (faults
    as its seeded plan says, POSTs = attempts, served = inputs + cut streams) agree."""
    names = write_bodies(tmp_path / "in", SIGNED_REQUESTS)
    injected: Counter[str] = Counter()
    for seed in SIGNED_SEEDS:
        out = tmp_path / f"results-{seed}.jsonl"
        result, stats, received = soak_signed(seed, tmp_path / "in", out)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ""
        records = whole_lines(out)
        assert len(records) == SIGNED_REQUESTS
        check_one_correct_line_each(out, names)
        attempts = [r["x_gonka"]["attempts"] for r in records]
        assert max(attempts) <= 6  # --max-retries 5 by default
        assert stats["replays_refused"] == 0
        assert stats["faults"] == dict(planned_faults(seed, received))
        assert stats["received"] == sum(received) == sum(attempts)
        assert sum(attempts) == SIGNED_REQUESTS + summary_retries(result.stderr)
        assert stats["accepted"] == SIGNED_REQUESTS + stats["faults"].get("cut", 0)
        # Failover spreads the answers over the TAs; which ones serve depends on timing
        # (a 429's Retry-After can keep one out of a short batch), so at least two.
        assert len({r["x_gonka"]["transfer_address"] for r in records}) >= 2
        injected.update(stats["faults"])
    assert set(injected) == set(FAULT_KINDS)


def test_bearer_batch_through_a_faulty_gateway(tmp_path: Path) -> None:
    """OpenAI Batch lines through a gateway at 20 % faults of every kind, API key from the
    environment: one successful line per custom_id, every fault kind injected as planned."""
    lines = [
        {
            "custom_id": f"task-{i:03d}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "echo",
                "messages": [{"role": "user", "content": f"question {i}"}],
                "max_tokens": 8,
                "stream": i % 2 == 0,
            },
        }
        for i in range(GATEWAY_REQUESTS)
    ]
    first = fault_sequence(GATEWAY_SEED, 0, RATE, FAULT_KINDS, GATEWAY_REQUESTS)
    assert set(first) - {None} == set(FAULT_KINDS)  # so every kind is sure to be injected
    jsonl = tmp_path / "batch.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "results.jsonl"
    config = NodeConfig(
        mode="gateway", api_keys=(API_KEY,), fault_rate=RATE, seed=GATEWAY_SEED, slow_ms=SLOW_MS
    )
    with start_node(config) as node:
        args = ["--auth", "bearer", "--base-url", node.base_url, "--jsonl", str(jsonl)]
        result = send(*args, "--output-file", str(out), env={"GONKA_BROKER_API_KEY": API_KEY})
        stats = node.stats.snapshot()
    assert result.exit_code == 0, result.stderr
    records = whole_lines(out)
    assert sorted(r["custom_id"] for r in records) == [line["custom_id"] for line in lines]
    for record in records:
        assert record["error"] is None
        number = int(record["custom_id"].removeprefix("task-"))
        content = record["response"]["body"]["choices"][0]["message"]["content"]
        assert content == f"Echo: question {number}"
    received = int(str(stats["received"]))
    assert stats["faults"] == dict(planned_faults(GATEWAY_SEED, [received]))
    assert set(stats["faults"]) == set(FAULT_KINDS)
    assert received == sum(r["x_gonka"]["attempts"] for r in records)
