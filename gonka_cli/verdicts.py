"""What an HTTP error answer means for the next step: retry, fail over, re-sign, or stop.

`judge` is pure: a status, the server's message and the headers in; a `Verdict` out,
whose error already carries the exit code (4 for 4xx, 5 for 5xx and 429) and the hint
that fixes the problem. `measure_offset_ns` reads the node's clock for skew correction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gonka_cli.endpoints import parse_time_ns
from gonka_cli.errors import GonkaError, HTTPClientError
from gonka_cli.transport import (
    BROKER_HINT,
    CLOCK_HINT,
    http_error,
    json_body,
    retry_after,
    server_time_ns,
)

if TYPE_CHECKING:
    import httpx2

    from gonka_cli.endpoints import Endpoint
    from gonka_cli.settings import Timeouts

SKEW_MESSAGES = ("signature is too old", "signature is in the future")
NO_ACCOUNT = ("account not found", "has no public key")
TA_HINT = (
    "this is a transfer agent: it takes signed requests, not an API key. Sign instead: "
    "drop the API key (or pass --auth signature) and give a key (--key NAME, "
    "GONKA_PRIVATE_KEY, or `gonka keys add`)"
)
GATEWAY_HINT = (
    "this is a broker or gateway: it takes an API key, not a signature. Pass --auth bearer "
    "with GONKA_BROKER_API_KEY (or --api-key-file), and the base URL as --base-url"
)
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
MIN_SKEW_NS = 1_000_000_000
WARN_SKEW_NS = 10_000_000_000  # well inside the network's window, far beyond Date's precision


@dataclass
class Verdict:
    """The error to raise if we stop, and what to do instead of stopping."""

    error: GonkaError
    retry: bool = False
    failover: bool = False
    wait: float | None = None
    skew: bool = False
    moved_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def judge(
    status: int,
    message: str,
    headers: Mapping[str, str],
    *,
    url: str,
    bearer: bool,
    body: str = "",
) -> Verdict:
    """Decide what an error answer means (docs/protocol.md sections 4 and 10)."""
    lowered = message.lower()
    wrong_way = wrong_way_in(status, lowered, bearer, body)
    if wrong_way:  # the same request would fail the same way everywhere: no retry
        return Verdict(http_error(status, message, url, hint=wrong_way, body=body), headers=headers)
    hint = _hint(status, lowered, bearer, headers)
    if 300 <= status < 400:
        return _moved(status, message, headers, url, body)
    error = http_error(status, message, url, hint=hint, body=body)
    if status == 400 and any(text in lowered for text in SKEW_MESSAGES):
        return Verdict(error, skew=True, headers=headers)
    if status == 500 and any(text in lowered for text in NO_ACCOUNT):
        return Verdict(error)
    if status in RETRY_STATUSES:
        wait = retry_after(headers) if status in (429, 503) else None
        return Verdict(error, retry=True, failover=True, wait=wait, headers=headers)
    return Verdict(error, headers=headers)


def wrong_way_in(status: int, message: str, bearer: bool, body: str) -> str | None:
    """The hint when the answer shows a signed request went to a gateway, or a Bearer
    request to a transfer agent (`message` lower-cased); None otherwise.

    A TA answers errors as ``{"error": "text"}``; a gateway in OpenAI's envelope
    ``{"error": {"message": ...}}``. A Bearer request carries no requester address, so a
    TA fails it looking that address up (500 "empty address string is not allowed").
    """
    error = json_body(body.encode()).get("error")
    if bearer:
        no_requester = status == 500 and "address" in message and (
            "empty" in message or "invalid" in message
        )
        refused = status == 401 and isinstance(error, str) and "pubkey" in message
        return TA_HINT if no_requester or refused else None
    gateway_shaped = isinstance(error, dict)
    if gateway_shaped and (status == 401 or (status == 404 and "model" not in message)):
        return GATEWAY_HINT
    return None


def _moved(status: int, message: str, headers: Mapping[str, str], url: str, body: str) -> Verdict:
    """A gateway's 308 with ``new_url`` in its JSON (and no Location), or a plain redirect."""
    from gonka_cli.transport import json_body

    new_url = json_body(body.encode()).get("new_url") or headers.get("location")
    if not isinstance(new_url, str) or not new_url:
        return Verdict(http_error(status, message, url, body=body))
    error = HTTPClientError(
        f"HTTP {status} from {url}: moved to {new_url} ({message})",
        status_code=status,
        hint=f"send to the new URL (--base-url {new_url}, or GONKA_BROKER_URL), "
        "or pass --follow-moved to follow it",
        body=body,
    )
    return Verdict(error, moved_to=new_url, headers=headers)


def _hint(status: int, message: str, bearer: bool, headers: Mapping[str, str]) -> str | None:
    """The fix for an error, by status and the server's message."""
    if status == 410:
        if not bearer:
            return BROKER_HINT
        if "deprecat" in message or "deprecation" in headers:
            return (
                "this URL is a Gonka node whose signed inference is retired (v0.2.14), not a "
                "gateway: point --base-url or GONKA_BROKER_URL at your broker's or gateway's /v1"
            )
        return "this base URL is gone; ask the broker for its current URL"
    if status in (401, 402, 403):
        return _access_hint(status, message, bearer)
    if status == 404:
        return (
            "see the models this endpoint serves: gonka models --base-url URL"
            if "model" in message
            else "check the URL: it should be the base URL ending in /v1"
        )
    if status == 400:
        return _bad_request_hint(message)
    if status == 429:
        return (
            "the broker is rate-limiting this key: wait and retry, or raise --max-retries"
            if bearer
            else "every transfer agent tried is busy: retry later, raise --max-retries, "
            "or add endpoints (--source-url finds them all)"
        )
    if status == 500 and any(text in message for text in NO_ACCOUNT):
        return (
            "the requester's public key must be on chain before it can sign requests: send any "
            "transaction from it, for example `inferenced publish-pubkey`; check with "
            "`gonka account ADDRESS`"
        )
    return None


def _access_hint(status: int, message: str, bearer: bool) -> str:
    if bearer:
        return {
            401: "the API key was refused: check --api-key-file, --api-key-cmd or "
            "GONKA_BROKER_API_KEY",
            402: "the broker balance ran out: top up your account with the broker",
            403: "this key may not use this model or endpoint: check the key's access with "
            "the broker",
        }[status]
    if status == 401:
        return (
            "check --scheme (raw for nodes before v0.2.6), the transfer address (it must be "
            "this TA's own: see GET /v1/identity), and that the key is the requester's"
        )
    if status == 402:
        return (
            "the requester's balance is too low for prompt + max_tokens (no max_tokens counts "
            "as 5000): top it up, or lower --max-tokens"
        )
    if "restricted" in message:
        return "the network's developer access gate is closed until that block height"
    return (
        "this transfer agent is not on the chain's allowlist: use another endpoint "
        "(--source-url finds allowed ones) or a broker/gateway with --auth bearer"
    )


def _bad_request_hint(message: str) -> str | None:
    if any(text in message for text in SKEW_MESSAGES):
        return CLOCK_HINT
    if "already been used" in message:
        return "a signature was reused: every request needs a fresh timestamp (drop --timestamp)"
    if "model" in message:
        return 'add "model" to the body, or pass --model'
    return None


# --- Clock skew ------------------------------------------------------------------------------


async def measure_offset_ns(
    client: httpx2.AsyncClient,
    endpoint: Endpoint,
    headers: Mapping[str, str],
    timeouts: Timeouts,
) -> int | None:
    """The node's clock minus ours, from ``/v1/identity`` (its block time) or ``Date``.

    None when neither says anything useful, or when the clocks agree within a second
    (then re-signing would not help).
    """
    from gonka_cli.transport import get_json

    node_ns: int | None = None
    try:
        document = await get_json(client, endpoint.url + "/identity", timeouts)
    except GonkaError:
        document = None
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict):
        node_ns = parse_time_ns(data.get("timestamp"))
    offset = date_offset_ns(headers) if node_ns is None else node_ns - time.time_ns()
    return offset if offset is not None and abs(offset) >= MIN_SKEW_NS else None


def date_offset_ns(headers: Mapping[str, str]) -> int | None:
    """The server's clock minus ours from its ``Date`` header (to within a second)."""
    date_ns = server_time_ns(headers)
    if date_ns is None:
        return None
    return date_ns + 500_000_000 - time.time_ns()  # Date is floored to the second
