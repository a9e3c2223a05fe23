"""The live state shared by a node's participants inside its event loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gonka_cli.devnode.config import AccountBook, NodeConfig
from gonka_cli.devnode.faults import FaultPlan
from gonka_cli.devnode.state import NodeStats, Participant, RecentRecords, ReplayGuard
from gonka_cli.keys import SigningKey
from gonka_cli.signing import Scheme

if TYPE_CHECKING:
    import httpx2

# (server address, client address) of a connection -> its transport, so that a fault
# can close the connection without an answer, which ASGI itself cannot express.
TransportKey = tuple[Any, Any]
GENESIS_HEIGHT = 1000
BLOCK_SECONDS = 5
ESCROW_BASE = 100


@dataclass
class ParticipantState:
    """One participant: its public face, key, fault plan and request counter."""

    info: Participant
    key: SigningKey
    faults: FaultPlan
    nonce: int = 0

    @property
    def escrow(self) -> int:
        """The devshard escrow id this participant serves as in gateway mode."""
        return ESCROW_BASE + self.info.index


@dataclass
class NodeRuntime:
    """Everything the request handlers of all participants share."""

    config: NodeConfig
    accounts: AccountBook | None
    stats: NodeStats
    participants: list[ParticipantState]
    api_keys: tuple[str, ...]
    key_balances: dict[str, int | None] = field(default_factory=dict)
    replays: ReplayGuard = field(init=False)
    records: RecentRecords = field(default_factory=RecentRecords)
    pubkeys: dict[str, bytes] = field(default_factory=dict)
    transports: dict[TransportKey, asyncio.Transport] = field(default_factory=dict)
    upstream: httpx2.AsyncClient | None = None
    started_s: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        horizon = int((self.config.window_back_s + self.config.window_ahead_s) * 1e9)
        self.replays = ReplayGuard(horizon)
        self.key_balances = {key: self.config.key_balance for key in self.api_keys}

    @property
    def discovery_url(self) -> str:
        """Where discovery is served: participant 0."""
        return self.participants[0].info.url

    @property
    def allowlist(self) -> tuple[str, ...]:
        """The TA allowlist the chain publishes: the configured one, by default every
        participant of this node."""
        if self.config.allowlist is not None:
            return self.config.allowlist
        return tuple(state.info.address for state in self.participants)

    @property
    def schemes(self) -> tuple[Scheme, ...]:
        """The signed-message layouts this node accepts, in the order it tries them."""
        if self.config.scheme == "both":
            return (Scheme.HASH, Scheme.RAW)
        return (Scheme(self.config.scheme),)

    def now_ns(self) -> int:
        """The node's "latest block time": its clock plus the configured offset."""
        return time.time_ns() + int(self.config.clock_offset_s * 1e9)

    def block_height(self) -> int:
        """A block height that grows with the node's uptime."""
        return GENESIS_HEIGHT + int(time.time() - self.started_s) // BLOCK_SECONDS

    def log(self, line: str) -> None:
        """Hand a request log line to the configured logger, if any."""
        if self.config.log is not None:
            self.config.log(line)
