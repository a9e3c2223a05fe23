"""The dev node's other faces (gateway, retired), fault injection, and upstream relaying."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest

from gonka_cli.devnode import NodeConfig, fault_sequence, start_node
from gonka_cli.devnode.server import RunningNode
from tests.test_devnode_support import (
    QUESTION,
    body_of,
    payload,
    post_signed,
    signed_headers,
    stream_chunks,
)

CHAT = body_of(model="Qwen/QwQ-32B", messages=[{"role": "user", "content": QUESTION}])
STREAM = body_of(model="echo", messages=[{"role": "user", "content": QUESTION}], stream=True)
FAULT_STATUS = {None: 200, "429": 429, "500": 500, "503": 503}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningNode]:
    with start_node(NodeConfig(mode="gateway", api_keys=("sk-good",))) as running:
        yield running


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def test_gateway_answers_with_devshard_id_and_headers(
    gateway: RunningNode, client: httpx2.Client
) -> None:
    """A good key gets 200, X-Request-Id, X-Devshard-ID and an id devshard-<escrow>-<nonce>."""
    url = gateway.url + "/v1/chat/completions"
    first = client.post(url, content=CHAT, headers=bearer("sk-good"))
    second = client.post(url, content=CHAT, headers=bearer("sk-good"))
    assert (first.status_code, second.status_code) == (200, 200)
    escrow = first.headers["X-Devshard-ID"]
    nonce = int(first.json()["id"].rsplit("-", 1)[1])
    assert first.json()["id"] == f"devshard-{escrow}-{nonce}"
    assert second.json()["id"] == f"devshard-{escrow}-{nonce + 1}"
    assert first.json()["usage"]["total_tokens"] > 0
    record = client.get(
        f"{gateway.url}/v1/requests/{first.headers['X-Request-Id']}", headers=bearer("sk-good")
    )
    assert record.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}])
def test_gateway_refuses_bad_keys_in_the_openai_envelope(
    gateway: RunningNode, client: httpx2.Client, headers: dict[str, str]
) -> None:
    """A missing or wrong key is 401 with {"error": {"message", "type", "code"}}."""
    response = client.post(gateway.url + "/v1/chat/completions", content=CHAT, headers=headers)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "code"}


def test_gateway_reads(gateway: RunningNode, client: httpx2.Client) -> None:
    """/v1/models lists the models OpenAI-style and /v1/status says they are routable."""
    models = client.get(gateway.url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["Qwen/QwQ-32B", "echo"]
    status = client.get(gateway.url + "/v1/status").json()
    assert all(m["routable"] for m in status["models"])


def test_gateway_balance_runs_out_with_402(client: httpx2.Client) -> None:
    """A key with 1 token left is served once, then refused with 402; 0 is refused at once."""
    config = NodeConfig(mode="gateway", api_keys=("sk-a",), key_balance=1)
    with start_node(config) as node:
        url = node.url + "/v1/chat/completions"
        assert client.post(url, content=CHAT, headers=bearer("sk-a")).status_code == 200
        spent = client.post(url, content=CHAT, headers=bearer("sk-a"))
        assert spent.status_code == 402
        assert spent.json()["error"]["type"] == "insufficient_balance"
    with start_node(NodeConfig(mode="gateway", key_balance=0)) as node:
        response = client.post(
            node.url + "/v1/chat/completions", content=CHAT, headers=bearer(node.api_keys[0])
        )
        assert response.status_code == 402


def test_retired_gateway_answers_308_with_new_url(client: httpx2.Client) -> None:
    """--retired-to: 308, JSON new_url, no Location header."""
    config = NodeConfig(mode="gateway", retired_to="https://new.example/v1")
    with start_node(config) as node:
        response = client.post(
            node.url + "/v1/chat/completions", content=CHAT, headers=bearer(node.api_keys[0])
        )
    assert response.status_code == 308
    assert "location" not in response.headers
    assert response.json()["new_url"] == "https://new.example/v1"
    assert response.json()["status"] == 308


def test_gateway_faults_carry_retry_after(client: httpx2.Client) -> None:
    """A gateway's 429 and 503 carry Retry-After, in the OpenAI envelope."""
    config = NodeConfig(mode="gateway", api_keys=("k",), fault_rate=1.0, faults=("429", "503"))
    with start_node(config) as node:
        for _ in range(4):
            response = client.post(
                node.url + "/v1/chat/completions", content=CHAT, headers=bearer("k")
            )
            assert response.status_code in (429, 503)
            assert int(response.headers["Retry-After"]) >= 1
            assert "message" in response.json()["error"]


def test_retired_mode_is_410_on_every_classic_route(client: httpx2.Client) -> None:
    """Classic inference routes answer 410 with Deprecation and Link; discovery still works."""
    with start_node(NodeConfig(mode="retired")) as node:
        ta = node.participants[0].address
        answers = [
            client.post(
                node.url + "/v1/chat/completions",
                content=payload(),
                headers=signed_headers(payload(), ta),
            ),
            client.get(node.url + "/v1/chat/completions", params={"id": "x"}),
            client.post(node.url + "/v1/completions", content=b"{}"),
        ]
        for response in answers:
            assert response.status_code == 410
            assert response.headers["Deprecation"] == "true"
            assert response.headers["Link"] == '</devshard/v4>; rel="successor-version"'
            assert response.json() == {
                "error": "deprecated",
                "message": "classic inference is deprecated; use devshard",
            }
        assert client.get(node.url + "/v1/identity").json()["data"]["address"] == ta
        listed = client.get(node.url + "/v1/epochs/current/participants").json()
        assert listed["active_participants"]["participants"][0]["index"] == ta
        assert node.stats.by_status == {410: 1}


def run_statuses(config: NodeConfig, client: httpx2.Client, count: int) -> list[int]:
    """Statuses of `count` freshly signed requests to participant 0."""
    with start_node(config) as node:
        ta = node.participants[0].address
        return [post_signed(client, node.url, CHAT, ta).status_code for _ in range(count)]


def test_faults_are_reproducible_for_a_seed(client: httpx2.Client) -> None:
    """The same seed gives the same faults in the predicted order; another seed differs."""
    kinds = ("429", "500", "503")
    config = NodeConfig(seed=7, fault_rate=0.5, faults=kinds)
    predicted = [FAULT_STATUS[f] for f in fault_sequence(7, 0, 0.5, kinds, 12)]
    assert set(predicted) > {200}  # the seed does fault, and does not always fault
    assert run_statuses(config, client, 12) == predicted
    assert run_statuses(config, client, 12) == predicted
    other = [FAULT_STATUS[f] for f in fault_sequence(8, 0, 0.5, kinds, 12)]
    assert other != predicted


def test_faults_are_per_participant(client: httpx2.Client) -> None:
    """With only participant 0 faulting, it answers 429 pointing at discovery; 1 serves."""
    config = NodeConfig(participants=2, fault_rate=1.0, faults=("429",), fault_participants=(0,))
    with start_node(config) as node:
        busy, free = node.participants
        refused = post_signed(client, busy.url, CHAT, busy.address)
        assert refused.status_code == 429
        assert f"{node.url}/v1/epochs/current/participants" in refused.json()["error"]
        assert post_signed(client, free.url, CHAT, free.address).status_code == 200
        assert (busy.stats.faults, free.stats.faults) == ({"429": 1}, {})


def test_a_faulted_request_does_not_consume_its_signature(client: httpx2.Client) -> None:
    """Resending the very request that got 429 is served, not refused as a replay."""
    seed = next(s for s in range(200) if fault_sequence(s, 0, 0.5, ("429",), 2) == ["429", None])
    with start_node(NodeConfig(seed=seed, fault_rate=0.5, faults=("429",))) as node:
        headers = signed_headers(CHAT, node.participants[0].address)
        url = node.url + "/v1/chat/completions"
        assert client.post(url, content=CHAT, headers=headers).status_code == 429
        assert client.post(url, content=CHAT, headers=headers).status_code == 200


def test_drop_closes_the_connection_unanswered(client: httpx2.Client) -> None:
    """The drop fault closes the connection before any byte of answer."""
    with start_node(NodeConfig(fault_rate=1.0, faults=("drop",))) as node:
        with pytest.raises(httpx2.RemoteProtocolError):
            post_signed(client, node.url, CHAT, node.participants[0].address)
        assert node.stats.faults == {"drop": 1}
        assert node.stats.by_status == {}


def read_stream(client: httpx2.Client, url: str, headers: dict[str, str], into: list[str]) -> None:
    """Stream a chat answer line by line into `into` (kept when the stream breaks)."""
    with client.stream("POST", url + "/v1/chat/completions", content=STREAM, headers=headers) as r:
        into.extend(r.iter_lines())


def test_cut_ends_the_stream_midway(client: httpx2.Client) -> None:
    """The cut fault sends part of the stream, never [DONE], then closes the connection."""
    with start_node(NodeConfig(fault_rate=1.0, faults=("cut",))) as node:
        ta = node.participants[0].address
        received: list[str] = []
        with pytest.raises(httpx2.RemoteProtocolError):
            read_stream(client, node.url, signed_headers(STREAM, ta), received)
        chunks, done = stream_chunks("\n".join(received))
        assert chunks
        assert not done
        with pytest.raises(httpx2.RemoteProtocolError):
            post_signed(client, node.url, CHAT, ta)  # a JSON answer shorter than its length


def test_slow_delays_the_first_byte(client: httpx2.Client) -> None:
    """The slow fault answers normally after --slow-ms."""
    with start_node(NodeConfig(fault_rate=1.0, faults=("slow",), slow_ms=300)) as node:
        started = time.monotonic()
        response = post_signed(client, node.url, CHAT, node.participants[0].address)
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3


def test_pacing_spreads_tokens_over_time(client: httpx2.Client) -> None:
    """tokens_per_second and latency_ms slow an answer down by the expected amount."""
    with start_node(NodeConfig(tokens_per_second=100, latency_ms=100)) as node:
        started = time.monotonic()
        response = post_signed(client, node.url, STREAM, node.participants[0].address)
        elapsed = time.monotonic() - started
    chunks, done = stream_chunks(response.text)
    assert done
    assert elapsed >= 0.1 + (len(chunks) - 1) / 100 * 0.9


def test_upstream_answers_are_relayed_with_the_signature_as_id(
    gateway: RunningNode, client: httpx2.Client
) -> None:
    """--upstream: a verified request is answered by the upstream server, id replaced."""
    config = NodeConfig(upstream=gateway.base_url, upstream_api_key="sk-good")
    with start_node(config) as node:
        ta = node.participants[0].address
        headers = signed_headers(CHAT, ta)
        plain = client.post(node.url + "/v1/chat/completions", content=CHAT, headers=headers)
        assert plain.json()["id"] == headers["Authorization"]
        assert plain.json()["choices"][0]["message"]["content"] == f"Echo: {QUESTION}"
        headers = signed_headers(STREAM, ta)
        streamed = client.post(node.url + "/v1/chat/completions", content=STREAM, headers=headers)
        chunks, done = stream_chunks(streamed.text)
        assert done
        assert {c["id"] for c in chunks} == {headers["Authorization"]}
        assert chunks[-1]["usage"]["total_tokens"] > 0


def test_upstream_down_is_a_500(client: httpx2.Client) -> None:
    """An unreachable upstream gives the network's 500 executor error."""
    with start_node(NodeConfig()) as probe:
        dead = probe.url  # a port that is free again once the probe stops
    with start_node(NodeConfig(upstream=dead + "/v1")) as node:
        response = post_signed(client, node.url, CHAT, node.participants[0].address)
    assert response.status_code == 500
    assert response.json()["error"].startswith("Inference node response with an error")
