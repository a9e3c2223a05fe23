"""Seeded, reproducible fault injection, one independent plan per participant (pure).

Each participant draws from its own ``random.Random`` seeded with (seed, participant
index), two numbers per request whether or not it faults, so the sequence of decisions
depends only on the seed and on how many requests that participant has been asked to
fault-check.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# Faults that answer instead of the model; the signature is not consumed by them.
ERROR_FAULTS = frozenset({"429", "500", "503", "drop", "seed"})


class FaultPlan:
    """The fault decisions of one participant, in order."""

    def __init__(
        self, seed: int, index: int, rate: float, kinds: Sequence[str], *, enabled: bool = True
    ) -> None:
        # Reproducible test behaviour, not security: a plain PRNG is what is wanted.
        self._rng = random.Random(f"gonka devnode faults {seed} {index}")  # noqa: S311
        self._rate = rate if enabled else 0.0
        self._kinds = tuple(kinds)

    def next(self) -> str | None:
        """The fault for the next request (None: serve it normally)."""
        roll = self._rng.random()
        pick = self._rng.randrange(len(self._kinds)) if self._kinds else 0
        return self._kinds[pick] if roll < self._rate else None


def fault_sequence(
    seed: int, index: int, rate: float, kinds: Sequence[str], count: int
) -> list[str | None]:
    """The first `count` decisions a participant will make (to predict them in tests)."""
    plan = FaultPlan(seed, index, rate, kinds)
    return [plan.next() for _ in range(count)]
