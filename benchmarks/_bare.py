"""The floor of the streaming benchmark: one signed streaming request with bare httpx2.

Kept apart from `bench_stream` so that a fresh interpreter can run it importing nothing
of gonka-cli but the signing functions.
"""

from __future__ import annotations

import json
import time

import httpx2

from benchmarks._node import KEY, MODEL
from gonka_cli.keys import SigningKey
from gonka_cli.signing import CLOCK, sign, signature_headers

BODY = json.dumps(
    {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Name three rivers"}],
        "max_tokens": 4,
        "stream": True,
    },
    separators=(",", ":"),
).encode()


async def bare_httpx(url: str, transfer_address: str) -> float:
    """Seconds from a ready client to the first SSE line carrying text."""
    key = SigningKey.from_secret(bytes.fromhex(KEY))
    first = None
    async with httpx2.AsyncClient() as client:
        start = time.perf_counter()
        now = CLOCK.now_ns()
        signature = sign(key, BODY, now, transfer_address)
        headers = {
            "Content-Type": "application/json",
            **signature_headers(signature, key.address, now),
        }
        chat = url + "/v1/chat/completions"
        async with client.stream("POST", chat, content=BODY, headers=headers) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if first is None and _has_text(line):
                    first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the stream carried no text")
    return first


def _has_text(line: str) -> bool:
    if not line.startswith("data:") or line == "data: [DONE]":
        return False
    delta = json.loads(line[5:])["choices"][0]["delta"]
    return bool(delta.get("content") or delta.get("reasoning_content"))
