"""A model name that looks like a private key is refused under the name of where it came
from: a profile's `model` is named as that profile, not as GONKA_MODEL. Real processes;
nothing reaches the node."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.devnode.server import RunningNode
from tests import vectors as v

SECRET_MODEL = "ab" * 32  # 64 hex digits: key-shaped


@pytest.fixture(scope="module")
def node() -> Iterator[RunningNode]:
    with start_node(NodeConfig()) as running:
        yield running


def send(
    home: Path, node: RunningNode, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GONKA_HOME": str(home),
        "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX,
    }
    return subprocess.run(
        [sys.executable, "-m", "gonka_cli", "send-request", "--node-address", node.url, *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("prompt", [True, False], ids=["prompt", "body"])
def test_a_profile_model_is_refused_as_the_profile(
    prompt: bool, node: RunningNode, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    config.write_text(f'[profiles.m]\nmodel = "{SECRET_MODEL}"\n')
    body = tmp_path / "body.json"
    body.write_text('{"messages": [{"role": "user", "content": "hi"}]}')
    before = node.stats.received
    done = send(home, node, "--profile", "m", *(["hi"] if prompt else ["--file", str(body)]))
    assert done.returncode == 2, done.stderr
    assert f"error: profile 'm' ({config}): that model name looks like a private key" in (
        done.stderr
    )
    assert "GONKA_MODEL" not in done.stderr
    assert SECRET_MODEL not in done.stdout + done.stderr
    assert node.stats.received == before


def test_an_environment_model_is_still_named_gonka_model(node: RunningNode, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"messages": [{"role": "user", "content": "hi"}]}')
    done = send(tmp_path, node, "--file", str(body), env={"GONKA_MODEL": SECRET_MODEL})
    assert done.returncode == 2
    assert "error: $GONKA_MODEL: that model name looks like a private key" in done.stderr
    assert SECRET_MODEL not in done.stdout + done.stderr
