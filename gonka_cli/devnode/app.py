"""The ASGI application of one participant, in each of the three modes.

`ta`: a transfer agent (docs/protocol.md sections 3 to 6) that verifies signed requests.
`retired`: a v0.2.14 mainnet node whose classic inference routes answer 410.
`gateway`: a broker's gateway with API keys (see `gonka_cli.devnode.gateway`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gonka_cli.devnode.faults import ERROR_FAULTS
from gonka_cli.devnode.guard import AnswerWhenCancelled
from gonka_cli.devnode.model import echo_answer
from gonka_cli.devnode.runtime import NodeRuntime, ParticipantState
from gonka_cli.devnode.serve import (
    ChatRoute,
    answer_response,
    json_response,
    read_body,
)
from gonka_cli.devnode.verify import (
    MAX_BODY_BYTES,
    REPLAY_MESSAGE,
    Refusal,
    SignedRequest,
    TAContext,
    check_signed_request,
)
from gonka_cli.errors import UsageError
from gonka_cli.keys import parse_address
from gonka_cli.signing import sign

DENOM = "ngonka"
RECOVERED_BALANCE = 10**12
EPOCH_ID = 1
DEVSHARD_LINK = '</devshard/v4>; rel="successor-version"'
RECORD_PREFIX_BYTES = 256
EDGE_API_LINK = '</edge-api{path}>; rel="alternate"; title="edge-api"'
RETIRED_BODY = {"error": "deprecated", "message": "classic inference is deprecated; use devshard"}


def payload_prefix(data: bytes) -> str:
    """The first `RECORD_PREFIX_BYTES` of a payload, as text: what a record keeps of it
    (with its sha256), so that records stay small however large the prompts are."""
    return data[:RECORD_PREFIX_BYTES].decode(errors="ignore")


def ta_error(status: int, message: str) -> Response:
    """A transfer agent's error: ``{"error": "<message>"}``."""
    return json_response({"error": message}, status)


class ChainReads:
    """The read-only routes every TA-style node serves: identity, discovery, accounts..."""

    def __init__(self, runtime: NodeRuntime, me: ParticipantState) -> None:
        self.runtime = runtime
        self.me = me

    def routes(self) -> list[Route]:
        """The routes of this group."""
        return [
            Route("/v1/identity", self.identity, methods=["GET"]),
            Route("/v1/epochs/{epoch}/participants", self.participants, methods=["GET"]),
            Route("/v2/accounts/{address}", self.account, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route(
                "/chain-api/productscience/inference/inference/params", self.params, methods=["GET"]
            ),
        ]

    async def identity(self, request: Request) -> Response:
        """This participant's account address, signed by its key."""
        data = {
            "address": self.me.info.address,
            "block": self.runtime.block_height(),
            "timestamp": self.runtime.now_ns() // 1_000_000_000,
        }
        message = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return self.read_answer(
            request, {"data": data, "signature": sign(self.me.key, message, 0, "")}
        )

    async def participants(self, request: Request) -> Response:
        """Discovery: every participant of the node, as the current epoch's active set."""
        epoch = request.path_params["epoch"]
        if epoch != "current" and not epoch.isdigit():
            return ta_error(400, f"invalid epoch {epoch!r}")
        document = discovery_document(self.runtime, int(epoch) if epoch.isdigit() else EPOCH_ID)
        if self.runtime.config.participants_shape == "sdk":
            document = sdk_shaped(document)
        return self.read_answer(request, document)

    async def account(self, request: Request) -> Response:
        """``{"pubkey", "balance", "denom"}`` of an account, as the chain knows it."""
        address = request.path_params["address"]
        try:
            parse_address(address)
        except UsageError as exc:
            return ta_error(400, exc.message)
        book = self.runtime.accounts
        if book is None:
            pubkey = self.runtime.pubkeys.get(address)
            return json_response(_account_json(pubkey, RECOVERED_BALANCE))
        account = book.accounts.get(address)
        if account is None:
            return ta_error(404, f"account {address} not found")
        return json_response(_account_json(account.pubkey, account.balance))

    async def models(self, request: Request) -> Response:
        """The models served this epoch."""
        names = self.runtime.config.models
        models = [
            {"id": name, "units_of_compute_per_token": 1, "hf_repo": name, "v_ram": 0}
            for name in names
        ]
        # `data` too, as OpenAI lists models: the official SDK's models.list() reads it.
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "gonka"} for name in names
        ]
        return self.read_answer(request, {"models": models, "object": "list", "data": data})

    def read_answer(self, request: Request, payload: Any) -> Response:
        """A 200 answer of a /v1 read route; since v0.2.15 the network adds
        ``Deprecation: true`` and an edge-api ``Link`` (meaning nothing by themselves)."""
        config = self.runtime.config
        enabled = config.deprecation_headers
        if enabled is None:
            enabled = config.mode == "retired"
        headers = None
        if enabled:
            link = EDGE_API_LINK.format(path=request.url.path)
            headers = {"Deprecation": "true", "Link": link}
        return json_response(payload, headers=headers)

    async def params(self, request: Request) -> Response:
        """The chain parameters a client reads: the TA allowlist and the timestamp window."""
        config = self.runtime.config
        return json_response(
            {
                "params": {
                    "transfer_agent_access_params": {
                        "allowed_transfer_addresses": list(self.runtime.allowlist)
                    },
                    "validation_params": {
                        "timestamp_expiration": int(config.window_back_s),
                        "timestamp_advance": int(config.window_ahead_s),
                    },
                }
            }
        )


def _account_json(pubkey: bytes | None, balance: int) -> dict[str, Any]:
    encoded = base64.b64encode(pubkey).decode() if pubkey else None
    return {"pubkey": encoded, "balance": balance, "denom": DENOM}


def discovery_document(runtime: NodeRuntime, epoch: int) -> dict[str, Any]:
    """The `/v1/epochs/{epoch}/participants` answer (docs/protocol.md section 5)."""
    height = runtime.block_height()
    participants = [
        {
            "index": p.info.address,
            "validator_key": p.info.public_key,
            "weight": 10,
            "inference_url": p.info.url,
            "models": list(runtime.config.models),
            "seed": {"participant": p.info.address, "epoch_index": epoch, "signature": ""},
        }
        for p in runtime.participants
    ]
    return {
        "active_participants": {
            "participants": participants,
            "epoch_group_id": epoch,
            "epoch_id": epoch,
            "poc_start_block_height": 1,
            "created_at_block_height": 1,
            "effective_block_height": 1,
        },
        "addresses": [p.info.address for p in runtime.participants],
        "excluded_participants": [],
        "block": {"height": height, "time": runtime.now_ns() // 1_000_000_000},
        "proof_ops": {"ops": []},
    }


def sdk_shaped(document: dict[str, Any]) -> dict[str, Any]:
    """A participants document as some hosts send it since v0.2.15: the numbers inside
    `active_participants` as JSON strings, and an SDK-style proof block (string height,
    base64 hashes and keys)."""
    active = document["active_participants"]
    shaped_active = {
        key: str(value) if isinstance(value, int) else value
        for key, value in active.items()
        if key != "participants"
    }
    shaped_active["participants"] = [
        {
            **participant,
            "weight": str(participant["weight"]),
            "seed": {**participant["seed"], "epoch_index": str(participant["seed"]["epoch_index"])},
        }
        for participant in active["participants"]
    ]
    encoded = json.dumps(active, separators=(",", ":"), sort_keys=True).encode()
    app_hash = base64.b64encode(hashlib.sha256(b"app " + encoded).digest()).decode()
    block = document["block"]
    return {
        **document,
        "active_participants": shaped_active,
        "active_participants_bytes": encoded.hex(),
        "block": {
            "height": str(block["height"]),
            "time": str(block["time"]),
            "app_hash": app_hash,
        },
        "proof_ops": {
            "ops": [
                {
                    "type": "ics23:iavl",
                    "key": base64.b64encode(b"ActiveParticipants/value/").decode(),
                    "data": base64.b64encode(hashlib.sha256(encoded).digest()).decode(),
                },
                {
                    "type": "ics23:simple",
                    "key": base64.b64encode(b"inference").decode(),
                    "data": app_hash,
                },
            ]
        },
    }


class TransferAgent(ChatRoute):
    """The signed chat route of one transfer agent."""

    def routes(self) -> list[Route]:
        """The routes of this group."""
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/chat/completions", self.record, methods=["GET"]),
        ]

    def context(self) -> TAContext:
        """What requests are checked against right now."""
        config = self.runtime.config
        return TAContext(
            own_address=self.me.info.address,
            models=config.models,
            schemes=self.runtime.schemes,
            now_ns=self.runtime.now_ns(),
            window_back_ns=int(config.window_back_s * 1e9),
            window_ahead_ns=int(config.window_ahead_s * 1e9),
            seen=self.runtime.replays.seen,
            allowlist=self.runtime.allowlist,
            accounts=self.runtime.accounts,
        )

    async def chat(self, request: Request) -> Response:
        """Verify a signed chat request in the network's order, then answer it."""
        self.count_received()
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            return self.finish(ta_error(413, "http: request body too large"))
        try:
            signed = check_signed_request(body, request.headers, self.context())
        except Refusal as refusal:
            replay = refusal.message == REPLAY_MESSAGE
            return self.finish(ta_error(refusal.status, refusal.message), replay=replay)
        fault = self.me.faults.next()
        if fault is not None and fault in ERROR_FAULTS:
            return await self.fail(fault, request)
        self.runtime.replays.mark(signed.signature_raw, signed.timestamp_ns, self.runtime.now_ns())
        self.runtime.pubkeys[signed.requester] = signed.public_key
        response = await self.serve(request, signed, body, fault)
        return self.finish(response, accepted=response.status_code == 200, fault=fault)

    def fault_answer(self, fault: str) -> Response:
        """The answer of an injected error fault (the signature stays unused)."""
        if fault == "drop":
            return Response(status_code=500)  # never sent: the connection is closed instead
        if fault == "429":
            discovery = f"{self.runtime.discovery_url}/v1/epochs/current/participants"
            return ta_error(
                429, f"Transfer Agent capacity reached. Try another TA from {discovery}"
            )
        if fault == "503":
            return ta_error(503, "no executors available for model")
        return ta_error(500, "Inference node response with an error: injected fault")

    async def serve(
        self, request: Request, signed: SignedRequest, body: bytes, fault: str | None
    ) -> Response:
        """Answer with the echo model or the upstream server; the id is the signature."""
        chat, model = signed.chat, signed.model
        self.runtime.records[signed.signature] = self.record_of(signed, body)
        relayed = await self.relay(
            chat, fault, completion_id=signed.signature, headers={}, refuse=ta_error
        )
        if relayed is not None:
            return relayed
        answer = echo_answer(chat, model)
        response_text = "".join(answer.content).encode()
        self.runtime.records.setdefault(signed.signature, {}).update(
            prompt_token_count=answer.prompt_tokens,
            completion_token_count=answer.completion_tokens,
            response_hash=hashlib.sha256(response_text).hexdigest(),
            response_payload=payload_prefix(response_text),
        )
        return await answer_response(
            request,
            self.runtime,
            answer,
            completion_id=signed.signature,
            model=model,
            stream=bool(chat.get("stream")),
            fault=fault,
            headers={},
        )

    def record_of(self, signed: SignedRequest, body: bytes) -> dict[str, Any]:
        """The on-chain record of a served inference."""
        return {
            "inference_id": signed.signature,
            "index": signed.signature,
            "model": signed.model,
            "requested_by": signed.requester,
            "transfer_address": self.me.info.address,
            "executed_by": self.me.info.address,
            "prompt_hash": hashlib.sha256(body).hexdigest(),
            "prompt_payload": payload_prefix(body),
            "prompt_bytes": len(body),
            "request_timestamp": signed.timestamp_ns,
            "start_block_height": self.runtime.block_height(),
            "status": "FINISHED",
        }

    async def record(self, request: Request) -> Response:
        """``GET /v1/chat/completions?id=<signature>``: the record of a served inference."""
        inference_id = request.query_params.get("id", "")
        if not inference_id:
            return ta_error(400, "id is required")
        found = self.runtime.records.get(inference_id)
        if found is None:
            return ta_error(404, "inference not found")
        return json_response({"inference": found})


class RetiredRoutes:
    """A v0.2.14 mainnet node: classic inference routes answer 410 Gone."""

    def __init__(self, runtime: NodeRuntime, me: ParticipantState) -> None:
        self.runtime = runtime
        self.me = me

    def routes(self) -> list[Route]:
        """The routes of this group."""
        return [
            Route("/v1/chat/completions", self.gone, methods=["GET", "POST"]),
            Route("/v1/completions", self.gone, methods=["POST"]),
        ]

    async def gone(self, request: Request) -> Response:
        """410 with ``Deprecation`` and ``Link`` headers."""
        response = json_response(
            RETIRED_BODY, 410, headers={"Deprecation": "true", "Link": DEVSHARD_LINK}
        )
        if request.method == "POST" and request.url.path == "/v1/chat/completions":
            for stats in (self.runtime.stats, self.me.info.stats):
                stats.count_received()
                stats.count_answer(410)
        self.runtime.log(f"[{self.me.info.index}] {request.method} {request.url.path} -> 410")
        return response


def _not_found_handler(envelope: bool) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if envelope:
            error = {"message": message, "type": "invalid_request_error", "code": str(status)}
            return json_response({"error": error}, status)
        return ta_error(status, message)

    return handler


def build_app(runtime: NodeRuntime, me: ParticipantState) -> ASGIApp:
    """The ASGI app of one participant in the configured mode."""
    mode = runtime.config.mode
    if mode == "gateway":
        from gonka_cli.devnode.gateway import Gateway

        routes = Gateway(runtime, me).routes()
    elif mode == "retired":
        routes = RetiredRoutes(runtime, me).routes() + ChainReads(runtime, me).routes()
    else:
        routes = TransferAgent(runtime, me).routes() + ChainReads(runtime, me).routes()
    handler = _not_found_handler(envelope=mode == "gateway")
    app = Starlette(routes=routes, exception_handlers={HTTPException: handler})
    app.add_middleware(NodeDateHeader, runtime=runtime)
    return AnswerWhenCancelled(app, json.dumps(_stopping_error(mode)).encode())


def _stopping_error(mode: str) -> dict[str, Any]:
    message = "the node stopped before this request was answered; retry elsewhere"
    if mode == "gateway":
        return {"error": {"message": message, "type": "service_unavailable", "code": "stopping"}}
    return {"error": message}


class NodeDateHeader:
    """A ``Date`` header from the node's own clock (offset included), as a skewed node sends."""

    def __init__(self, app: ASGIApp, runtime: NodeRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_date(message: Message) -> None:
            if message["type"] == "http.response.start":
                stamp = formatdate(self.runtime.now_ns() / 1e9, usegmt=True)
                message["headers"] = [*message.get("headers", []), (b"date", stamp.encode())]
            await send(message)

        await self.app(scope, receive, send_with_date)
