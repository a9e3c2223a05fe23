"""The issue's "done when" list, against the dev node over real HTTP."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gonka_cli.cli import app
from gonka_cli.devnode import NodeConfig, start_node
from tests import vectors as v

REPO = Path(__file__).resolve().parent.parent
REQUEST = str(REPO / "inference-requests" / "request_payload.json")
ANSWER = "Echo: What is the capital city of France?\n"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("GONKA_")]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GONKA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)


def test_fifty_sends_through_faults_all_succeed_without_replays() -> None:
    """3 participants, 30% faults, discovery: 50 sends succeed; no signature is ever replayed."""
    config = NodeConfig(participants=3, fault_rate=0.3, seed=7, slow_ms=20)
    with start_node(config) as node:
        results = [
            runner.invoke(
                app,
                [
                    "send-request",
                    "--source-url",
                    node.url,
                    "--file",
                    REQUEST,
                    "--max-retries",
                    "10",
                ],
            )
            for _ in range(50)
        ]
        stats = node.stats
    failed = [r.stderr for r in results if r.exit_code != 0]
    assert failed == []
    assert all(r.stdout == ANSWER for r in results)
    assert stats.replays_refused == 0
    assert stats.accepted >= 50
    assert sum(stats.faults.values()) > 0  # the faults really happened


@pytest.mark.parametrize("offset_s", [45.0, -45.0])
def test_skewed_node_clock_succeeds_after_one_warning(offset_s: float) -> None:
    """A node 45 s ahead (or behind) of us: the send succeeds, after one warning naming the fix."""
    with start_node(NodeConfig(clock_offset_s=offset_s)) as node:
        result = runner.invoke(app, ["send-request", "--node-address", node.url, "--file", REQUEST])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ANSWER
    assert result.stderr.count("warning:") == 1
    assert "clock is 4" in result.stderr
    assert "NTP" in result.stderr
