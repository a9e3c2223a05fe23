"""GonkaTransport and AsyncGonkaTransport: the OpenAI SDK (3.x, unchanged) through faulty
transfer agents of the dev node, and the rules of each attempt pinned with MockTransport."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from gonka_cli import (
    AsyncGonkaTransport,
    GonkaTransport,
    HTTPClientError,
    HTTPServerError,
    NetworkError,
    SigningKey,
    UsageError,
    load_key,
    verify,
)
from gonka_cli.pytest_plugin import GonkaNode, GonkaNodeFactory
from tests import vectors as v

MODEL = "Qwen/QwQ-32B"
FAULTS = ("429", "500", "503", "drop")
TA_A, TA_B = v.PUBKEY_ADDRESS, v.PRIVATE_KEY_ADDRESS
KEY = SigningKey.from_hex(v.PRIVATE_KEY_HEX)


def messages(text: str) -> Any:
    return [{"role": "user", "content": text}]


def sync_openai(transport: GonkaTransport) -> OpenAI:
    return OpenAI(
        base_url="http://gonka/v1", api_key="unused", http_client=httpx2.Client(transport=transport)
    )


def ask(client: OpenAI, text: str, *, stream: bool) -> str:
    """One answer's text through the OpenAI SDK, streamed or not."""
    if not stream:
        answer = client.chat.completions.create(model=MODEL, messages=messages(text))
        return answer.choices[0].message.content or ""
    chunks = client.chat.completions.create(model=MODEL, messages=messages(text), stream=True)
    with chunks:
        parts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    return "".join(parts)


def assert_clean(node: GonkaNode, served: int) -> None:
    """Every request served once: no replay, no rejected signature, faults were met."""
    stats = node.stats.snapshot()
    assert node.stats.accepted == served
    assert node.stats.replays_refused == 0
    assert 401 not in node.stats.by_status
    assert sum(node.stats.faults.values()) > 0, stats


# --- the OpenAI SDK against the dev node -------------------------------------------------------


def test_done_when_the_issue_snippet_survives_faulty_tas(
    gonka_node_factory: GonkaNodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's snippet, 3 TAs with 20% faults: 50 requests, 10 streamed, all answered."""
    node = gonka_node_factory(participants=3, fault_rate=0.2, faults=FAULTS, seed=11)
    monkeypatch.setenv("GONKA_PRIVATE_KEY", node.key.to_hex())
    NODE = node.url  # the issue's name
    client = OpenAI(
        base_url="http://gonka/v1",
        api_key="unused",
        http_client=httpx2.Client(transport=GonkaTransport(load_key(), source_url=NODE)),
    )
    with client:
        answers = [ask(client, f"question {n}", stream=n % 5 == 0) for n in range(50)]
    assert answers == [f"Echo: question {n}" for n in range(50)]
    assert_clean(node, 50)


def test_async_openai_through_faulty_tas(gonka_node_factory: GonkaNodeFactory) -> None:
    """AsyncOpenAI, 30 concurrent requests (half streamed) over (url, address) pairs: all served."""
    node = gonka_node_factory(participants=3, fault_rate=0.2, faults=FAULTS, seed=5)
    pairs = list(zip(node.urls, node.addresses, strict=True))

    async def one(client: AsyncOpenAI, n: int) -> str:
        text = f"async {n}"
        if n % 2:
            answer = await client.chat.completions.create(model=MODEL, messages=messages(text))
            return answer.choices[0].message.content or ""
        chunks = await client.chat.completions.create(
            model=MODEL, messages=messages(text), stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

    async def main() -> list[str]:
        # 30 requests at once: their retries arrive together, and a fast-failing retrier can
        # draw a run of a TA's seeded faults in a row, so a larger budget than the default.
        transport = AsyncGonkaTransport(node.key, endpoints=pairs, base_delay=0.02, max_retries=10)
        async with httpx2.AsyncClient(transport=transport) as http:
            client = AsyncOpenAI(base_url="http://gonka/v1", api_key="unused", http_client=http)
            return await asyncio.gather(*(one(client, n) for n in range(30)))

    assert asyncio.run(main()) == [f"Echo: async {n}" for n in range(30)]
    assert_clean(node, 30)


def test_a_cut_stream_reaches_the_sdk_as_a_clean_error(
    gonka_node_factory: GonkaNodeFactory,
) -> None:
    """A stream cut after content is delivered raises NetworkError in the loop, at once."""
    node = gonka_node_factory(fault_rate=1.0, faults=("cut",))
    client = sync_openai(GonkaTransport(node.key, endpoints=node.endpoints))
    started = time.monotonic()
    with client, pytest.raises(NetworkError, match="cut off; not retried") as cut:
        ask(client, "a long enough question to cut", stream=True)
    assert time.monotonic() - started < 10
    assert cut.value.exit_code == 6
    assert node.stats.received == 1  # delivered bytes: never retried


def test_a_cut_stream_async(gonka_node_factory: GonkaNodeFactory) -> None:
    """The same through AsyncOpenAI and AsyncGonkaTransport."""
    node = gonka_node_factory(fault_rate=1.0, faults=("cut",))

    async def main() -> None:
        transport = AsyncGonkaTransport(node.key, endpoints=node.endpoints)
        async with httpx2.AsyncClient(transport=transport) as http:
            client = AsyncOpenAI(base_url="http://gonka/v1", api_key="unused", http_client=http)
            chunks = await client.chat.completions.create(
                model=MODEL, messages=messages("cut me"), stream=True
            )
            async for _ in chunks:
                pass

    with pytest.raises(NetworkError, match="cut off"):
        asyncio.run(asyncio.wait_for(main(), 20))
    assert node.stats.received == 1


def test_a_cut_non_streamed_answer_is_retried(gonka_node_factory: GonkaNodeFactory) -> None:
    """A JSON answer cut in half was never handed over, so it is retried on the other TA."""
    node = gonka_node_factory(
        participants=2, fault_rate=1.0, faults=("cut",), fault_participants=(0,)
    )
    client = sync_openai(
        GonkaTransport(node.key, endpoints=node.endpoints[:1] + node.endpoints[1:])
    )
    with client:
        answers = [ask(client, f"q{n}", stream=False) for n in range(4)]
    assert answers == [f"Echo: q{n}" for n in range(4)]
    assert node.stats.faults.get("cut", 0) >= 1


def test_a_streamed_answer_flows_through_live(gonka_node_factory: GonkaNodeFactory) -> None:
    """With the node pacing tokens, the first bytes arrive long before the last (no buffering)."""
    node = gonka_node_factory(tokens_per_second=40)
    body = json.dumps({"model": MODEL, "messages": messages("one two three four five six"),
                       "stream": True}).encode()  # fmt: skip
    transport = GonkaTransport(node.key, endpoints=node.endpoints)
    with httpx2.Client(transport=transport, timeout=30) as http:
        started = time.monotonic()
        with http.stream("POST", "http://gonka/v1/chat/completions", content=body) as response:
            arrivals = [time.monotonic() - started for _ in response.iter_bytes()]
    assert len(arrivals) > 3
    assert arrivals[0] < arrivals[-1] / 2


def test_a_retired_node_stops_at_once_with_the_cli_hint(
    gonka_node_factory: GonkaNodeFactory,
) -> None:
    """410 Gone is raised through the OpenAI SDK unchanged, after exactly one request."""
    node = gonka_node_factory(mode="retired")
    client = sync_openai(GonkaTransport(node.key, endpoints=[f"{node.url};{node.addresses[0]}"]))
    with client, pytest.raises(HTTPClientError, match="HTTP 410") as gone:
        ask(client, "hello", stream=False)
    assert gone.value.status_code == 410
    assert gone.value.hint is not None
    assert "broker" in gone.value.hint
    assert node.stats.received == 1


def test_a_bare_url_endpoint_learns_its_address(gonka_node_factory: GonkaNodeFactory) -> None:
    """An endpoint given without an address is signed for the one /v1/identity gives."""
    node = gonka_node_factory()
    with sync_openai(GonkaTransport(node.key, endpoints=[node.url])) as client:
        assert ask(client, "who", stream=False) == "Echo: who"
    assert node.stats.accepted == 1


def test_a_node_clock_far_behind_is_adopted(gonka_node_factory: GonkaNodeFactory) -> None:
    """Against a node 90 s behind, requests are signed with its time and served."""
    node = gonka_node_factory(clock_offset_s=-90)
    with sync_openai(GonkaTransport(node.key, endpoints=node.endpoints)) as client:
        answers = [ask(client, f"t{n}", stream=False) for n in range(3)]
    assert answers == ["Echo: t0", "Echo: t1", "Echo: t2"]
    assert node.stats.by_status.get(400, 0) <= 1
    assert node.stats.accepted == 3


def test_the_openai_sdk_against_a_gateway_needs_nothing_of_ours(
    gonka_node_factory: GonkaNodeFactory,
) -> None:
    """Gateway mode: the OpenAI SDK with the Bearer key is served; a wrong key is refused."""
    node = gonka_node_factory(mode="gateway")
    assert node.api_key is not None
    with OpenAI(base_url=node.base_url, api_key=node.api_key) as client:
        assert ask(client, "broker", stream=False) == "Echo: broker"
        assert ask(client, "broker", stream=True) == "Echo: broker"
    with (
        OpenAI(base_url=node.base_url, api_key="sk-wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        ask(client, "broker", stream=False)


def test_no_reachable_ta_is_a_network_error() -> None:
    """Every endpoint refusing connections ends in NetworkError after the retry budget."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = GonkaTransport(KEY, endpoints=[f"http://127.0.0.1:{port};{TA_A}"],
                               max_retries=2, base_delay=0.01)  # fmt: skip
    with httpx2.Client(transport=transport) as http, pytest.raises(NetworkError) as failed:
        http.post("http://gonka/v1/chat/completions", content=b"{}")
    assert "could not connect" in failed.value.message
    assert "after 3 attempts" in failed.value.message


# --- each attempt, pinned with MockTransport ---------------------------------------------------


OK = {"id": "x", "object": "chat.completion", "choices": []}


def mock(
    answers: list[httpx2.Response], seen: list[httpx2.Request]
) -> Callable[[httpx2.Request], httpx2.Response]:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return answers.pop(0)

    return handler


@pytest.fixture
def seen() -> list[httpx2.Request]:
    return []


def test_the_request_is_re_aimed_and_signed_for_the_ta(seen: list[httpx2.Request]) -> None:
    """Any host becomes the TA; the path after /v1 and the query stay; the body is signed."""
    inner = httpx2.MockTransport(mock([httpx2.Response(200, json=OK)], seen))
    transport = GonkaTransport(KEY, endpoints=[f"http://ta.test:8000;{TA_A}"], transport=inner)
    with httpx2.Client(transport=transport) as http:
        http.post(
            "https://api.example.com/v1/chat/completions?debug=1",
            content=v.BODY,
            headers={"Authorization": "Bearer unused", "X-Transfer-Address": TA_B, "X-Keep": "1"},
        )
    (sent,) = seen
    assert str(sent.url) == "http://ta.test:8000/v1/chat/completions?debug=1"
    assert sent.content == v.BODY
    assert "x-transfer-address" not in sent.headers
    assert sent.headers["x-keep"] == "1"
    assert sent.headers["x-requester-address"] == KEY.address
    verify(v.BODY, sent.headers["authorization"], address=KEY.address,
           timestamp_ns=int(sent.headers["x-timestamp"]), transfer_address=TA_A)  # fmt: skip


def test_a_path_without_v1_is_kept_whole(seen: list[httpx2.Request]) -> None:
    """A client whose base URL lacks /v1 still reaches the TA's /v1 routes."""
    inner = httpx2.MockTransport(mock([httpx2.Response(200, json=OK)], seen))
    transport = GonkaTransport(KEY, endpoints=[("http://ta.test:8000/v1", TA_A)], transport=inner)
    with httpx2.Client(transport=transport) as http:
        http.get("http://anywhere/models")
    assert str(seen[0].url) == "http://ta.test:8000/v1/models"


def test_each_attempt_is_signed_afresh_for_its_own_ta(seen: list[httpx2.Request]) -> None:
    """503 then 429 then 200 across two TAs: three timestamps, each signed for its TA."""
    answers = [httpx2.Response(503, json={"error": "no executors available for model"}),
               httpx2.Response(429, json={"error": "Transfer Agent capacity reached"}),
               httpx2.Response(200, json=OK)]  # fmt: skip
    inner = httpx2.MockTransport(mock(answers, seen))
    endpoints = [f"http://a.test;{TA_A}", f"http://b.test;{TA_B}"]
    transport = GonkaTransport(KEY, endpoints=endpoints, transport=inner, base_delay=0.01)
    with httpx2.Client(transport=transport) as http:
        assert http.post("http://gonka/v1/chat/completions", content=v.BODY).status_code == 200
    stamps = [int(r.headers["x-timestamp"]) for r in seen]
    assert stamps == sorted(set(stamps))
    hosts = [r.url.host for r in seen]
    assert hosts[0] != hosts[1]  # failover
    for request in seen:
        address = TA_A if request.url.host == "a.test" else TA_B
        stamp = int(request.headers["x-timestamp"])
        signature = request.headers["authorization"]
        verify(v.BODY, signature, address=KEY.address, timestamp_ns=stamp, transfer_address=address)


def test_retry_after_is_honoured(seen: list[httpx2.Request]) -> None:
    """A 429 asking for 0.3 s is waited out (one TA: nowhere else to go)."""
    answers = [httpx2.Response(429, headers={"Retry-After": "0.3"}, json={"error": "busy"}),
               httpx2.Response(200, json=OK)]  # fmt: skip
    inner = httpx2.MockTransport(mock(answers, seen))
    transport = GonkaTransport(KEY, endpoints=[f"http://a.test;{TA_A}"], transport=inner)
    started = time.monotonic()
    with httpx2.Client(transport=transport) as http:
        assert http.post("http://gonka/v1/chat/completions", content=v.BODY).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_wait_beyond_the_limit_is_not_waited(seen: list[httpx2.Request]) -> None:
    """Retry-After above max_retry_after ends at once with the server's request named."""
    answers = [httpx2.Response(429, headers={"Retry-After": "600"}, json={"error": "busy"})]
    inner = httpx2.MockTransport(mock(answers, seen))
    transport = GonkaTransport(KEY, endpoints=[f"http://a.test;{TA_A}"], transport=inner)
    with httpx2.Client(transport=transport) as http, pytest.raises(HTTPServerError) as busy:
        http.post("http://gonka/v1/chat/completions", content=v.BODY)
    assert "asked to wait 600 s" in busy.value.message
    assert len(seen) == 1


def test_a_refused_signature_is_not_retried(seen: list[httpx2.Request]) -> None:
    """401 is final: one attempt, the CLI's hint about scheme and transfer address."""
    answers = [httpx2.Response(401, json={"error": "Unable to validate request against PubKey"})]
    inner = httpx2.MockTransport(mock(answers, seen))
    transport = GonkaTransport(KEY, endpoints=[f"http://a.test;{TA_A}"], transport=inner)
    with httpx2.Client(transport=transport) as http, pytest.raises(HTTPClientError) as refused:
        http.post("http://gonka/v1/chat/completions", content=v.BODY)
    assert refused.value.hint is not None
    assert "--scheme" in refused.value.hint
    assert len(seen) == 1


def test_a_stream_ending_before_done_is_an_error() -> None:
    """An event stream that ends cleanly but without data: [DONE] is reported, not taken whole."""
    sse = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    inner = httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse
        )
    )
    transport = GonkaTransport(KEY, endpoints=[f"http://a.test;{TA_A}"], transport=inner)
    with httpx2.Client(transport=transport) as http, pytest.raises(NetworkError, match=r"\[DONE\]"):
        http.post("http://gonka/v1/chat/completions", content=v.BODY).read()


def test_done_split_across_chunks_is_recognised() -> None:
    """data: [DONE] arriving in pieces still ends the stream cleanly."""
    pieces = [b'data: {"choices":[]}\n\nda', b"ta: [DO", b"NE]\n\n"]
    inner = httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(pieces)
        )
    )
    transport = GonkaTransport(KEY, endpoints=[f"http://a.test;{TA_A}"], transport=inner)
    with httpx2.Client(transport=transport) as http:
        assert http.post("http://gonka/v1/chat/completions", content=v.BODY).content == b"".join(
            pieces
        )


def test_endpoints_as_one_string_are_split_as_gonka_endpoints(seen: list[httpx2.Request]) -> None:
    """endpoints="url;addr,url;addr" means two endpoints, not a list of characters."""
    answers = [httpx2.Response(503, json={"error": "busy"}), httpx2.Response(200, json=OK)]
    inner = httpx2.MockTransport(mock(answers, seen))
    both = f"http://a.test;{TA_A}, http://b.test;{TA_B}"
    transport = GonkaTransport(KEY, endpoints=both, transport=inner, base_delay=0.01)
    with httpx2.Client(transport=transport) as http:
        assert http.post("http://gonka/v1/chat/completions", content=v.BODY).status_code == 200
    assert {r.url.host for r in seen} == {"a.test", "b.test"}


def test_an_answer_over_the_size_limit_is_refused_not_retried(seen: list[httpx2.Request]) -> None:
    """A non-streamed answer over max_response_bytes: NetworkError naming the limit, once."""
    answers = [httpx2.Response(200, content=b'{"choices": "' + b"x" * 5000 + b'"}')]
    inner = httpx2.MockTransport(mock(answers, seen))
    transport = GonkaTransport(
        KEY, endpoints=[f"http://a.test;{TA_A}"], transport=inner, max_response_bytes=1000
    )
    with httpx2.Client(transport=transport) as http, pytest.raises(NetworkError, match="1,000"):
        http.post("http://gonka/v1/chat/completions", content=v.BODY)
    assert len(seen) == 1


def test_bad_set_up_is_refused_before_sending() -> None:
    """No endpoints, a bad endpoint, a bad scheme or no key: our own errors, at construction."""
    with pytest.raises(UsageError, match="no endpoints"):
        GonkaTransport(KEY)
    with pytest.raises(UsageError):
        GonkaTransport(KEY, endpoints=["ftp://a;gonka1"])
    with pytest.raises(UsageError, match="hash or raw"):
        AsyncGonkaTransport(KEY, endpoints=[f"http://a.test;{TA_A}"], scheme="sha3")
    with pytest.raises(Exception, match="SigningKey"):
        GonkaTransport(v.PRIVATE_KEY_HEX, endpoints=[f"http://a.test;{TA_A}"])  # type: ignore[arg-type]
