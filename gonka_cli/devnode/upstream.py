"""Relaying a verified request to an OpenAI-compatible server (llama.cpp, vLLM, Ollama...)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import httpx2
from starlette.responses import Response, StreamingResponse

from gonka_cli import jsontext

Refuse = Callable[[int, str], Response]


def upstream_payload(chat: Mapping[str, Any]) -> dict[str, Any]:
    """The body sent upstream: the request, with usage forced on for streams (as the network)."""
    payload = dict(chat)
    if payload.get("stream"):
        options = payload.get("stream_options")
        payload["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return payload


def rewrite_event_line(line: str, completion_id: str) -> str:
    """Give a ``data: {...}`` line the node's completion id; other lines pass unchanged."""
    if not line.startswith("data:"):
        return line
    data = line[5:].strip()
    try:
        chunk = jsontext.loads(data)
    except json.JSONDecodeError:
        return line
    if not isinstance(chunk, dict):
        return line
    chunk["id"] = completion_id
    return "data: " + json.dumps(chunk, separators=(",", ":"))


async def _relay(response: httpx2.Response, completion_id: str) -> AsyncIterator[bytes]:
    try:
        async for line in response.aiter_lines():
            yield (rewrite_event_line(line, completion_id) + "\n").encode()
    finally:
        with anyio.CancelScope(shield=True):  # also when the client went away mid-stream
            await response.aclose()


async def forward(
    client: httpx2.AsyncClient,
    base_url: str,
    api_key: str | None,
    chat: Mapping[str, Any],
    *,
    completion_id: str,
    headers: Mapping[str, str],
    refuse: Refuse,
) -> Response:
    """Send the chat request upstream and relay its answer, streaming included."""
    request = client.build_request(
        "POST",
        base_url.rstrip("/") + "/chat/completions",
        json=upstream_payload(chat),
        headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
    )
    try:
        response = await client.send(request, stream=True)
    except httpx2.HTTPError as exc:
        return refuse(500, f"Inference node response with an error: {exc!r}")
    if response.status_code >= 400:
        return await _upstream_error(response, refuse)
    if "text/event-stream" in response.headers.get("content-type", ""):
        return StreamingResponse(
            _relay(response, completion_id), media_type="text/event-stream", headers=dict(headers)
        )
    try:
        answer = jsontext.loads(await response.aread())
    except (httpx2.HTTPError, json.JSONDecodeError) as exc:
        return refuse(500, f"Inference node response with an error: {exc!r}")
    finally:
        await response.aclose()
    if isinstance(answer, dict):
        answer["id"] = completion_id
    return Response(json.dumps(answer), headers=dict(headers), media_type="application/json")


async def _upstream_error(response: httpx2.Response, refuse: Refuse) -> Response:
    """Proxy an upstream 4xx as it is; turn 5xx into the network's 500."""
    try:
        body = await response.aread()
    except httpx2.HTTPError:
        body = b""
    finally:
        await response.aclose()
    if response.status_code < 500:
        media = response.headers.get("content-type", "application/json")
        return Response(body, status_code=response.status_code, media_type=media)
    text = body.decode(errors="replace")[:500]
    return refuse(500, f"Inference node response with an error: {response.status_code} {text}")
