"""Every read is bounded (issue 13): answer and error bodies, documents, SSE, deadlines.

Against httpx2.MockTransport with bodies that never end: each test counts how much of
such a body was pulled, which is what the process would hold in memory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from gonka_cli import client as client_module
from gonka_cli.client import Outcome, Sender
from gonka_cli.endpoints import Endpoint
from gonka_cli.errors import HTTPServerError, NetworkError
from gonka_cli.limits import MAX_ERROR_BODY_BYTES, MAX_EVENT_BYTES
from gonka_cli.settings import BearerAuth, RetryPolicy, SendConfig, Timeouts
from gonka_cli.transport import async_client, get_json

CHUNK = b"z" * 4096
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
STREAM_BODY = json.dumps({"model": "m", "messages": [], "stream": True}).encode()


@dataclass
class Endless:
    """A body that never ends (an optional pause between chunks); counts the bytes pulled."""

    chunk: bytes = CHUNK
    pause: float = 0.0
    pulled: int = 0
    first: bytes = b""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.first:
            yield self.first
        for _ in range(1_000_000):  # bounded: 4 GB of chunks is more than any cap
            if self.pause:
                await asyncio.sleep(self.pause)
            self.pulled += len(self.chunk)
            yield self.chunk


def config(**options: Any) -> SendConfig:
    options.setdefault("retry", RetryPolicy(max_retries=0))
    return SendConfig(BearerAuth("sk-test-key"), (Endpoint("http://gw/v1"),), **options)


def send(config: SendConfig, reply: httpx2.Response, body: bytes = BODY) -> Outcome:
    async def go() -> Outcome:
        transport = httpx2.MockTransport(lambda request: reply)
        async with Sender(config, transport=transport) as sender:
            return await sender.send(body)

    return asyncio.run(go())


def test_an_endless_answer_stops_just_past_the_cap() -> None:
    """A 200 without end: NetworkError naming --max-response-bytes; little more was read."""
    body = Endless()
    reply = httpx2.Response(200, content=body, headers={"content-type": "application/json"})
    with pytest.raises(NetworkError, match=r"over --max-response-bytes \(100,000 bytes\)"):
        send(config(max_response_bytes=100_000), reply)
    assert 100_000 < body.pulled <= 100_000 + len(CHUNK)


def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    """Content-Length above the cap: refused before a byte of the body is read."""
    body = Endless()
    headers = {"content-type": "application/json", "content-length": str(10**12)}
    with pytest.raises(NetworkError, match="max-response-bytes"):
        send(config(max_response_bytes=1000), httpx2.Response(200, content=body, headers=headers))
    assert body.pulled == 0


def test_an_answer_at_the_cap_is_accepted() -> None:
    """The cap is inclusive: an answer of exactly that many bytes is read and used."""
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
    data = json.dumps(completion).encode()
    outcome = send(config(max_response_bytes=len(data)), httpx2.Response(200, content=data))
    assert outcome.response["choices"][0]["message"]["content"] == "ok"


def test_an_endless_error_body_is_read_only_in_part() -> None:
    """A 500 without end: 64 KiB of it are read, then the HTTP error is reported."""
    body = Endless()
    with pytest.raises(HTTPServerError, match="HTTP 500"):
        send(config(), httpx2.Response(500, content=body))
    assert body.pulled <= MAX_ERROR_BODY_BYTES + len(CHUNK)


def test_endless_deltas_stop_at_the_cap() -> None:
    """SSE content deltas without end: stopped once the stream's text passes the cap."""
    delta = b'data: {"choices":[{"index":0,"delta":{"content":"xxxxxxxx"}}]}\n\n' * 50
    body = Endless(chunk=delta)
    headers = {"content-type": "text/event-stream"}
    with pytest.raises(NetworkError, match=r"the stream from .* over --max-response-bytes"):
        send(
            config(max_response_bytes=200_000), httpx2.Response(200, content=body, headers=headers)
        )
    assert body.pulled <= 200_000 + 2 * len(delta)


def test_one_endless_sse_event_stops_at_the_event_limit() -> None:
    """A data line without end: stopped at the 1 MiB event limit, well below the cap."""
    body = Endless(first=b"data: ")
    headers = {"content-type": "text/event-stream"}
    with pytest.raises(NetworkError, match=r"server-sent event .* 1,048,576-byte limit"):
        send(config(), httpx2.Response(200, content=body, headers=headers))
    assert body.pulled <= MAX_EVENT_BYTES + 2 * len(CHUNK)


def test_a_non_streamed_request_has_a_default_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --timeout, a trickling non-streamed answer ends at the default deadline."""
    monkeypatch.setattr(client_module, "DEFAULT_DEADLINE_S", 0.3)
    body = Endless(chunk=b" ", pause=0.02)
    with pytest.raises(NetworkError, match=r"within --timeout 0.3 s \(the default"):
        send(config(), httpx2.Response(200, content=body))


def test_a_streamed_request_has_no_default_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream may take longer than that deadline: only --timeout limits it."""
    monkeypatch.setattr(client_module, "DEFAULT_DEADLINE_S", 0.1)

    async def slow() -> AsyncIterator[bytes]:
        for _ in range(5):
            await asyncio.sleep(0.05)
            yield b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        yield b"data: [DONE]\n\n"

    headers = {"content-type": "text/event-stream"}
    outcome = send(config(), httpx2.Response(200, content=slow(), headers=headers), STREAM_BODY)
    assert outcome.response["choices"][0]["message"]["content"] == "aaaaa"
    with pytest.raises(NetworkError, match=r"within --timeout 0.1 s"):
        send(
            config(timeouts=Timeouts(total=0.1)),
            httpx2.Response(200, content=slow(), headers=headers),
            STREAM_BODY,
        )


def test_documents_are_capped() -> None:
    """/v1/identity and discovery documents: over their limit is a NetworkError."""
    body = Endless(first=b'{"data":"')

    async def go() -> None:
        transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=body))
        async with async_client(Timeouts(), transport) as client:
            await get_json(client, "http://n/v1/identity", Timeouts(), limit=10_000)

    with pytest.raises(NetworkError, match=r"document from http://n/v1/identity .* 10,000"):
        asyncio.run(go())
    assert body.pulled <= 10_000 + len(CHUNK)


def test_settings_give_the_cap_and_the_trusted_origins() -> None:
    """--max-response-bytes / GONKA_MAX_RESPONSE_BYTES (default 64 MiB, positive) and
    --trust-origin / GONKA_TRUST_ORIGINS as origins with the port spelled out."""
    from gonka_cli.errors import ConfigError, UsageError
    from gonka_cli.settings import Profile, max_response_bytes, resolve, trusted_origins

    assert max_response_bytes(resolve({}, {}, Profile({}))) == 64 * 1024 * 1024
    env = {"GONKA_MAX_RESPONSE_BYTES": "123", "GONKA_TRUST_ORIGINS": "http://h:8080,https://x"}
    settings = resolve({}, env, Profile({}))
    assert max_response_bytes(settings) == 123
    assert trusted_origins(settings) == {"http://h:8080", "https://x:443"}
    flagged = resolve({"trust_origins": ["https://New.Host/v1"]}, env, Profile({}))
    assert trusted_origins(flagged) == {"https://new.host:443"}
    with pytest.raises(ConfigError, match="GONKA_MAX_RESPONSE_BYTES"):
        max_response_bytes(resolve({}, {"GONKA_MAX_RESPONSE_BYTES": "-1"}, Profile({})))
    with pytest.raises(UsageError, match="--trust-origin"):
        trusted_origins(resolve({"trust_origins": ["ftp://x"]}, {}, Profile({})))
