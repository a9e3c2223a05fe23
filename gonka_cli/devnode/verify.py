"""The checks a transfer agent runs on a signed chat request, in the network's order (pure).

docs/protocol.md section 4, one function per row: body, allowlist, Authorization, model,
message roles, requester lookup, signature, model served, balance, timestamp window,
replay. The first failing check raises `Refusal` with the status and message the
network answers with. Header names are looked up in lower case.

The transfer address is always the TA's own: an ``X-Transfer-Address`` header is
ignored, since the chain re-checks the signature against the TA's address anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gonka_cli import jsontext
from gonka_cli.devnode.config import AccountBook
from gonka_cli.devnode.model import prompt_chars, token_limit
from gonka_cli.errors import UsageError
from gonka_cli.keys import parse_address
from gonka_cli.signing import (
    Scheme,
    SignatureProblem,
    decode_signature,
    verify_with_address,
    verify_with_public_key,
)

MAX_BODY_BYTES = 10 * 1024 * 1024
ROLES = ("developer", "system", "user", "assistant", "tool", "function")
DEFAULT_MAX_TOKENS = 5000
REPLAY_MESSAGE = "AuthKey has already been used for a transfer request"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_QUOTED_TIMESTAMP = 64  # of a refused X-Timestamp, only this much is echoed back
_GO_DECIMAL = re.compile(r"[+-]?[0-9]+")  # [0-9], not \d: ASCII digits only


class Refusal(Exception):
    """A request the node refuses: the HTTP status and the network's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TAContext:
    """What one transfer agent checks a request against, at one instant."""

    own_address: str
    models: tuple[str, ...]
    schemes: tuple[Scheme, ...]
    now_ns: int
    window_back_ns: int
    window_ahead_ns: int
    seen: Callable[[bytes], bool]
    allowlist: tuple[str, ...] = ()
    accounts: AccountBook | None = None


@dataclass(frozen=True)
class SignedRequest:
    """A request that passed every check."""

    chat: dict[str, Any]
    model: str
    signature: str
    signature_raw: bytes
    requester: str
    public_key: bytes
    timestamp_ns: int


def check_signed_request(body: bytes, headers: Mapping[str, str], ctx: TAContext) -> SignedRequest:
    """Run every check in order; return the request or raise `Refusal`."""
    if len(body) > MAX_BODY_BYTES:
        raise Refusal(413, "http: request body too large")
    chat = parse_chat(body)
    if ctx.allowlist and ctx.own_address not in ctx.allowlist:
        raise Refusal(403, "Transfer Agent not allowed")
    signature = headers.get("authorization", "").strip()
    if not signature:
        raise Refusal(401, "Authorization is required")
    model = require_model(chat)
    check_roles(chat["messages"])
    requester = headers.get("x-requester-address", "").strip()
    known_key = lookup_requester(requester, ctx.accounts)
    timestamp_ns = parse_timestamp(headers.get("x-timestamp", ""))
    public_key = check_signature(signature, body, timestamp_ns, requester, known_key, ctx)
    if model not in ctx.models:
        raise Refusal(404, "model not found")
    check_balance(chat, requester, ctx.accounts)
    check_window(timestamp_ns, ctx)
    raw = decode_signature(signature)[2]
    if ctx.seen(raw):
        raise Refusal(400, REPLAY_MESSAGE)
    return SignedRequest(chat, model, signature, raw, requester, public_key, timestamp_ns)


def parse_chat(body: bytes) -> dict[str, Any]:
    """The JSON object of a chat request that has `messages`."""
    try:
        chat = jsontext.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refusal(400, f"invalid chat completion request: {exc}") from exc
    if not isinstance(chat, dict):
        raise Refusal(400, "invalid chat completion request: the body is not a JSON object")
    messages = chat.get("messages")
    if messages is None or messages == []:
        raise Refusal(400, "messages is required")
    if not isinstance(messages, list):
        raise Refusal(400, "invalid chat completion request: messages must be an array")
    return chat


def require_model(chat: Mapping[str, Any]) -> str:
    """The requested model name."""
    model = chat.get("model")
    if not isinstance(model, str) or not model.strip():
        raise Refusal(400, "No model specified")
    return model


def check_roles(messages: list[Any]) -> None:
    """Every message is an object whose role the schema allows."""
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise Refusal(
                400,
                f"invalid chat completion request: messages[{n}].role {role!r} is not one of "
                + ", ".join(ROLES),
            )


def lookup_requester(requester: str, accounts: AccountBook | None) -> bytes | None:
    """The requester's published public key, or None when the node recovers keys instead."""
    if not requester:
        raise Refusal(
            500, "rpc error: code = InvalidArgument desc = empty address string is not allowed"
        )
    try:
        parse_address(requester)
    except UsageError as exc:
        raise Refusal(
            500, f"rpc error: code = InvalidArgument desc = decoding bech32 failed: {exc.message}"
        ) from exc
    if accounts is None:
        return None
    account = accounts.accounts.get(requester)
    if account is None:
        raise Refusal(500, f"rpc error: code = NotFound desc = {requester}: account not found")
    if account.pubkey is None:
        raise Refusal(
            500, f"rpc error: code = NotFound desc = {requester}: account has no public key"
        )
    return account.pubkey


def parse_timestamp(text: str) -> int:
    """The X-Timestamp header in nanoseconds, parsed as Go's ``strconv.ParseInt(s, 10, 64)``
    parses it: an optional sign, ASCII digits only, within int64. Absent or empty means 0,
    as the network treats it; a negative value parses (the window check refuses it later).
    Python's `int()` would also take ``_``, surrounding blanks and non-ASCII digits."""
    if not text:
        return 0
    quoted = json.dumps(text[:MAX_QUOTED_TIMESTAMP])
    if _GO_DECIMAL.fullmatch(text) is None:
        raise Refusal(
            400, f"invalid X-Timestamp header: strconv.ParseInt: parsing {quoted}: invalid syntax"
        )
    # Leading zeros dropped first: int() refuses strings of over 4300 digits, Go does not.
    digits = text.lstrip("+-").lstrip("0") or "0"
    value = int(digits) * (-1 if text.startswith("-") else 1) if len(digits) <= 19 else None
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        raise Refusal(
            400,
            f"invalid X-Timestamp header: strconv.ParseInt: parsing {quoted}: value out of range",
        )
    return value


def check_signature(
    signature: str,
    body: bytes,
    timestamp_ns: int,
    requester: str,
    known_key: bytes | None,
    ctx: TAContext,
) -> bytes:
    """Verify against this TA's own address in any accepted scheme; return the signer's key."""
    problem: SignatureProblem | None = None
    for scheme in ctx.schemes:
        try:
            if known_key is not None:
                verify_with_public_key(
                    known_key, signature, body, timestamp_ns, ctx.own_address, scheme
                )
                return known_key
            return verify_with_address(
                requester, signature, body, timestamp_ns, ctx.own_address, scheme
            )
        except SignatureProblem as exc:
            problem = problem or exc
    raise Refusal(401, f"Unable to validate request against PubKey: {problem}")


def request_cost(chat: Mapping[str, Any], price: int) -> int:
    """(prompt characters + max_tokens) x price; a missing max_tokens counts as 5000."""
    limit = token_limit(chat) or DEFAULT_MAX_TOKENS
    return (prompt_chars(chat.get("messages") or []) + limit) * price


def check_balance(chat: Mapping[str, Any], requester: str, accounts: AccountBook | None) -> None:
    """The requester can pay for the request (only checked when accounts are configured)."""
    if accounts is None:
        return
    if accounts.accounts[requester].balance < request_cost(chat, accounts.price):
        raise Refusal(402, "Insufficient balance")


def check_window(timestamp_ns: int, ctx: TAContext) -> None:
    """The timestamp lies within the window around the node's now."""
    if timestamp_ns < ctx.now_ns - ctx.window_back_ns:
        raise Refusal(400, "signature is too old")
    if timestamp_ns > ctx.now_ns + ctx.window_ahead_ns:
        raise Refusal(400, "signature is in the future")
