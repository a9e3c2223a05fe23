"""Sending answers over HTTP: pacing, streaming, and the faults that break a connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gonka_cli.devnode.model import Answer, completion, stream_events
from gonka_cli.devnode.runtime import NodeRuntime, ParticipantState
from gonka_cli.devnode.upstream import Refuse, forward

MAX_DRAIN_BYTES = 64 * 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` (the rest is read and discarded)."""
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_DRAIN_BYTES:
            break
        if size <= limit:
            parts.append(part)
    return None if size > limit else b"".join(parts)


async def close_connection(request: Request, runtime: NodeRuntime) -> None:
    """Close the client's connection at once, with no (further) bytes of answer."""
    key = (request.scope.get("server"), request.scope.get("client"))
    transport = runtime.transports.get(key)
    if transport is None:  # not served by our protocol class: let the server abort it
        raise ConnectionAbortedError("injected fault: connection dropped")
    transport.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2):
            while (await request.receive())["type"] != "http.disconnect":
                pass


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON answer."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def token_delay(runtime: NodeRuntime) -> float:
    """Seconds between two tokens (0: as fast as possible)."""
    rate = runtime.config.tokens_per_second
    return 1.0 / rate if rate > 0 else 0.0


async def wait_first_byte(runtime: NodeRuntime, fault: str | None) -> None:
    """The configured latency before the first byte, plus the slow-fault delay."""
    delay_ms = runtime.config.latency_ms + (runtime.config.slow_ms if fault == "slow" else 0)
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)


async def paced(
    events: Sequence[bytes],
    delay: float,
    cut_at: int | None,
    request: Request,
    runtime: NodeRuntime,
) -> AsyncIterator[bytes]:
    """Yield events `delay` seconds apart; at `cut_at`, close the connection instead."""
    for n, event in enumerate(events):
        if n == cut_at:
            await close_connection(request, runtime)
            return
        if n and delay:
            await asyncio.sleep(delay)
        yield event


async def answer_response(
    request: Request,
    runtime: NodeRuntime,
    answer: Answer,
    *,
    completion_id: str,
    model: str,
    stream: bool,
    fault: str | None,
    headers: Mapping[str, str],
) -> Response:
    """The model's answer as JSON or as an event stream, paced, possibly cut."""
    created = int(time.time())
    delay = token_delay(runtime)
    await wait_first_byte(runtime, fault)
    if stream:
        events = stream_events(answer, completion_id, model, created)
        cut_at = max(1, len(events) // 2) if fault == "cut" else None
        return StreamingResponse(
            paced(events, delay, cut_at, request, runtime),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache"},
        )
    if delay:
        await asyncio.sleep(delay * answer.completion_tokens)
    body = json.dumps(completion(answer, completion_id, model, created)).encode()
    if fault != "cut":
        return Response(body, headers=headers, media_type="application/json")
    half = len(body) // 2
    return StreamingResponse(
        paced([body[:half], body[half:]], 0.0, 1, request, runtime),
        media_type="application/json",
        headers={**headers, "Content-Length": str(len(body))},
    )


class ChatRoute:
    """What the chat route of a transfer agent and of a gateway share: counting and
    logging each answer, and answering an injected error fault."""

    def __init__(self, runtime: NodeRuntime, me: ParticipantState) -> None:
        self.runtime = runtime
        self.me = me

    def count_received(self) -> None:
        """One more POST to the chat route."""
        self.runtime.stats.count_received()
        self.me.info.stats.count_received()

    def finish(
        self,
        response: Response,
        *,
        accepted: bool = False,
        replay: bool = False,
        fault: str | None = None,
    ) -> Response:
        """Count and log an answer, then hand it back."""
        status = None if fault == "drop" else response.status_code
        for stats in (self.runtime.stats, self.me.info.stats):
            stats.count_answer(status, accepted=accepted, replay=replay, fault=fault)
        suffix = f" fault={fault}" if fault else ""
        self.runtime.log(
            f"[{self.me.info.index}] POST /v1/chat/completions -> {status or 'dropped'}{suffix}"
        )
        return response

    async def fail(self, fault: str, request: Request) -> Response:
        """Answer with an injected error fault (counted first: a drop ends the exchange)."""
        response = self.fault_answer(fault)
        self.finish(response, fault=fault)
        if fault == "drop":
            await close_connection(request, self.runtime)
        return response

    def fault_answer(self, fault: str) -> Response:
        """The answer of an injected error fault, in this route's error envelope."""
        raise NotImplementedError

    async def relay(
        self,
        chat: Mapping[str, Any],
        fault: str | None,
        *,
        completion_id: str,
        headers: Mapping[str, str],
        refuse: Refuse,
    ) -> Response | None:
        """The upstream server's answer with ``--upstream``; None to answer with echo."""
        client, config = self.runtime.upstream, self.runtime.config
        if client is None or config.upstream is None:
            return None
        await wait_first_byte(self.runtime, fault)
        return await forward(
            client,
            config.upstream,
            config.upstream_api_key,
            chat,
            completion_id=completion_id,
            headers=headers,
            refuse=refuse,
        )
