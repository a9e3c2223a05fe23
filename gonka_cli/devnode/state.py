"""What a running dev node remembers: counters, used signatures, its participants."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class NodeStats:
    """Counters of chat-completion POSTs, readable from another thread.

    `received` counts every POST to the chat route; `by_status` the status of each
    answer that was sent (a dropped connection has none and counts only in `faults`);
    `accepted` the requests served by the model (a signature consumed, or a gateway
    request billed); `faults` the injected faults by kind.
    """

    received: int = 0
    accepted: int = 0
    replays_refused: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def count_received(self) -> None:
        """One more POST arrived."""
        with self._lock:
            self.received += 1

    def count_answer(
        self,
        status: int | None,
        *,
        accepted: bool = False,
        replay: bool = False,
        fault: str | None = None,
    ) -> None:
        """Record how one POST was answered."""
        with self._lock:
            if status is not None:
                self.by_status[status] = self.by_status.get(status, 0) + 1
            self.accepted += accepted
            self.replays_refused += replay
            if fault is not None:
                self.faults[fault] = self.faults.get(fault, 0) + 1

    def snapshot(self) -> dict[str, object]:
        """A consistent copy of every counter."""
        with self._lock:
            return {
                "received": self.received,
                "accepted": self.accepted,
                "replays_refused": self.replays_refused,
                "by_status": dict(self.by_status),
                "faults": dict(self.faults),
            }


@dataclass(frozen=True)
class Participant:
    """One transfer agent of the node: where it listens and the address it signs as."""

    index: int
    url: str
    address: str
    public_key: str
    stats: NodeStats = field(compare=False, repr=False)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``url + "/v1"``)."""
        return self.url + "/v1"


class ReplayGuard:
    """Signatures already used for a transfer, forgotten once too old to verify anyway."""

    def __init__(self, horizon_ns: int) -> None:
        self._used: dict[bytes, int] = {}
        self._horizon_ns = horizon_ns
        self._prune_at = 4096

    def seen(self, signature: bytes) -> bool:
        """Whether this signature (its 64 raw bytes) was used before."""
        return signature in self._used

    def mark(self, signature: bytes, timestamp_ns: int, now_ns: int) -> None:
        """Remember a used signature; drop the ones whose timestamp left the window."""
        self._used[signature] = timestamp_ns
        if len(self._used) > self._prune_at:
            oldest = now_ns - self._horizon_ns
            self._used = {sig: ts for sig, ts in self._used.items() if ts >= oldest}
            # Next prune when the store has doubled: amortised O(1) per request even when
            # every stored signature is still inside the window.
            self._prune_at = max(4096, 2 * len(self._used))


class RecentRecords(dict[str, dict[str, Any]]):
    """The records of the latest inferences (``GET ...?id=``), the oldest forgotten first,
    so that a long-running node's memory stays bounded."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        super().__setitem__(key, value)
        while len(self) > self.limit:
            del self[next(iter(self))]
