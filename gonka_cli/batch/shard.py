"""``--shard auto``: this runner's shard, read from the environment its CI engine sets.

Pure: the environment is handed in as a mapping, and the result says where it came from
so that the caller can tell the user. The engines and what they set:

===============  =========================  ================================  =======
engine           index                      count                             base
===============  =========================  ================================  =======
Kubernetes       ``JOB_COMPLETION_INDEX``   ``--shard-count`` or              0
(Indexed Job)                               ``GONKA_SHARD_COUNT``
GitLab CI        ``CI_NODE_INDEX``          ``CI_NODE_TOTAL``                 1
CircleCI         ``CIRCLE_NODE_INDEX``      ``CIRCLE_NODE_TOTAL``             0
Buildkite        ``BUILDKITE_PARALLEL_JOB`` ``BUILDKITE_PARALLEL_JOB_COUNT``  0
===============  =========================  ================================  =======

GitHub Actions has no index variable: its matrix passes ``--shard K/N`` itself.
None found, two engines that disagree, half a pair, or a value that is not a number in
range: a :class:`~gonka_cli.errors.UsageError` (exit 2), before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gonka_cli.batch.inputs import Shard, parse_shard
from gonka_cli.errors import UsageError

AUTO = "auto"
COUNT_ENV = "GONKA_SHARD_COUNT"


@dataclass(frozen=True)
class Engine:
    """A CI engine's pair of variables, and whether its index counts from 0 or 1."""

    name: str
    index_var: str
    count_var: str | None  # None: the count comes from --shard-count / GONKA_SHARD_COUNT
    base: int


ENGINES = (
    Engine("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", None, 0),
    Engine("GitLab CI", "CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
    Engine("CircleCI", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
    Engine("Buildkite", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
)


@dataclass(frozen=True)
class Found:
    """A shard read from one engine's variables, and the words that say so."""

    shard: Shard
    engine: str
    evidence: str

    def describe(self) -> str:
        """``shard 2/4 from GitLab CI (CI_NODE_INDEX=2, CI_NODE_TOTAL=4)``."""
        return f"shard {self.shard.index}/{self.shard.count} from {self.engine} ({self.evidence})"


def resolve_shard(
    text: str | None, count: int | None, environ: Mapping[str, str]
) -> tuple[Shard | None, str | None]:
    """The shard ``--shard TEXT`` (and ``--shard-count``) asks for, and a line for stderr
    when it was found in the environment (``auto``); ``(None, None)`` without --shard."""
    if text is None:
        if count is not None:
            raise UsageError("--shard-count goes with --shard auto")
        return None, None
    if text.strip().lower() != AUTO:
        if count is not None:
            raise UsageError("--shard-count goes with --shard auto, not --shard K/N")
        return parse_shard(text), None
    found = detect(environ, count=count if count is not None else _env_count(environ))
    return found.shard, found.describe()


def detect(environ: Mapping[str, str], *, count: int | None = None) -> Found:
    """The one shard the engines' variables in `environ` agree on; `count` is the
    explicit count (``--shard-count`` or ``GONKA_SHARD_COUNT``), needed by Kubernetes and
    checked against any other engine's."""
    found = [f for engine in ENGINES if (f := _read(engine, environ, count)) is not None]
    if not found:
        names = ", ".join(e.index_var for e in ENGINES)
        raise UsageError(
            f"--shard auto: no CI shard index in the environment (looked for {names})",
            hint="give --shard K/N (a GitHub Actions matrix passes it this way)",
        )
    first = found[0]
    for other in found[1:]:
        if other.shard != first.shard:
            raise UsageError(
                f"--shard auto: {first.describe()} but {other.describe()}",
                hint="unset the other engine's variables, or give --shard K/N",
            )
    if count is not None and first.shard.count != count:
        raise UsageError(f"--shard auto: {first.describe()}, but the shard count given is {count}")
    return first


def _read(engine: Engine, environ: Mapping[str, str], count: int | None) -> Found | None:
    raw_index = environ.get(engine.index_var, "").strip()
    raw_count = environ.get(engine.count_var, "").strip() if engine.count_var else ""
    if not raw_index:
        if raw_count:
            raise UsageError(f"--shard auto: {engine.count_var} is set but {engine.index_var} not")
        return None
    index = _number(engine.index_var, raw_index)
    evidence = f"{engine.index_var}={raw_index}"
    if engine.count_var is None:
        if count is None:
            raise UsageError(
                f"--shard auto: {engine.index_var} is set but the number of shards is not",
                hint=f"give --shard-count N or set {COUNT_ENV} (the Job's completions)",
            )
        total = count
        evidence += f", {total} shards"
    elif not raw_count:
        raise UsageError(f"--shard auto: {engine.index_var} is set but {engine.count_var} not")
    else:
        total = _number(engine.count_var, raw_count)
        evidence += f", {engine.count_var}={raw_count}"
    first, last = engine.base, engine.base + total - 1
    if total < 1 or not first <= index <= last:
        raise UsageError(
            f"--shard auto: {engine.index_var}={raw_index} is outside {first}..{last} "
            f"for {total} shard(s)"
        )
    return Found(Shard(index - engine.base + 1, total), engine.name, evidence)


def _number(name: str, raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise UsageError(f"--shard auto: {name}={raw!r} is not a whole number")
    return int(raw)


def _env_count(environ: Mapping[str, str]) -> int | None:
    raw = environ.get(COUNT_ENV, "").strip()
    if not raw:
        return None
    value = _number(COUNT_ENV, raw)
    if value < 1:
        raise UsageError(f"{COUNT_ENV}={raw!r}: the number of shards must be at least 1")
    return value
