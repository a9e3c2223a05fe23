"""pytest fixtures: a verifying Gonka dev node for your own tests (active once installed).

    def test_my_client(gonka_node):
        answer = my_client(gonka_node.endpoints, gonka_node.key).ask("Hi")
        assert answer == "Echo: Hi"

`gonka_node` is one fault-free transfer agent, started for the test and stopped after it;
`gonka_node_factory(participants=3, fault_rate=0.2, faults=("429", "drop"), mode="gateway",
latency_ms=50, ...)` starts nodes with any `gonka_cli.devnode.NodeConfig` fields (or a
whole `NodeConfig`), all stopped after the test. Each is a `GonkaNode`.

This module is loaded by every pytest run wherever gonka-cli is installed, so it imports
nothing heavy: the node (uvicorn, starlette) and the keys load inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gonka_cli.devnode import NodeConfig, NodeStats, RunningNode
    from gonka_cli.keys import SigningKey


@dataclass(frozen=True)
class GonkaNode:
    """A running dev node as a test sees it.

    `url` is participant 0 (also the discovery source: `source_url=gonka_node.url`),
    `base_url` its ``/v1`` base, `urls` and `addresses` every participant's, `endpoints`
    their ``"URL;ADDRESS"`` strings, `key` a ready signing key (the node accepts any key),
    `api_key` the Bearer key in gateway mode, `stats` the node's counters (``.received``,
    ``.accepted``, ``.replays_refused``, ``.by_status``, ``.faults``), `node` the
    `RunningNode` itself.
    """

    url: str
    base_url: str
    urls: list[str]
    addresses: list[str]
    endpoints: list[str]
    key: SigningKey
    api_key: str | None
    stats: NodeStats
    node: RunningNode

    @property
    def config(self) -> NodeConfig:
        """The configuration the node runs with."""
        return self.node.config


GonkaNodeFactory = Callable[..., GonkaNode]


def _describe(node: RunningNode, key: SigningKey) -> GonkaNode:
    participants = node.participants
    return GonkaNode(
        url=node.url,
        base_url=node.base_url,
        urls=[p.url for p in participants],
        addresses=[p.address for p in participants],
        endpoints=[f"{p.url};{p.address}" for p in participants],
        key=key,
        api_key=node.api_keys[0] if node.api_keys else None,
        stats=node.stats,
        node=node,
    )


@pytest.fixture
def gonka_node_factory() -> Iterator[GonkaNodeFactory]:
    """Start dev nodes with a `NodeConfig` or its fields; every one is stopped after the test."""
    from gonka_cli.devnode import NodeConfig, start_node
    from gonka_cli.keys import SigningKey

    started: list[RunningNode] = []

    def factory(config: NodeConfig | None = None, /, **fields: Any) -> GonkaNode:
        if config is not None and fields:
            raise TypeError("pass a NodeConfig or its fields, not both")
        node = start_node(config if config is not None else NodeConfig(**fields))
        started.append(node)
        return _describe(node, SigningKey.generate())

    try:
        yield factory
    finally:
        for node in reversed(started):
            node.stop()


@pytest.fixture
def gonka_node(gonka_node_factory: GonkaNodeFactory) -> GonkaNode:
    """One fault-free dev transfer agent on 127.0.0.1, started for this test."""
    return gonka_node_factory()
