"""``gonka node``: run the local transfer agent (or gateway, or retired node) until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from gonka_cli.devnode.defaults import (
    BACKLOG,
    DEFAULT_MODELS,
    DRAIN_S,
    FAULT_KINDS,
    GATEWAY_FAULT_KINDS,
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_S,
    LIMIT_CONCURRENCY,
)
from gonka_cli.errors import UsageError

if TYPE_CHECKING:
    from gonka_cli.devnode.server import RunningNode


class ModeChoice(StrEnum):
    """Which face of the network the node shows."""

    ta = "ta"
    gateway = "gateway"
    retired = "retired"


class NodeSchemeChoice(StrEnum):
    """Which signed-message layouts the node accepts."""

    hash = "hash"
    raw = "raw"
    both = "both"


_MODE_NAMES = {"ta": "transfer agent", "gateway": "gateway", "retired": "retired node (410)"}


def parse_faults(text: str) -> tuple[str, ...]:
    """``429,drop`` -> ("429", "drop"), each checked against the known kinds."""
    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    known = FAULT_KINDS + GATEWAY_FAULT_KINDS
    for kind in kinds:
        if kind not in known:
            raise UsageError(f"unknown fault {kind!r}; choose from {','.join(known)}")
    return kinds


class ParticipantsShape(StrEnum):
    """How the participants document is written."""

    chain = "chain"
    sdk = "sdk"


def allowlist_of(allow: list[str] | None, empty: bool) -> tuple[str, ...] | None:
    """--allow entries, () for --empty-allowlist, None (the node's own TAs) for neither."""
    if allow and empty:
        raise UsageError("--allow and --empty-allowlist contradict each other; pass one")
    if empty:
        return ()
    return tuple(allow) if allow else None


def _write_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def describe(node: RunningNode) -> list[str]:
    """The lines printed at start-up: where it listens, participants, keys, faults."""
    config = node.config
    count = len(node.participants)
    lines = [
        f"gonka node: {_MODE_NAMES[config.mode]}, {count} participant{'s' * (count != 1)}, "
        f"models {', '.join(config.models)}",
        f"  listening on {node.url}",
    ]
    if config.mode != "gateway":
        lines.append(
            f"  scheme {config.scheme}; discovery {node.url}/v1/epochs/current/participants"
        )
    lines += [f"  participant {p.index}: {p.url}  {p.address}" for p in node.participants]
    if config.mode == "gateway" and not config.api_keys:  # generated: the user needs to see it
        lines += [f"  api key: {key}" for key in node.api_keys]
    elif config.mode == "gateway":
        lines.append(f"  api keys: the {len(config.api_keys)} given with --api-key")
    if config.fault_rate > 0:
        lines.append(
            f"  faults: {config.fault_rate:.0%} of requests, {','.join(config.faults)} "
            f"(seed {config.seed})"
        )
    if config.upstream:
        lines.append(f"  answers from upstream {config.upstream}")
    if config.mode != "gateway":
        allowed = node.runtime.allowlist
        lines.append(
            f"  TA allowlist: {len(allowed)} address{'es' * (len(allowed) != 1)}"
            + (" (its own TAs)" if config.allowlist is None else "")
            + (" (empty: every TA allowed)" if not allowed else "")
        )
    lines.append("Press Ctrl-C to stop.")
    return lines


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_until_interrupted(start: Callable[[], RunningNode]) -> None:
    """Start the node, print where it listens, block until Ctrl-C or SIGTERM (or until
    the node dies), then stop it: the requests in flight are answered first (up to the
    drain time), and a second Ctrl-C or SIGTERM stops at once. The handlers go in first,
    so that a Ctrl-C right after "Press Ctrl-C to stop." is a clean stop too."""
    # Installed explicitly: a shell starts background jobs with SIGINT ignored.
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in signals}
    node: RunningNode | None = None
    idle = threading.Event()
    try:
        node = start()
        for line in describe(node):
            _write_stderr(line)
        while node.is_running():
            idle.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            _drain(node, signals)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drain(node: RunningNode, signals: tuple[signal.Signals, ...]) -> None:
    """Stop the node, letting requests in flight finish; a further signal forces it."""

    def force(signum: int, frame: FrameType | None) -> None:
        _write_stderr("gonka node: stopping now, without waiting for requests in flight")
        node.force_stop()

    for sig in signals:
        signal.signal(sig, force)
    if node.is_running() and node.runtime.transports:
        _write_stderr(
            "gonka node: stopping; answering the requests in flight first "
            f"(up to {node.config.limits.drain_s:g} s; Ctrl-C again to stop now)"
        )
    node.stop()


def node_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="Port of participant 0; the others take the next ones."
        ),
    ] = 8000,
    participants: Annotated[
        int, typer.Option("--participants", "-n", min=1, help="Transfer agents to run.")
    ] = 1,
    mode: Annotated[
        ModeChoice, typer.Option("--mode", help="ta, gateway (API keys) or retired (410).")
    ] = ModeChoice.ta,
    scheme: Annotated[
        NodeSchemeChoice,
        typer.Option("--scheme", help="Signed layout accepted: hash, raw or both."),
    ] = NodeSchemeChoice.hash,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Serve this model name (repeatable; replaces defaults)."
        ),
    ] = None,
    accounts: Annotated[
        Path | None,
        typer.Option("--accounts", metavar="FILE", help="Known accounts (JSON; see below)."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            metavar="ADDR",
            help="On-chain TA allowlist entry (repeatable; default: the node's own TAs).",
        ),
    ] = None,
    empty_allowlist: Annotated[
        bool,
        typer.Option("--empty-allowlist", help="Publish an empty TA allowlist (every TA allowed)."),
    ] = False,
    api_key: Annotated[
        list[str] | None,
        typer.Option("--api-key", metavar="KEY", help="Gateway key accepted (repeatable)."),
    ] = None,
    key_balance: Annotated[
        int | None,
        typer.Option("--key-balance", min=0, metavar="TOKENS", help="Gateway: tokens per key."),
    ] = None,
    retired_to: Annotated[
        str | None,
        typer.Option("--retired-to", metavar="URL", help="Gateway: answer 308 pointing here."),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option("--upstream", metavar="URL", help="Relay to this OpenAI-compatible /v1 URL."),
    ] = None,
    upstream_api_key: Annotated[
        str | None,
        typer.Option(
            "--upstream-api-key", envvar="GONKA_UPSTREAM_API_KEY", help="Bearer key for --upstream."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of keys and faults.")] = 0,
    fault_rate: Annotated[
        float, typer.Option("--fault-rate", min=0.0, max=1.0, help="Share of requests faulted.")
    ] = 0.0,
    faults: Annotated[
        str, typer.Option("--faults", metavar="LIST", help="Fault kinds, comma-separated.")
    ] = ",".join(FAULT_KINDS),
    fault_participant: Annotated[
        list[int] | None,
        typer.Option("--fault-participant", metavar="N", help="Only these participants fault."),
    ] = None,
    slow_ms: Annotated[
        int, typer.Option("--slow-ms", min=0, help="Delay of the 'slow' fault.")
    ] = 2000,
    tokens_per_second: Annotated[
        float, typer.Option("--tokens-per-second", min=0.0, help="Answer pace (0: instant).")
    ] = 0.0,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", min=0, help="Delay before the first byte.")
    ] = 0,
    clock_offset: Annotated[
        float, typer.Option("--clock-offset", metavar="SECONDS", help="Skew of the node's clock.")
    ] = 0.0,
    window_back: Annotated[
        float, typer.Option("--window-back", min=0.0, help="Oldest accepted timestamp, seconds.")
    ] = 60.0,
    window_ahead: Annotated[
        float, typer.Option("--window-ahead", min=0.0, help="Furthest future timestamp, seconds.")
    ] = 30.0,
    keep_alive: Annotated[
        float,
        typer.Option("--keep-alive", min=0.001, metavar="SECONDS", help="Idle keep-alive timeout."),
    ] = KEEP_ALIVE_S,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            min=0.001,
            metavar="SECONDS",
            help="Close a connection whose request head is not in by then.",
        ),
    ] = HEADER_TIMEOUT_S,
    limit_concurrency: Annotated[
        int,
        typer.Option(
            "--limit-concurrency", min=1, metavar="N", help="Beyond N connections: 503 at once."
        ),
    ] = LIMIT_CONCURRENCY,
    backlog: Annotated[
        int, typer.Option("--backlog", min=1, metavar="N", help="Listen queue per participant.")
    ] = BACKLOG,
    drain_timeout: Annotated[
        float,
        typer.Option(
            "--drain-timeout",
            min=0.0,
            metavar="SECONDS",
            help="On stop, time given to requests in flight.",
        ),
    ] = DRAIN_S,
    deprecation_headers: Annotated[
        bool | None,
        typer.Option(
            "--deprecation-headers/--no-deprecation-headers",
            help="Deprecation + edge-api Link on /v1 read answers (default: retired mode).",
            show_default=False,
        ),
    ] = None,
    participants_shape: Annotated[
        ParticipantsShape,
        typer.Option(
            "--participants-shape",
            help="chain, or sdk (numbers as strings, SDK-style proof block).",
        ),
    ] = ParticipantsShape.chain,
    retired_location: Annotated[
        bool,
        typer.Option("--retired-location", help="Gateway: the 308 also sends Location."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not log requests.")] = False,
) -> None:
    """Run a local Gonka transfer agent that checks signed requests as the network does.

    Checks run in the network's order; answers come from a deterministic echo model.
    Participants (and gateway API keys) are printed on stderr; Ctrl-C stops the node.

    Faults: 429, 500, 503, drop (closed unanswered), cut (cut mid-way), slow (--slow-ms);
    gateway mode also: seed (503 height_seed_incomplete; never a default).

    The TA allowlist lists the node's own TAs unless --allow or --empty-allowlist.
    Ctrl-C or SIGTERM answers the requests in flight first (--drain-timeout); again: at once.

    --accounts FILE is JSON: [{"address": "gonka1...", "pubkey": B64|null, "balance": N}]
    or {"accounts": [...], "price": N}. Unlisted: 500 "account not found"; null pubkey:
    500 "account has no public key"; balance < (prompt chars + max_tokens|5000) x price: 402.
    """
    from gonka_cli.devnode import start_node
    from gonka_cli.devnode.config import NodeConfig, ServerLimits

    config = NodeConfig(
        participants=participants,
        mode=mode.value,
        scheme=scheme.value,
        models=tuple(model) if model else DEFAULT_MODELS,
        accounts=accounts,
        allowlist=allowlist_of(allow, empty_allowlist),
        api_keys=tuple(api_key or ()),
        key_balance=key_balance,
        retired_to=retired_to,
        upstream=upstream,
        upstream_api_key=upstream_api_key,
        seed=seed,
        fault_rate=fault_rate,
        faults=parse_faults(faults),
        fault_participants=tuple(fault_participant) if fault_participant else None,
        slow_ms=slow_ms,
        tokens_per_second=tokens_per_second,
        latency_ms=latency_ms,
        clock_offset_s=clock_offset,
        window_back_s=window_back,
        window_ahead_s=window_ahead,
        host=host,
        port=port,
        log=None if quiet else _write_stderr,
        limits=ServerLimits(
            keep_alive_s=keep_alive,
            header_timeout_s=header_timeout,
            limit_concurrency=limit_concurrency,
            backlog=backlog,
            drain_s=drain_timeout,
        ),
        deprecation_headers=deprecation_headers,
        participants_shape=participants_shape.value,
        retired_location=retired_location,
    )
    serve_until_interrupted(lambda: start_node(config))
    _write_stderr("gonka node: stopped")
