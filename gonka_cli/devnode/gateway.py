"""Gateway mode: a broker's or self-run gateway as mainnet serves inference since v0.2.14.

docs/protocol.md section 10: plain OpenAI requests with ``Authorization: Bearer <key>``, no
signature, OpenAI error envelopes, ``X-Request-Id`` and ``X-Devshard-ID`` headers, ids
``devshard-<escrow>-<nonce>``, ``Retry-After`` on 429 and 503, 402 when a key's balance
(in tokens) is spent, and a retired gateway that answers 308 with a JSON ``new_url``.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gonka_cli import jsontext
from gonka_cli.devnode.faults import ERROR_FAULTS
from gonka_cli.devnode.model import echo_answer
from gonka_cli.devnode.serve import (
    ChatRoute,
    answer_response,
    json_response,
    read_body,
)
from gonka_cli.devnode.verify import MAX_BODY_BYTES

RETRY_AFTER_S = "1"
HEIGHT_SEED_INCOMPLETE = "height_seed_incomplete"
CONTEXT_LENGTH = 32768
_ERROR_KINDS = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    402: ("insufficient_balance", "insufficient_balance"),
    404: ("invalid_request_error", "model_not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    503: ("service_unavailable", "no_capacity"),
}


def gateway_error(status: int, message: str, code: str | None = None) -> Response:
    """An OpenAI error envelope; 429 and 503 carry ``Retry-After``."""
    kind, default_code = _ERROR_KINDS.get(status, ("server_error", str(status)))
    code = code or default_code
    headers = {"Retry-After": RETRY_AFTER_S} if status in (429, 503) else None
    return json_response(
        {"error": {"message": message, "type": kind, "code": code}}, status, headers
    )


class GatewayRefusal(Exception):
    """A gateway request refused with an OpenAI envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Gateway(ChatRoute):
    """The routes of one gateway participant."""

    def routes(self) -> list[Route]:
        """Every route, or a single 308 answer when the gateway is retired."""
        if self.runtime.config.retired_to is not None:
            methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
            return [Route("/{path:path}", self.moved, methods=methods)]
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/status", self.status, methods=["GET"]),
            Route("/v1/requests/{request_id}", self.request_record, methods=["GET"]),
        ]

    async def moved(self, request: Request) -> Response:
        """A retired gateway: 308 with ``new_url`` in the body, and a ``Location`` header
        only with `retired_location` (some builds send it, most do not)."""
        new_url = self.runtime.config.retired_to or ""
        body = {
            "status": 308,
            "message": f"this gateway has moved to {new_url}",
            "new_url": new_url,
        }
        headers = {"Location": new_url} if self.runtime.config.retired_location else None
        response = json_response(body, 308, headers)
        if request.method == "POST" and request.url.path == "/v1/chat/completions":
            self.count_received()
            return self.finish(response)
        return response

    def api_key(self, request: Request) -> str:
        """The caller's API key, checked against the configured ones."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise GatewayRefusal(401, "Missing API key: send Authorization: Bearer <key>")
        key = key.strip()
        if not any(
            hmac.compare_digest(key.encode(), known.encode()) for known in self.runtime.api_keys
        ):
            raise GatewayRefusal(401, "Invalid API key")
        return key

    def parse(self, body: bytes) -> tuple[dict[str, Any], str]:
        """The chat request and its model, served by this gateway."""
        try:
            chat = jsontext.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GatewayRefusal(400, f"invalid JSON body: {exc}") from exc
        if (
            not isinstance(chat, dict)
            or not isinstance(chat.get("messages"), list)
            or not chat["messages"]
        ):
            raise GatewayRefusal(400, "messages is required")
        model = chat.get("model")
        if not isinstance(model, str) or not model:
            raise GatewayRefusal(400, "model is required")
        if model not in self.runtime.config.models:
            raise GatewayRefusal(
                404, f"The model {model!r} does not exist or you do not have access to it"
            )
        return chat, model

    def check_balance(self, key: str) -> None:
        """Refuse a key whose balance is spent."""
        remaining = self.runtime.key_balances.get(key)
        if remaining is not None and remaining <= 0:
            raise GatewayRefusal(402, "Insufficient balance: top up this API key")

    async def chat(self, request: Request) -> Response:
        """Check the key and the body, then answer like a gateway."""
        self.count_received()
        body = await read_body(request, MAX_BODY_BYTES)
        try:
            if body is None:
                raise GatewayRefusal(413, "request body is over 10 MiB")
            key = self.api_key(request)
            chat, model = self.parse(body)
            self.check_balance(key)
        except GatewayRefusal as refusal:
            return self.finish(gateway_error(refusal.status, refusal.message))
        fault = self.me.faults.next()
        if fault is not None and fault in ERROR_FAULTS:
            return await self.fail(fault, request)
        response = await self.serve(request, key, chat, model, fault)
        return self.finish(response, accepted=response.status_code == 200, fault=fault)

    def fault_answer(self, fault: str) -> Response:
        """The answer of an injected error fault."""
        if fault == "drop":
            return Response(status_code=500)  # never sent: the connection is closed instead
        if fault == "429":
            return gateway_error(429, "Rate limit reached; retry after the Retry-After delay")
        if fault == "503":
            return gateway_error(503, "No capacity for this model right now")
        if fault == "seed":
            return gateway_error(
                503,
                "height_seed_incomplete: the seed for this block height is not complete yet",
                HEIGHT_SEED_INCOMPLETE,
            )
        return gateway_error(500, "injected fault: upstream host failure")

    async def serve(
        self, request: Request, key: str, chat: dict[str, Any], model: str, fault: str | None
    ) -> Response:
        """Answer with a devshard id and the gateway's headers; bill the key."""
        self.me.nonce += 1
        completion_id = f"devshard-{self.me.escrow}-{self.me.nonce}"
        request_id = f"req-{self.me.escrow}-{self.me.nonce}"
        headers = {"X-Request-Id": request_id, "X-Devshard-ID": str(self.me.escrow)}
        record: dict[str, Any] = {
            "request_id": request_id,
            "id": completion_id,
            "devshard_id": str(self.me.escrow),
            "model": model,
            "stream": bool(chat.get("stream")),
            "created": int(time.time()),
            "status": "completed",
        }
        self.runtime.records[request_id] = record
        relayed = await self.relay(
            chat, fault, completion_id=completion_id, headers=headers, refuse=gateway_error
        )
        if relayed is not None:
            return relayed
        answer = echo_answer(chat, model)
        self.bill(key, answer.prompt_tokens + answer.completion_tokens)
        record.update(usage=answer.usage(), cost=answer.prompt_tokens + answer.completion_tokens)
        return await answer_response(
            request,
            self.runtime,
            answer,
            completion_id=completion_id,
            model=model,
            stream=bool(chat.get("stream")),
            fault=fault,
            headers=headers,
        )

    def bill(self, key: str, tokens: int) -> None:
        """Take a request's tokens off its key's balance."""
        remaining = self.runtime.key_balances.get(key)
        if remaining is not None:
            self.runtime.key_balances[key] = remaining - tokens

    async def models(self, request: Request) -> Response:
        """The OpenAI model list, with context length and pricing."""
        data = [
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "gonka",
                "context_length": CONTEXT_LENGTH,
                "pricing": {"prompt": "0", "completion": "0"},
            }
            for name in self.runtime.config.models
        ]
        return json_response({"object": "list", "data": data})

    async def status(self, request: Request) -> Response:
        """Per-model access mode and routability."""
        models = [
            {"id": name, "access_mode": "open", "routable": True}
            for name in self.runtime.config.models
        ]
        return json_response({"status": "ok", "models": models})

    async def request_record(self, request: Request) -> Response:
        """The accounting of one request (``X-Request-Id``), for the key holder."""
        try:
            self.api_key(request)
        except GatewayRefusal as refusal:
            return gateway_error(refusal.status, refusal.message)
        found = self.runtime.records.get(request.path_params["request_id"])
        if found is None:
            return gateway_error(404, "no such request", "request_not_found")
        return json_response(found)
