"""Helpers shared by the dev-node tests: signing requests and reading event streams.

A plain httpx client signs with gonka_cli.signing, as any client would; nothing here
reaches into the node.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx2

from gonka_cli.keys import CURVE_ORDER, SigningKey
from gonka_cli.signing import CLOCK, Scheme, sign, signature_headers

PAYLOAD_FILE = Path(__file__).parents[1] / "inference-requests" / "request_payload.json"
QUESTION = "What is the capital city of France?"
KEY = SigningKey.from_hex("480293bb12c956967e64c039801ed48ead6b56d34bd5f985ed53f70755d5a3ad")


def payload() -> bytes:
    """The repository's sample request body, byte for byte."""
    return PAYLOAD_FILE.read_bytes()


def body_of(**fields: Any) -> bytes:
    """A compact JSON body."""
    return json.dumps(fields, separators=(",", ":")).encode()


def signed_headers(
    body: bytes,
    transfer_address: str,
    *,
    key: SigningKey = KEY,
    timestamp_ns: int | None = None,
    scheme: Scheme = Scheme.HASH,
) -> dict[str, str]:
    """The headers of a request signed for `transfer_address` (fresh timestamp by default)."""
    stamp = CLOCK.now_ns() if timestamp_ns is None else timestamp_ns
    signature = sign(key, body, stamp, transfer_address, scheme)
    return signature_headers(signature, key.address, stamp)


def post_signed(
    client: httpx2.Client, url: str, body: bytes, transfer_address: str, **options: Any
) -> httpx2.Response:
    """POST a signed chat request to a node's chat route."""
    headers = signed_headers(body, transfer_address, **options)
    return client.post(url + "/v1/chat/completions", content=body, headers=headers)


def high_s(signature: str) -> str:
    """The same signature with s replaced by n - s (valid ECDSA, rejected by the network)."""
    raw = base64.b64decode(signature)
    s = int.from_bytes(raw[32:], "big")
    return base64.b64encode(raw[:32] + (CURVE_ORDER - s).to_bytes(32, "big")).decode()


def sse_payloads(text: str) -> list[str]:
    """The ``data:`` payloads of an event stream, in order."""
    return [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]


def stream_chunks(text: str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON chunks of an event stream and whether it ended with ``[DONE]``."""
    payloads = sse_payloads(text)
    done = bool(payloads) and payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads if p != "[DONE]"], done
