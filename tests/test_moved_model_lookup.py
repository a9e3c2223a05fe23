"""A prompt with no model to a gateway that moved: the model lookup (``GET /models``)
follows the move by the request's own rules, in a real `gonka send-request` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.devnode.server import RunningNode
from gonka_cli.endpoints import origin

API_KEY = "obk-test-key-0123456789"


@pytest.fixture(scope="module")
def new_gateway() -> Iterator[RunningNode]:
    with start_node(NodeConfig(mode="gateway", api_keys=(API_KEY,))) as node:
        yield node


@pytest.fixture(scope="module")
def old_gateway(new_gateway: RunningNode) -> Iterator[RunningNode]:
    config = NodeConfig(mode="gateway", api_keys=(API_KEY,), retired_to=new_gateway.base_url)
    with start_node(config) as node:
        yield node


def send_prompt(old: RunningNode, *flags: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GONKA_HOME": str(home),
        "GONKA_BROKER_API_KEY": API_KEY,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gonka_cli",
            "send-request",
            "--base-url",
            old.base_url,
            "hi",
            "--max-retries",
            "0",
            *flags,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_a_trusted_move_is_followed_for_the_model_too(
    old_gateway: RunningNode, new_gateway: RunningNode, tmp_path: Path
) -> None:
    """--follow-moved with --trust-origin: the model comes from the new place and the
    prompt is answered there."""
    before = new_gateway.stats.accepted
    trusted = origin(new_gateway.base_url)
    done = send_prompt(old_gateway, "--follow-moved", "--trust-origin", trusted, home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Echo: hi\n"
    assert "Traceback" not in done.stderr
    assert new_gateway.stats.accepted == before + 1


def test_an_untrusted_move_of_the_model_lookup_says_what_to_do(
    old_gateway: RunningNode, new_gateway: RunningNode, tmp_path: Path
) -> None:
    """Without --follow-moved, or to an origin not trusted: exit 4, nothing sent to the
    new place, and the hint names the flag that follows it and --model."""
    before = new_gateway.stats.received
    plain = send_prompt(old_gateway, home=tmp_path)
    assert plain.returncode == 4
    assert "--follow-moved" in plain.stderr
    assert "--model NAME" in plain.stderr
    untrusted = send_prompt(old_gateway, "--follow-moved", home=tmp_path)
    assert untrusted.returncode == 4
    assert f"--trust-origin {origin(new_gateway.base_url)}" in untrusted.stderr
    assert plain.stdout == untrusted.stdout == ""
    assert new_gateway.stats.received == before
