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

from gonka_cli.devnode.defaults import DEFAULT_MODELS, FAULT_KINDS
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
    for kind in kinds:
        if kind not in FAULT_KINDS:
            raise UsageError(f"unknown fault {kind!r}; choose from {','.join(FAULT_KINDS)}")
    return kinds


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
    lines.append("Press Ctrl-C to stop.")
    return lines


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_until_interrupted(start: Callable[[], RunningNode]) -> None:
    """Start the node, print where it listens, block until Ctrl-C or SIGTERM (or until
    the node dies), then stop it. The handlers go in first, so that a Ctrl-C right after
    "Press Ctrl-C to stop." is a clean stop too."""
    # Installed explicitly: a shell starts background jobs with SIGINT ignored.
    previous = {
        sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)
    }
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
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if node is not None:
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
        typer.Option("--allow", metavar="ADDR", help="On-chain TA allowlist entry (repeatable)."),
    ] = None,
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not log requests.")] = False,
) -> None:
    """Run a local Gonka transfer agent that checks signed requests as the network does.

    Checks run in the network's order; answers come from a deterministic echo model.
    Participants (and gateway API keys) are printed on stderr; Ctrl-C stops the node.

    Faults: 429, 500, 503, drop (closed unanswered), cut (cut mid-way), slow (--slow-ms).

    --accounts FILE is JSON: [{"address": "gonka1...", "pubkey": B64|null, "balance": N}]
    or {"accounts": [...], "price": N}. Unlisted: 500 "account not found"; null pubkey:
    500 "account has no public key"; balance < (prompt chars + max_tokens|5000) x price: 402.
    """
    from gonka_cli.devnode import start_node
    from gonka_cli.devnode.config import NodeConfig

    config = NodeConfig(
        participants=participants,
        mode=mode.value,
        scheme=scheme.value,
        models=tuple(model) if model else DEFAULT_MODELS,
        accounts=accounts,
        allowlist=tuple(allow or ()),
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
    )
    serve_until_interrupted(lambda: start_node(config))
    _write_stderr("gonka node: stopped")
