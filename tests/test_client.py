"""The one send path, against httpx2.MockTransport: bytes, headers, retries, failover, skew."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2
import pytest

from gonka_cli.client import Notice, Outcome, Sender
from gonka_cli.endpoints import Endpoint
from gonka_cli.errors import ConfigError, HTTPClientError, HTTPServerError, NetworkError
from gonka_cli.keys import SigningKey
from gonka_cli.settings import BearerAuth, RetryPolicy, SendConfig, SignedAuth, Timeouts
from gonka_cli.signing import NanoClock, verify_with_address
from tests import vectors as v

T = TypeVar("T")


class FirstFirst(random.Random):
    """Starts every run at the first endpoint; jitter in the middle of its range."""

    def randrange(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def random(self) -> float:
        return 0.5


KEY = SigningKey.from_hex(v.PRIVATE_KEY_HEX)
ADDRESSES = {"a": v.PUBKEY_ADDRESS, "b": v.COSMOS_118_ADDRESS, "c": v.PRIVATE_KEY_ADDRESS}
COMPLETION = {
    "id": "sig",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
Reply = httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@dataclass
class FakeNetwork:
    """Hosts a, b, c answer from a script (then 200); every request is recorded."""

    script: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[httpx2.Request] = field(default_factory=list)
    node_offset_s: float = 0.0
    reads: dict[str, Any] = field(default_factory=dict)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(request)
        if request.url.path in self.reads:
            return httpx2.Response(200, json=self.reads[request.url.path])
        if request.url.path == "/v1/identity":
            stamp = int(time.time() + self.node_offset_s)
            data = {"address": ADDRESSES[request.url.host], "timestamp": stamp}
            return httpx2.Response(200, json={"data": data})
        replies = self.script.get(request.url.host, [])
        reply: Reply = replies.pop(0) if replies else httpx2.Response(200, json=COMPLETION)
        if isinstance(reply, Exception):
            raise reply
        return reply if isinstance(reply, httpx2.Response) else reply(request)

    def posts(self) -> list[httpx2.Request]:
        return [r for r in self.seen if r.method == "POST"]


@dataclass
class Harness:
    network: FakeNetwork
    sleeps: list[float] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)

    def sender(self, config: SendConfig, **options: Any) -> Sender:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        harness = self

        class Pause:
            async def wait(self) -> None:
                return None

            def pause_for(self, seconds: float) -> None:
                harness.pauses.append(seconds)

        return Sender(
            config,
            transport=httpx2.MockTransport(self.network.handler),
            sleep=sleep,
            on_notice=self.notices.append,
            pause=Pause(),
            **{"rng": FirstFirst(), **options},
        )

    def send(self, config: SendConfig, body: bytes = v.BODY, **options: Any) -> Outcome:
        async def go() -> Outcome:
            async with self.sender(config, **options) as sender:
                return await sender.send(body)

        return run(go())


def signed(*hosts: str, **options: Any) -> SendConfig:
    endpoints = tuple(Endpoint(f"http://{h}/v1", ADDRESSES[h]) for h in hosts)
    options.setdefault("retry", RetryPolicy(base_delay=0.1))
    return SendConfig(SignedAuth(KEY), endpoints, **options)


def bearer(**options: Any) -> SendConfig:
    return SendConfig(BearerAuth("obk-secret"), (Endpoint("http://a/v1"),), **options)


def error(status: int, message: str, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": message}, headers=headers)


def openai_error(status: int, message: str, **headers: str) -> httpx2.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
    return httpx2.Response(status, json=body, headers=headers)


def check_signed(request: httpx2.Request, host: str) -> int:
    """Assert the request is signed for `host`'s address over its exact bytes; its timestamp."""
    stamp = int(request.headers["x-timestamp"])
    verify_with_address(
        KEY.address, request.headers["authorization"], request.content, stamp, ADDRESSES[host]
    )
    return stamp


@pytest.fixture
def harness() -> Harness:
    return Harness(FakeNetwork())


def test_signed_request_sends_the_signed_bytes_and_headers(harness: Harness) -> None:
    """The exact body goes out, signed for the TA's address, with the protocol's headers only."""
    outcome = harness.send(signed("a"))
    (request,) = harness.network.posts()
    assert request.content == v.BODY
    assert request.url == "http://a/v1/chat/completions"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-requester-address"] == KEY.address
    assert "x-transfer-address" not in request.headers
    check_signed(request, "a")
    assert outcome.response == COMPLETION
    assert outcome.signature == request.headers["authorization"]
    assert (outcome.attempts, outcome.transfer_address) == (1, ADDRESSES["a"])


def test_bearer_request_has_no_signature_headers(harness: Harness) -> None:
    """A broker request carries the API key as a Bearer token and nothing signed."""
    outcome = harness.send(bearer())
    (request,) = harness.network.posts()
    assert request.headers["authorization"] == "Bearer obk-secret"
    assert "x-requester-address" not in request.headers
    assert "x-timestamp" not in request.headers
    assert request.content == v.BODY
    assert outcome.signature is None


def test_transfer_address_looked_up_once_per_run(harness: Harness) -> None:
    """A node given without its address is asked for it once (GET /v1/identity)."""
    config = SendConfig(SignedAuth(KEY), (Endpoint("http://a/v1"),))

    async def twice() -> None:
        async with harness.sender(config) as sender:
            await sender.send(v.BODY)
            await sender.send(v.BODY)

    run(twice())
    identity = [r for r in harness.network.seen if r.url.path == "/v1/identity"]
    assert len(identity) == 1
    for request in harness.network.posts():
        check_signed(request, "a")


def test_retries_resign_with_increasing_timestamps(harness: Harness) -> None:
    """Every retry carries a fresh, strictly later timestamp and so a fresh signature."""
    harness.network.script["a"] = [error(503, "no executors available"), error(500, "boom")]
    outcome = harness.send(signed("a"))
    posts = harness.network.posts()
    stamps = [check_signed(r, "a") for r in posts]
    assert stamps == sorted(set(stamps))
    assert len({r.headers["authorization"] for r in posts}) == 3
    assert outcome.attempts == 3
    assert len(harness.sleeps) == 2


def test_retry_after_is_honoured_and_pauses_everyone(harness: Harness) -> None:
    """With one endpoint, a 429's Retry-After is waited out and shared through the pause."""
    harness.network.script["a"] = [error(429, "capacity reached", **{"Retry-After": "7"})]
    harness.send(signed("a"))
    assert harness.sleeps == [pytest.approx(7.0, abs=0.1)]
    assert harness.pauses == harness.sleeps


def test_failover_order_and_per_endpoint_signatures(harness: Harness) -> None:
    """On 429 and on a refused connection the next endpoint is tried, signed for its address."""
    harness.network.script = {
        "a": [error(429, "capacity reached", **{"Retry-After": "30"})],
        "b": [httpx2.ConnectError("refused")],
    }
    outcome = harness.send(signed("a", "b", "c"))
    assert [r.url.host for r in harness.network.posts()] == ["a", "b", "c"]
    for request in harness.network.posts():
        check_signed(request, request.url.host)
    assert harness.sleeps == []  # a free endpoint was always there: no waiting
    assert (outcome.attempts, outcome.endpoint) == (3, "http://c/v1")
    assert [n.kind for n in harness.notices] == ["failover", "failover"]


def test_retries_run_out_with_exit_5(harness: Harness) -> None:
    """After --max-retries, a 429 is a final error (exit 5) with the all-busy hint."""
    harness.network.script["a"] = [error(429, "capacity reached")] * 5
    with pytest.raises(HTTPServerError, match=r"after 3 attempts") as caught:
        harness.send(signed("a", retry=RetryPolicy(max_retries=2, base_delay=0.1)))
    assert caught.value.exit_code == 5
    assert "busy" in str(caught.value.hint)
    assert len(harness.network.posts()) == 3


def test_fixed_timestamp_means_one_attempt(harness: Harness) -> None:
    """--timestamp NS is sent exactly once, with that timestamp."""
    harness.network.script["a"] = [error(503, "no executors")]
    with pytest.raises(HTTPServerError):
        harness.send(signed("a", fixed_timestamp=v.TIMESTAMP))
    (request,) = harness.network.posts()
    assert request.headers["x-timestamp"] == str(v.TIMESTAMP)


def test_410_stops_at_once_with_the_broker_hint(harness: Harness) -> None:
    """A retired node is not retried; the hint says to use a broker with --auth bearer."""
    gone = httpx2.Response(
        410,
        json={"error": "deprecated", "message": "classic inference is deprecated; use devshard"},
        headers={"Deprecation": "true", "Link": '</devshard/v1>; rel="successor-version"'},
    )
    harness.network.script["a"] = [gone]
    with pytest.raises(HTTPClientError, match="deprecated") as caught:
        harness.send(signed("a", "b"))
    assert caught.value.exit_code == 4
    assert "--auth bearer" in str(caught.value.hint)
    assert len(harness.network.posts()) == 1


def test_410_in_bearer_mode_says_the_url_is_a_node_not_a_gateway(harness: Harness) -> None:
    """Bearer requests sent to a retired node are told to point at a gateway, not to use bearer."""
    gone = httpx2.Response(
        410,
        json={"error": "deprecated", "message": "classic inference is deprecated; use devshard"},
        headers={"Deprecation": "true"},
    )
    harness.network.script["a"] = [gone]
    with pytest.raises(HTTPClientError) as caught:
        harness.send(bearer())
    hint = str(caught.value.hint)
    assert "not a gateway" in hint
    assert "--auth bearer" not in hint
    assert len(harness.network.posts()) == 1


def moved(new_url: str) -> httpx2.Response:
    body = {"status": 308, "message": "gateway moved", "new_url": new_url}
    return httpx2.Response(308, json=body)


def test_308_new_url_is_reported_not_followed(harness: Harness) -> None:
    """A retired gateway's new_url is named in the error, and not silently followed."""
    harness.network.script["a"] = [moved("http://b/v1")]
    with pytest.raises(HTTPClientError, match=r"moved to http://b/v1") as caught:
        harness.send(bearer())
    assert "--follow-moved" in str(caught.value.hint)
    assert [r.url.host for r in harness.network.posts()] == ["a"]


def test_308_followed_with_follow_moved(harness: Harness) -> None:
    """--follow-moved sends to the new URL of a trusted origin and warns about it."""
    harness.network.script["a"] = [moved("http://b/v1")]
    outcome = harness.send(bearer(follow_moved=True, trusted_origins=frozenset({"http://b:80"})))
    assert [r.url.host for r in harness.network.posts()] == ["a", "b"]
    assert outcome.endpoint == "http://b/v1"
    assert [n.kind for n in harness.notices] == ["moved"]


def test_308_to_another_origin_is_refused_without_trust(harness: Harness) -> None:
    """A move to another host, port or scheme is not followed with the key (issue 13)."""
    for new_url in ("http://b/v1", "http://a:8080/v1", "https://a/v1"):
        harness.network.script["a"] = [moved(new_url)]
        with pytest.raises(HTTPClientError, match="another origin") as caught:
            harness.send(bearer(follow_moved=True))
        assert "--trust-origin" in str(caught.value.hint)
    assert {r.url.host for r in harness.network.posts()} == {"a"}
    assert all(r.url.port is None for r in harness.network.posts())


def test_308_within_the_origin_is_followed(harness: Harness) -> None:
    """A move to another path of the same origin (or a relative one) keeps the key."""
    harness.network.script["a"] = [moved("/v2")]
    outcome = harness.send(bearer(follow_moved=True))
    assert outcome.endpoint == "http://a/v2/v1"


@pytest.mark.parametrize(
    ("status", "message", "auth", "hint"),
    [
        (401, "Unable to validate request against PubKey", "signed", "--scheme"),
        (401, "Invalid API key", "bearer", "GONKA_BROKER_API_KEY"),
        (402, "Insufficient balance", "signed", "--max-tokens"),
        (402, "Insufficient balance", "bearer", "broker balance ran out"),
        (403, "Transfer Agent not allowed", "signed", "allowlist"),
        (403, "model access denied", "bearer", "access"),
        (404, "model not found", "signed", "gonka models"),
        (500, "account gonka1x has no public key", "signed", "publish-pubkey"),
        (400, "AuthKey has already been used for a transfer request", "signed", "--timestamp"),
    ],
)
def test_final_errors_carry_their_fix(
    harness: Harness, status: int, message: str, auth: str, hint: str
) -> None:
    """Each error people hit is final (one attempt) and its hint says what to change."""
    reply = error(status, message) if auth == "signed" else openai_error(status, message)
    harness.network.script["a"] = [reply]
    config = signed("a") if auth == "signed" else bearer()
    with pytest.raises((HTTPClientError, HTTPServerError)) as caught:
        harness.send(config)
    assert message in caught.value.message
    assert hint in str(caught.value.hint)
    assert caught.value.exit_code == (5 if status >= 500 else 4)
    assert len(harness.network.posts()) == 1


def test_skew_is_measured_warned_once_and_retried_once(harness: Harness) -> None:
    """A 'too old' refusal re-signs with the node's time once, with a single warning."""
    harness.network.node_offset_s = 90.0

    def too_old_unless_corrected(request: httpx2.Request) -> httpx2.Response:
        if int(request.headers["x-timestamp"]) < time.time_ns() + 60 * 10**9:
            return error(400, "signature is too old")
        return httpx2.Response(200, json=COMPLETION)

    harness.network.script["a"] = [too_old_unless_corrected, too_old_unless_corrected]

    async def two_sends() -> list[Outcome]:
        async with harness.sender(signed("a"), clock=NanoClock()) as sender:
            return [await sender.send(v.BODY), await sender.send(v.BODY)]

    first, second = run(two_sends())
    assert (first.attempts, second.attempts) == (2, 1)
    warnings = [n for n in harness.notices if n.kind == "skew"]
    assert len(warnings) == 1
    assert "90" in warnings[0].message or "89" in warnings[0].message
    assert "NTP" in warnings[0].message


def test_skew_that_persists_is_final(harness: Harness) -> None:
    """When the corrected time is refused too, the clock error is final with its hint."""
    harness.network.node_offset_s = 90.0
    harness.network.script["a"] = [error(400, "signature is in the future")] * 3
    with pytest.raises(HTTPClientError, match="in the future") as caught:
        harness.send(signed("a"), clock=NanoClock())
    assert "NTP" in str(caught.value.hint)
    assert len(harness.network.posts()) == 2


def test_a_far_date_header_is_warned_about_before_any_refusal(harness: Harness) -> None:
    """A node whose Date is 45 s ahead is noticed once, and later requests use its time."""
    ahead = email.utils.formatdate(time.time() + 45, usegmt=True)
    harness.network.script["a"] = [httpx2.Response(200, json=COMPLETION, headers={"Date": ahead})]

    async def two_sends() -> int:
        async with harness.sender(signed("a"), clock=NanoClock()) as sender:
            await sender.send(v.BODY)
            await sender.send(v.BODY)
        return int(harness.network.posts()[1].headers["x-timestamp"])

    second_stamp = run(two_sends())
    assert [n.kind for n in harness.notices] == ["skew"]
    assert second_stamp > time.time_ns() + 40 * 10**9


def sse(*events: str) -> bytes:
    return "".join(f"data: {event}\n\n" for event in events).encode()


def chunk(**delta: str) -> str:
    return json.dumps({"id": "sig", "model": "m", "choices": [{"index": 0, "delta": delta}]})


class CollectSink:
    """Keeps what arrives; it 'prints' only answer text, as text mode does."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.thoughts: list[str] = []
        self.raws: list[str] = []
        self.printed = False

    def content(self, text: str) -> None:
        self.texts.append(text)
        self.printed = True

    def reasoning(self, text: str) -> None:
        self.thoughts.append(text)

    def raw(self, text: str) -> None:
        self.raws.append(text)


def stream_response(*parts: bytes, fail: Exception | None = None) -> httpx2.Response:
    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
        if fail is not None:
            raise fail

    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def send_streamed(harness: Harness, config: SendConfig) -> tuple[Outcome, CollectSink]:
    sink = CollectSink()

    async def go() -> Outcome:
        async with harness.sender(config) as sender:
            return await sender.send(v.BODY, sink=sink)

    return run(go()), sink


def test_stream_is_delivered_live_and_assembled(harness: Harness) -> None:
    """Deltas reach the sink as they come; the outcome holds one assembled completion."""
    usage = json.dumps({"id": "sig", "choices": [], "usage": {"total_tokens": 5}})
    text = sse(chunk(reasoning_content="hmm"), chunk(content="Pa"), chunk(content="ris"), usage)
    harness.network.script["a"] = [stream_response(text, sse("[DONE]"))]
    outcome, sink = send_streamed(harness, signed("a"))
    assert (sink.texts, sink.thoughts) == (["Pa", "ris"], ["hmm"])
    assert "".join(sink.raws) == (text + sse("[DONE]")).decode()
    message = outcome.response["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("Paris", "hmm")
    assert outcome.usage == {"total_tokens": 5}
    assert outcome.streamed
    assert outcome.ttft_s is not None


def test_stream_cut_after_content_is_not_retried(harness: Harness) -> None:
    """A stream that breaks after printing text is reported as cut off (exit 6), no retry."""
    cut = stream_response(sse(chunk(content="Par")), fail=httpx2.ReadError("connection reset"))
    harness.network.script["a"] = [cut]
    with pytest.raises(NetworkError, match="cut off") as caught:
        send_streamed(harness, signed("a"))
    assert caught.value.exit_code == 6
    assert len(harness.network.posts()) == 1


def test_stream_cut_before_content_is_retried(harness: Harness) -> None:
    """A stream that ends before any text (no [DONE]) is retried with a fresh signature."""
    harness.network.script["a"] = [stream_response(sse(chunk(role="assistant")))]
    outcome, sink = send_streamed(harness, signed("a"))
    assert outcome.attempts == 2
    assert sink.texts == ["Paris"]


def test_error_event_mid_stream(harness: Harness) -> None:
    """An error event after content is final (exit 5) and says the answer is cut off."""
    events = sse(chunk(content="Pa"), json.dumps({"error": {"message": "upstream died"}}))
    harness.network.script["a"] = [stream_response(events)]
    with pytest.raises(HTTPServerError, match=r"upstream died.*cut off"):
        send_streamed(harness, signed("a"))


def test_discovery_uses_only_usable_participants(harness: Harness) -> None:
    """--source-url: excluded and non-allowlisted participants are never sent to."""
    model = json.loads(v.BODY)["model"]
    participants = [
        {"index": ADDRESSES[h], "inference_url": f"http://{h}", "models": [model]} for h in "abc"
    ]
    harness.network.reads = {
        "/v1/epochs/current/participants": {
            "active_participants": {"participants": participants},
            "excluded_participants": [{"address": ADDRESSES["b"], "reason": "x"}],
        },
        "/chain-api/productscience/inference/inference/params": {
            "params": {"transfer_agent_access_params": {"allowed_transfer_addresses": []}}
        },
    }

    async def four() -> None:
        async with harness.sender(SendConfig(SignedAuth(KEY), (), "http://a/v1")) as sender:
            for _ in range(4):
                await sender.send(v.BODY)

    run(four())
    assert [r.url.host for r in harness.network.posts()] == ["a", "c", "a", "c"]
    for request in harness.network.posts():
        check_signed(request, request.url.host)


def test_whole_request_timeout_names_the_flag() -> None:
    """--timeout bounds the whole request and the error names the flag."""

    async def slow(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(5)
        return httpx2.Response(200, json=COMPLETION)

    config = signed("a", timeouts=Timeouts(total=0.05))

    async def go() -> None:
        async with Sender(config, transport=httpx2.MockTransport(slow)) as sender:
            await sender.send(v.BODY)

    with pytest.raises(NetworkError, match=r"--timeout 0\.05") as caught:
        run(go())
    assert caught.value.exit_code == 6


def test_connect_failures_exhaust_to_exit_6(harness: Harness) -> None:
    """Endpoints that never answer end in a network error naming the URL, after 1 + 5
    attempts spread over them (a single one gets one retry: see test_wrong_way_in)."""
    harness.network.script["a"] = [httpx2.ConnectError("refused")] * 6
    harness.network.script["b"] = [httpx2.ConnectError("refused")] * 6
    with pytest.raises(NetworkError, match=r"could not connect to http://[ab]/v1/chat/completions"):
        harness.send(signed("a", "b"))
    assert len(harness.network.posts()) == 6


def test_model_nobody_serves_is_refused_before_sending(harness: Harness) -> None:
    """Endpoints known not to serve the body's model are never sent to."""
    config = SendConfig(
        SignedAuth(KEY), (Endpoint("http://a/v1", ADDRESSES["a"], frozenset({"other"})),)
    )
    with pytest.raises(HTTPClientError, match="no endpoint serves model"):
        harness.send(config)
    assert harness.network.posts() == []


def test_no_usable_participant_is_a_config_error() -> None:
    """Discovery that yields nothing usable stops with a pointer to gonka endpoints."""

    def empty(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"active_participants": {"participants": []}})

    async def go() -> None:
        config = SendConfig(SignedAuth(KEY), (), "http://a/v1")
        async with Sender(config, transport=httpx2.MockTransport(empty)) as sender:
            await sender.send(v.BODY)

    with pytest.raises(ConfigError, match="no usable transfer agent"):
        run(go())
