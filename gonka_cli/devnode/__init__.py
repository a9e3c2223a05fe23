"""A local Gonka transfer agent (and gateway, and retired node) for tests and development.

    from gonka_cli.devnode import NodeConfig, start_node

    with start_node(NodeConfig(participants=3)) as node:
        node.url                 # participant 0, also the discovery source
        node.participants        # each with .url and .address
        node.stats               # .received, .accepted, .replays_refused, .by_status

Importing this package is cheap: uvicorn and starlette are loaded by `start_node`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gonka_cli.devnode.config import (
        ACCOUNTS_FORMAT,
        Account,
        AccountBook,
        NodeConfig,
        ServerLimits,
        parse_accounts,
        participant_key,
    )
    from gonka_cli.devnode.defaults import DEFAULT_MODELS, FAULT_KINDS
    from gonka_cli.devnode.faults import fault_sequence
    from gonka_cli.devnode.server import RunningNode
    from gonka_cli.devnode.state import NodeStats, Participant

# Where each public name lives; loaded on first use (PEP 562), so that importing a
# submodule such as `gonka_cli.devnode.defaults` costs nothing more.
_HOMES = {
    "ACCOUNTS_FORMAT": "config",
    "DEFAULT_MODELS": "defaults",
    "FAULT_KINDS": "defaults",
    "Account": "config",
    "AccountBook": "config",
    "NodeConfig": "config",
    "ServerLimits": "config",
    "parse_accounts": "config",
    "participant_key": "config",
    "fault_sequence": "faults",
    "RunningNode": "server",
    "NodeStats": "state",
    "Participant": "state",
}

__all__ = [
    "ACCOUNTS_FORMAT",
    "DEFAULT_MODELS",
    "FAULT_KINDS",
    "Account",
    "AccountBook",
    "NodeConfig",
    "NodeStats",
    "Participant",
    "RunningNode",
    "ServerLimits",
    "fault_sequence",
    "parse_accounts",
    "participant_key",
    "start_node",
]


def start_node(config: NodeConfig | None = None) -> RunningNode:
    """Start a dev node in a background thread; use it as a context manager to stop it."""
    from gonka_cli.devnode.server import start_node as start

    return start(config)


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"gonka_cli.devnode.{home}"), name)
