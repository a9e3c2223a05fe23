"""HTTP plumbing shared by sending and diagnostics: clients, time-outs, and the one place
where httpx2 exceptions and HTTP error answers become `gonka_cli.errors` classes.

Error bodies come in three shapes, all understood here: the TA's ``{"error": "..."}``,
OpenAI's ``{"error": {"message", "type", "code"}}`` (brokers, gateways), and the
retired node's ``{"error": "deprecated", "message": "..."}``.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from gonka_cli.errors import (
    GonkaError,
    HTTPClientError,
    HTTPServerError,
    NetworkError,
    Unreachable,
)
from gonka_cli.jsontext import loads
from gonka_cli.limits import DOCUMENT_DEADLINE_S, MAX_DOCUMENT_BYTES, MAX_ERROR_BODY_BYTES
from gonka_cli.settings import Timeouts
from gonka_cli.stream import error_text

BROKER_HINT = (
    "signed requests are retired on Gonka mainnet since v0.2.14: send through a broker or a "
    "gateway instead, with --auth bearer, GONKA_BROKER_URL=<base url ending in /v1> and "
    "GONKA_BROKER_API_KEY (or --api-key-file / --api-key-cmd)"
)
UNREACHABLE_HINT = (
    "is the node (or gateway) running? Check the URL and port; `gonka node` starts a local "
    "one, and `gonka send-request --dev` uses one of its own"
)
CLOCK_HINT = (
    "sync your clock with NTP (for example `sudo timedatectl set-ntp true` or "
    "`sudo chronyc makestep`); the network allows 60 s behind and 30 s ahead"
)


def httpx_timeout(timeouts: Timeouts) -> httpx2.Timeout:
    """The httpx2 form: its read time-out is already the idle time between two reads."""
    return httpx2.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=None
    )


def user_agent() -> str:
    """``gonka-cli/<version>``."""
    from importlib.metadata import version

    return f"gonka-cli/{version('gonka-cli')}"


def async_client(
    timeouts: Timeouts, transport: httpx2.AsyncBaseTransport | None = None
) -> httpx2.AsyncClient:
    """An async client that never follows redirects on its own (a 308 is reported)."""
    return httpx2.AsyncClient(
        timeout=httpx_timeout(timeouts),
        transport=transport,
        follow_redirects=False,
        headers={"User-Agent": user_agent()},
        trust_env=True,
    )


def network_error(exc: httpx2.TransportError, url: str, timeouts: Timeouts) -> NetworkError:
    """A transport failure as a `NetworkError` naming the limit that was hit and its flag."""
    if isinstance(exc, httpx2.ConnectTimeout):
        return NetworkError(
            f"could not connect to {url} within {timeouts.connect:g} s",
            hint="check the address, or raise --connect-timeout",
        )
    if isinstance(exc, httpx2.ReadTimeout | httpx2.WriteTimeout):
        return NetworkError(
            f"{url} sent nothing for {timeouts.read:g} s",
            hint="raise --read-timeout (the longest silence allowed between two bytes)",
        )
    if isinstance(exc, httpx2.TimeoutException):
        return NetworkError(f"time-out talking to {url} ({type(exc).__name__})")
    if isinstance(exc, httpx2.ConnectError):
        return Unreachable(
            f"could not connect to {url}: {_reason(exc)}",
            hint=UNREACHABLE_HINT,
        )
    return NetworkError(f"connection to {url} failed: {_reason(exc)}")


def undecodable(exc: httpx2.DecodingError, url: str) -> NetworkError:
    """A body whose ``Content-Encoding`` (gzip, deflate) does not decode."""
    return NetworkError(f"the answer from {url} could not be decoded: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def error_message(body: bytes | str, status: int) -> str:
    """The server's message from an error body of any known shape (else its first line)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        payload = loads(text)
    except json.JSONDecodeError:
        first = text.strip().splitlines()[:1]
        return first[0][:300] if first else httpx2.codes.get_reason_phrase(status) or "error"
    if isinstance(payload, dict) and ("error" in payload or "message" in payload):
        return error_text(payload)[:500]
    return text.strip()[:300]


def json_body(body: bytes) -> dict[str, Any]:
    """A JSON object body, or an empty dict when it is not one."""
    try:
        value = loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta seconds or an HTTP date), if present."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def server_time_ns(headers: Mapping[str, str]) -> int | None:
    """The server's clock from its ``Date`` header, in ns (second resolution)."""
    value = headers.get("date", "")
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp()) * 1_000_000_000
    except (TypeError, ValueError):
        return None


def http_error(
    status: int, message: str, url: str, *, hint: str | None = None, body: str = ""
) -> GonkaError:
    """The final error for an HTTP answer: 4xx exit 4; 5xx and 429 exit 5."""
    text = f"HTTP {status} from {url}: {message}"
    if 300 <= status < 500 and status != 429:
        return HTTPClientError(text, status_code=status, hint=hint, body=body)
    return HTTPServerError(text, status_code=status, hint=hint, body=body)


def too_large(url: str, limit: int, what: str = "answer", flag: str | None = None) -> NetworkError:
    """The error for a body over its cap, in one line naming the limit (and its flag)."""
    cap = f"{flag} ({limit:,} bytes)" if flag else f"the {limit:,}-byte limit"
    return NetworkError(f"the {what} from {url} is over {cap}; stopped reading")


async def read_capped(
    response: httpx2.Response, limit: int, url: str, what: str, flag: str | None = None
) -> bytes:
    """The whole body, or `too_large` as soon as it passes `limit` bytes (memory stays flat)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(url, limit, what, flag)
    parts, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise too_large(url, limit, what, flag)
        parts.append(chunk)
    return b"".join(parts)


async def read_prefix(response: httpx2.Response, limit: int = MAX_ERROR_BODY_BYTES) -> bytes:
    """At most `limit` bytes of the body (an error answer's: the rest is not read)."""
    parts, size = [], 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk[: limit - size])
        size += len(parts[-1])
        if size >= limit:
            break
    return b"".join(parts)


async def get_json(
    client: httpx2.AsyncClient,
    url: str,
    timeouts: Timeouts,
    *,
    headers: Mapping[str, str] | None = None,
    limit: int = MAX_DOCUMENT_BYTES,
) -> Any:
    """GET a JSON document of at most `limit` bytes within `DOCUMENT_DEADLINE_S` (or
    ``--timeout``), translating every failure at this one boundary."""
    import asyncio  # here: loaded anyway once this runs; `GonkaTransport` users skip it

    deadline = timeouts.total or DOCUMENT_DEADLINE_S
    try:
        async with asyncio.timeout(deadline):
            status, content = await _get(client, url, timeouts, headers, limit)
    except TimeoutError:
        raise NetworkError(
            f"{url} did not send its whole document within {deadline:g} s",
            hint="--timeout sets this limit",
        ) from None
    if status >= 300:
        message = error_message(content, status)
        raise http_error(status, message, url, body=content[:2000].decode("utf-8", "replace"))
    try:
        return loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPServerError(f"{url} did not answer JSON", status_code=status) from None


async def _get(
    client: httpx2.AsyncClient,
    url: str,
    timeouts: Timeouts,
    headers: Mapping[str, str] | None,
    limit: int,
) -> tuple[int, bytes]:
    try:
        async with client.stream("GET", url, headers=dict(headers or {})) as response:
            if response.status_code >= 300:
                return response.status_code, await read_prefix(response)
            return response.status_code, await read_capped(response, limit, url, "document")
    except httpx2.TransportError as exc:
        raise network_error(exc, url, timeouts) from exc
    except httpx2.DecodingError as exc:
        raise undecodable(exc, url) from exc
