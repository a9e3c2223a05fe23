"""Diagnostics: gonka endpoints, account, models and config show, against the dev node."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gonka_cli.cli import app
from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.devnode.server import RunningNode
from tests import vectors as v

REQUEST = str(
    Path(__file__).resolve().parent.parent / "inference-requests" / "request_payload.json"
)
API_KEY = "obk-diag-key-0123456789"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("GONKA_")]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GONKA_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def node() -> Iterator[RunningNode]:
    with start_node(NodeConfig(participants=3)) as running:
        yield running


def test_endpoints_table_and_json(node: RunningNode) -> None:
    """Every participant is listed with its URL, address, models, weight and status."""
    table = runner.invoke(app, ["endpoints", "--source-url", node.url])
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["URL", "ADDRESS", "MODELS", "WEIGHT", "STATUS"]
    for participant in node.participants:
        assert any(participant.address in line and "usable" in line for line in lines)
    listed = json.loads(
        runner.invoke(app, ["endpoints", "--source-url", node.url, "-o", "json"]).stdout
    )
    assert [p["address"] for p in listed] == [p.address for p in node.participants]
    assert all(p["usable"] for p in listed)


def test_endpoints_show_the_allowlist() -> None:
    """A non-empty TA allowlist marks the others as not allowed."""
    with start_node(NodeConfig(participants=2)) as first:
        allowed = first.participants[1].address
    with start_node(NodeConfig(participants=2, allowlist=(allowed,))) as running:
        result = runner.invoke(app, ["endpoints", "--source-url", running.url, "-o", "json"])
    listed = json.loads(result.stdout)
    assert [p["allowed"] for p in listed] == [False, True]
    assert [p["usable"] for p in listed] == [False, True]


def test_account_shows_pubkey_and_balance(
    node: RunningNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any request the key is unknown on chain (with a warning); after one it is there."""
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    fresh = runner.invoke(app, ["account", "--node-address", node.url, "-o", "json"])
    assert fresh.exit_code == 0, fresh.stderr
    assert json.loads(fresh.stdout)["address"] == v.PRIVATE_KEY_ADDRESS
    text = runner.invoke(app, ["account", v.PUBKEY_ADDRESS, "--node-address", node.url])
    assert "NOT on chain" in text.stdout
    assert "publish-pubkey" in text.stderr
    sent = runner.invoke(app, ["send-request", "--node-address", node.url, "--file", REQUEST])
    assert sent.exit_code == 0, sent.stderr
    after = runner.invoke(app, ["account", "--node-address", node.url, "-o", "json"])
    document = json.loads(after.stdout)
    assert document["has_pubkey"] is True
    assert document["pubkey"] == v.PRIVATE_KEY_PUBKEY_B64


def test_models_of_a_ta_and_of_a_gateway(
    node: RunningNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gonka models reads both the TA's and the gateway's /v1/models (with the API key)."""
    ta = json.loads(runner.invoke(app, ["models", "--base-url", node.url, "-o", "json"]).stdout)
    assert "Qwen/QwQ-32B" in [m["id"] for m in ta]
    with start_node(NodeConfig(mode="gateway", api_keys=(API_KEY,))) as gateway:
        monkeypatch.setenv("GONKA_BROKER_URL", gateway.url + "/v1")
        monkeypatch.setenv("GONKA_BROKER_API_KEY", API_KEY)
        result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["MODEL", "CONTEXT", "PRICING"]
    assert any(row.startswith("Qwen/QwQ-32B") for row in rows)


def test_config_show_names_sources_and_masks_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each value says where it came from; API and private keys never appear."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[profiles.work]\nmodel = "from-profile"\nmax_retries = 6\n')
    monkeypatch.setenv("GONKA_BROKER_API_KEY", API_KEY)
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)
    monkeypatch.setenv("GONKA_SOURCE_URL", "http://source:1")
    result = runner.invoke(app, ["config", "show", "--profile", "work", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)["settings"]
    assert shown["model"]["value"] == "from-profile"
    assert shown["model"]["source"].startswith("profile 'work'")
    assert shown["source_url"] == {"value": "http://source:1", "source": "$GONKA_SOURCE_URL"}
    assert shown["connect_timeout"]["source"] == "default"
    table = runner.invoke(app, ["config", "show", "--profile", "work"]).stdout
    for secret in (API_KEY, v.PRIVATE_KEY_HEX, v.PRIVATE_KEY_HEX[:16]):
        assert secret not in result.stdout
        assert secret not in table
    missing = runner.invoke(app, ["config", "show", "--profile", "nope"])
    assert missing.exit_code == 7
