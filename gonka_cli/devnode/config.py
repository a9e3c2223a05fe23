"""What a dev node is told to be: its configuration, accounts and participant keys (pure).

Nothing here starts a server or imports one, so the command line can build and check
a configuration without paying for uvicorn and starlette.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gonka_cli import jsontext
from gonka_cli.devnode.defaults import (  # re-exported: config users import them here
    BACKLOG,
    DEFAULT_MODELS,
    DRAIN_S,
    FAULT_KINDS,
    GATEWAY_FAULT_KINDS,
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_S,
    LIMIT_CONCURRENCY,
    MAX_PARTICIPANTS,
    MODES,
    PARTICIPANTS_SHAPES,
    SCHEMES,
)
from gonka_cli.errors import UsageError
from gonka_cli.keys import SigningKey, parse_address, parse_public_key
from gonka_cli.payloads import read_file

ACCOUNTS_FORMAT = """\
A JSON file: either a list of accounts or {"accounts": [...], "price": N}.
Each account is {"address": "gonka1...", "pubkey": "<base64 or hex, or null>",
"balance": <integer>}. An account that is not listed answers 500 "account not found",
one with a null pubkey 500 "account has no public key", and a request costing more than
the balance, (prompt characters + max_tokens, 5000 when absent) x price, answers 402.
price defaults to 1."""


@dataclass(frozen=True)
class Account:
    """A requester account the node knows: its address, public key (if published), balance."""

    address: str
    pubkey: bytes | None = None
    balance: int = 10**12


@dataclass(frozen=True)
class AccountBook:
    """The known accounts by address and the price per unit of a request."""

    accounts: Mapping[str, Account]
    price: int = 1


AccountsSource = str | Path | Sequence[Account] | AccountBook | None


@dataclass(frozen=True)
class ServerLimits:
    """What keeps a node standing under hostile or heavy load (all times in seconds).

    `keep_alive_s`: an idle keep-alive connection is closed after this long.
    `header_timeout_s`: a connection whose request head (request line and headers) is not
    complete this long after it opened, or after the first byte of a later request, is
    closed: slow-header ("slowloris") clients cannot pile up.
    `limit_concurrency`: beyond this many open connections or requests in progress, new
    requests are answered 503 at once.
    `backlog`: the listen queue of each participant's socket.
    `drain_s`: on stop (Ctrl-C, SIGTERM), requests in flight get this long to finish.
    """

    keep_alive_s: float = KEEP_ALIVE_S
    header_timeout_s: float = HEADER_TIMEOUT_S
    limit_concurrency: int = LIMIT_CONCURRENCY
    backlog: int = BACKLOG
    drain_s: float = DRAIN_S


@dataclass(frozen=True)
class NodeConfig:
    """Everything a dev node can be told; `NodeConfig()` is one instant, fault-free TA.

    The less obvious fields: `faults` are the kinds drawn from when a request faults
    (`FAULT_KINDS`), `fault_participants` limits faulting to those indexes (None: all),
    `slow_ms` is the delay of the "slow" fault, `tokens_per_second` 0 means no pacing,
    `accounts` a JSON file path or `Account` list (None: recover keys from signatures),
    `key_balance` the tokens each gateway key may spend (None: unlimited), `upstream` an
    OpenAI-compatible base URL (ending in /v1) that answers instead of the echo model,
    `port` the port of participant 0 (the others take the next ones; 0: free ports), and
    `log` a callable that receives one line per chat request.

    `allowlist` is the on-chain TA allowlist the node publishes: None (the default) lists
    the node's own participants, as the chain does when the allowlist is set; () publishes
    an empty list (every TA allowed, which the official SDK mishandles).

    Holding up under load (see `ServerLimits`): `limits` sets uvicorn's keep-alive,
    header-read deadline, concurrency limit, listen backlog and how long a stop waits for
    requests in flight.

    Network drift (after July 2026): `deprecation_headers` adds ``Deprecation: true`` and
    an edge-api ``Link`` to 200 answers of the /v1 read routes (None: in retired mode only),
    `participants_shape` "sdk" writes participants documents with numbers as strings and
    an SDK-style proof block, and `retired_location` adds a ``Location`` header to a
    retired gateway's 308.
    """

    participants: int = 1
    mode: str = "ta"
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
    latency_ms: int = 0
    tokens_per_second: float = 0
    clock_offset_s: float = 0.0
    window_back_s: float = 60
    window_ahead_s: float = 30
    scheme: str = "hash"
    accounts: AccountsSource = None
    allowlist: tuple[str, ...] | None = None
    api_keys: tuple[str, ...] = ()
    key_balance: int | None = None
    retired_to: str | None = None
    upstream: str | None = None
    upstream_api_key: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    fault_participants: tuple[int, ...] | None = None
    slow_ms: int = 2000
    log: Callable[[str], None] | None = field(default=None, compare=False)
    limits: ServerLimits = field(default_factory=ServerLimits)
    deprecation_headers: bool | None = None
    participants_shape: str = "chain"
    retired_location: bool = False

    def __post_init__(self) -> None:
        check_config(self)


def check_config(config: NodeConfig) -> None:
    """Raise `UsageError` for a configuration no node could run with."""
    _check_choices(config)
    _check_numbers(config)
    for address in config.allowlist or ():
        parse_address(address)
    if config.mode == "gateway" and any(not key.strip() for key in config.api_keys):
        raise UsageError("an API key may not be empty")


def _check_choices(config: NodeConfig) -> None:
    if config.mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}; got {config.mode!r}")
    if config.scheme not in SCHEMES:
        raise UsageError(f"scheme must be one of {', '.join(SCHEMES)}; got {config.scheme!r}")
    known = FAULT_KINDS + GATEWAY_FAULT_KINDS
    unknown = [kind for kind in config.faults if kind not in known]
    if unknown:
        raise UsageError(f"unknown fault kind {unknown[0]!r}; choose from {', '.join(known)}")
    gateway_only = [kind for kind in config.faults if kind in GATEWAY_FAULT_KINDS]
    if gateway_only and config.mode != "gateway":
        raise UsageError(f"fault {gateway_only[0]!r} is a gateway fault: add --mode gateway")
    if config.participants_shape not in PARTICIPANTS_SHAPES:
        raise UsageError(
            f"participants shape must be one of {', '.join(PARTICIPANTS_SHAPES)}; "
            f"got {config.participants_shape!r}"
        )
    if not config.models or any(not model.strip() for model in config.models):
        raise UsageError("at least one model name is needed, and none may be empty")
    for url in (config.upstream, config.retired_to):
        if url is not None and not url.startswith(("http://", "https://")):
            raise UsageError(f"{url!r} is not an http(s) URL")


def _check_numbers(config: NodeConfig) -> None:
    if not 1 <= config.participants <= MAX_PARTICIPANTS:
        raise UsageError(f"participants must be between 1 and {MAX_PARTICIPANTS}")
    if not 0.0 <= config.fault_rate <= 1.0 or math.isnan(config.fault_rate):
        raise UsageError("fault rate must be between 0 and 1")
    if config.fault_rate > 0 and not config.faults:
        raise UsageError("a fault rate above 0 needs at least one fault kind")
    if not 0 <= config.port <= 65535 - config.participants + 1:
        raise UsageError(
            f"port {config.port} leaves no room for {config.participants} participants"
        )
    negatives = {
        "latency": config.latency_ms,
        "tokens per second": config.tokens_per_second,
        "window back": config.window_back_s,
        "window ahead": config.window_ahead_s,
        "slow delay": config.slow_ms,
    }
    for name, value in negatives.items():
        if value < 0:
            raise UsageError(f"{name} may not be negative")
    _check_limits(config.limits)
    if config.key_balance is not None and config.key_balance < 0:
        raise UsageError("key balance may not be negative")
    for index in config.fault_participants or ():
        if not 0 <= index < config.participants:
            raise UsageError(
                f"fault participant {index} is not one of 0..{config.participants - 1}"
            )


def _check_limits(limits: ServerLimits) -> None:
    times = {"keep-alive": limits.keep_alive_s, "header timeout": limits.header_timeout_s}
    for name, value in times.items():
        if not 0 < value < math.inf:
            raise UsageError(f"{name} must be a positive number of seconds")
    if not 0 <= limits.drain_s < math.inf:
        raise UsageError("drain timeout must be 0 or more seconds")
    if limits.limit_concurrency < 1 or limits.backlog < 1:
        raise UsageError("the concurrency limit and the backlog must be at least 1")


def participant_key(seed: int, index: int) -> SigningKey:
    """The deterministic key of participant `index` of a node started with `seed`.

    Dev-node keys are public knowledge by construction (anyone can derive them), which is
    what makes addresses stable across runs; they must never hold funds.
    """
    secret = hashlib.sha256(f"gonka-cli devnode participant {index} seed {seed}".encode()).digest()
    return SigningKey.from_secret(secret)


def resolve_accounts(source: AccountsSource) -> AccountBook | None:
    """The accounts a node checks requesters against, or None to trust recovered keys."""
    if source is None or isinstance(source, AccountBook):
        return source
    if isinstance(source, str | Path):
        return load_accounts(Path(source))
    return AccountBook({account.address: account for account in source})


def load_accounts(path: Path) -> AccountBook:
    """Read an accounts file (format: `ACCOUNTS_FORMAT`)."""
    try:
        document = jsontext.loads(read_file(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from exc
    return parse_accounts(document, str(path))


def parse_accounts(document: Any, source: str = "accounts") -> AccountBook:
    """Accounts from a parsed JSON document (format: `ACCOUNTS_FORMAT`)."""
    price: Any = 1
    entries = document
    if isinstance(document, dict):
        entries, price = document.get("accounts"), document.get("price", 1)
    if not isinstance(entries, list):
        raise UsageError(f'{source}: expected a list of accounts or {{"accounts": [...]}}')
    if not isinstance(price, int) or isinstance(price, bool) or price < 0:
        raise UsageError(f"{source}: price must be a non-negative integer")
    accounts = [_parse_account(entry, f"{source}: account {n}") for n, entry in enumerate(entries)]
    return AccountBook({account.address: account for account in accounts}, price)


def _parse_account(entry: Any, where: str) -> Account:
    if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
        raise UsageError(f'{where}: expected an object with an "address"')
    try:
        address = parse_address(entry["address"])
        pubkey = entry.get("pubkey")
        key = parse_public_key(pubkey) if isinstance(pubkey, str) and pubkey else None
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.message}") from exc
    balance = entry.get("balance", Account.balance)
    if not isinstance(balance, int) or isinstance(balance, bool):
        raise UsageError(f"{where}: balance must be an integer")
    return Account(address, key, balance)
