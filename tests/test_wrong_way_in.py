"""The wrong way in, and a node that is not there: one attempt (or one retry), the right hint.

A Bearer key sent to a transfer agent, a signature sent to a gateway, and a node that is
simply down each fail fast, in a real `gonka` process against real dev nodes, with the
hint that fixes them; the same verdicts are pinned on `judge` with plain values.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from gonka_cli.devnode import NodeConfig, RunningNode, start_node
from gonka_cli.endpoints import Endpoint
from gonka_cli.errors import HTTPClientError, NetworkError
from gonka_cli.settings import SendConfig, SignedAuth
from gonka_cli.verdicts import GATEWAY_HINT, TA_HINT, judge
from tests import vectors as v
from tests.test_client import KEY, FakeNetwork, Harness, bearer, openai_error, signed

REPO = Path(__file__).resolve().parent.parent
REQUEST = str(REPO / "inference-requests" / "request_payload.json")
GATEWAY_KEY = "sk-test-wrong-way-in-0001"


@pytest.fixture
def harness() -> Harness:
    return Harness(FakeNetwork())


@pytest.fixture(scope="module")
def ta() -> Iterator[RunningNode]:
    with start_node(NodeConfig()) as node:
        yield node


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningNode]:
    with start_node(NodeConfig(mode="gateway", api_keys=(GATEWAY_KEY,))) as node:
        yield node


def gonka(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `gonka` in a fresh process with only the environment given; and its duration."""
    environ = {"PATH": os.environ.get("PATH", ""), "GONKA_HOME": str(tmp_path / "home"), **env}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gonka_cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
    return result, time.monotonic() - started


def test_bearer_key_sent_to_a_ta_fails_once_with_the_sign_hint(
    ta: RunningNode, tmp_path: Path
) -> None:
    """A broker API key pointed at a TA: one POST, exit 5, 'this is a transfer agent: sign'."""
    before = ta.stats.received
    result, seconds = gonka(
        tmp_path,
        "send-request",
        "--base-url",
        ta.base_url,
        "--file",
        REQUEST,
        GONKA_BROKER_API_KEY="sk-not-for-a-ta",
    )
    assert result.returncode == 5, result.stderr
    assert "this is a transfer agent" in result.stderr
    assert "--auth signature" in result.stderr
    assert "retrying" not in result.stderr
    assert ta.stats.received - before == 1
    assert seconds < 10  # one attempt; the old behaviour took 6 attempts and ~12 s


def test_signature_sent_to_a_gateway_fails_once_with_the_bearer_hint(
    gateway: RunningNode, tmp_path: Path
) -> None:
    """A signed request with a known transfer address at a gateway: one POST, exit 4,
    'this is a gateway: --auth bearer'."""
    before = gateway.stats.received
    endpoint = f"{gateway.base_url};{v.PUBKEY_ADDRESS}"
    result, _ = gonka(
        tmp_path,
        "send-request",
        "--endpoint",
        endpoint,
        "--file",
        REQUEST,
        GONKA_PRIVATE_KEY=v.PRIVATE_KEY_HEX,
    )
    assert result.returncode == 4, result.stderr
    assert "this is a broker or gateway" in result.stderr
    assert "--auth bearer" in result.stderr
    assert "retrying" not in result.stderr
    assert gateway.stats.received - before == 1


def test_node_address_of_a_gateway_says_gateway_not_endpoint_account(
    gateway: RunningNode, tmp_path: Path
) -> None:
    """`--node-address` at a gateway: its /v1/identity 404 names --auth bearer first, and no
    chat request is sent."""
    before = gateway.stats.received
    result, _ = gonka(
        tmp_path,
        "send-request",
        "--node-address",
        gateway.url,
        "--file",
        REQUEST,
        GONKA_PRIVATE_KEY=v.PRIVATE_KEY_HEX,
    )
    assert result.returncode == 4, result.stderr
    hint = result.stderr.split("hint:", 1)[1]
    assert hint.index("--auth bearer") < hint.index("--endpoint-account")
    assert gateway.stats.received == before


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("flag", ["--node-address", "--endpoint"])
def test_a_node_that_is_down_fails_after_one_retry_asking_if_it_runs(
    tmp_path: Path, flag: str
) -> None:
    """Connection refused on the only endpoint: two attempts, exit 6, 'is the node running?',
    and never the --endpoint-account hint."""
    url = f"http://127.0.0.1:{free_port()}"
    target = url if flag == "--node-address" else f"{url};{v.PUBKEY_ADDRESS}"
    result, seconds = gonka(
        tmp_path,
        "send-request",
        flag,
        target,
        "--file",
        REQUEST,
        GONKA_PRIVATE_KEY=v.PRIVATE_KEY_HEX,
    )
    assert result.returncode == 6, result.stderr
    assert "is the node (or gateway) running?" in result.stderr
    assert "--endpoint-account" not in result.stderr
    assert result.stderr.count("retrying") == 1
    assert "after 2 attempts" in result.stderr
    assert seconds < 15


def test_a_dead_ta_among_several_is_failed_over(harness: Harness) -> None:
    """A refused identity lookup on one TA fails over to the next instead of stopping."""
    handler = harness.network.handler

    def refuse_a(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "a":
            raise httpx2.ConnectError("refused")
        return handler(request)

    harness.network.handler = refuse_a  # type: ignore[method-assign]
    config = SendConfig(SignedAuth(KEY), (Endpoint("http://a/v1"), Endpoint("http://b/v1")))
    outcome = harness.send(config)
    assert outcome.endpoint == "http://b/v1"
    assert outcome.attempts == 2


# --- The same verdicts, on plain values ------------------------------------------------------


def test_judge_bearer_500_no_requester_is_final_with_ta_hint() -> None:
    """A TA's 500 about an empty requester address, to a Bearer request: final, TA hint."""
    message = "rpc error: code = InvalidArgument desc = empty address string is not allowed"
    verdict = judge(500, message, {}, url="u", bearer=True, body=json.dumps({"error": message}))
    assert not verdict.retry
    assert verdict.error.hint == TA_HINT


def test_judge_bearer_401_pubkey_is_ta_but_broker_401_is_not() -> None:
    """A TA's string-error 401 about the PubKey means TA; a broker's OpenAI-envelope 401 does
    not (its hint stays about the API key)."""
    ta_body = json.dumps({"error": "Unable to validate request against PubKey: x"})
    assert judge(401, "unable to validate request against pubkey: x", {}, url="u",
                 bearer=True, body=ta_body).error.hint == TA_HINT
    broker_body = json.dumps({"error": {"message": "Invalid API key", "type": "auth"}})
    verdict = judge(401, "Invalid API key", {}, url="u", bearer=True, body=broker_body)
    assert verdict.error.hint != TA_HINT
    assert "GONKA_BROKER_API_KEY" in str(verdict.error.hint)


def test_judge_signed_to_gateway_shapes() -> None:
    """Signed requests: an OpenAI-envelope 401, or a route 404, means gateway; a proxied
    'model not found' 404 and a TA-shaped 401 do not."""
    envelope = json.dumps({"error": {"message": "Missing API key", "type": "auth"}})
    assert judge(401, "Missing API key", {}, url="u", bearer=False,
                 body=envelope).error.hint == GATEWAY_HINT
    not_found = json.dumps({"error": {"message": "Not Found", "type": "x"}})
    assert judge(404, "not found", {}, url="u", bearer=False,
                 body=not_found).error.hint == GATEWAY_HINT
    model = json.dumps({"error": {"message": "The model 'x' does not exist", "type": "x"}})
    assert judge(404, "the model 'x' does not exist", {}, url="u", bearer=False,
                 body=model).error.hint != GATEWAY_HINT
    ta_401 = json.dumps({"error": "Unable to validate request against PubKey"})
    assert judge(401, "unable to validate request against pubkey", {}, url="u",
                 bearer=False, body=ta_401).error.hint != GATEWAY_HINT


# --- The network since July 2026 (client side) -----------------------------------------------


def test_deprecation_header_on_a_200_means_nothing(harness: Harness) -> None:
    """`Deprecation: true` on an ordinary answer is not an error: the answer is used."""
    completion = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    }
    harness.network.script["a"] = [
        httpx2.Response(
            200,
            json=completion,
            headers={"Deprecation": "true", "Link": '</v1>; rel="deprecation"; title="edge-api"'},
        )
    ]
    outcome = harness.send(signed("a"))
    assert outcome.response["choices"][0]["message"]["content"] == "ok"
    assert len(harness.network.posts()) == 1


def test_gateway_503_height_seed_incomplete_is_retried(harness: Harness) -> None:
    """A gateway's transient 503 `height_seed_incomplete` is retried after its Retry-After."""
    busy = openai_error(503, "height_seed_incomplete", **{"Retry-After": "1"})
    harness.network.script["a"] = [busy]
    outcome = harness.send(bearer())
    assert outcome.attempts == 2
    assert harness.pauses == [pytest.approx(1.0, abs=0.05)]


@pytest.mark.parametrize("with_location", [False, True])
def test_disabled_gateway_308_with_or_without_location(
    harness: Harness, with_location: bool
) -> None:
    """A disabled gateway's 308 names its new_url in JSON, with or without `Location`."""
    headers = {"Location": "http://b/v1"} if with_location else {}
    body = {"status": 308, "message": "gateway disabled", "new_url": "http://b/v1"}
    harness.network.script["a"] = [httpx2.Response(308, json=body, headers=headers)]
    with pytest.raises(HTTPClientError, match=r"moved to http://b/v1"):
        harness.send(bearer())


def test_location_alone_is_followed_with_follow_moved(harness: Harness) -> None:
    """A 308 with only `Location` (no JSON new_url) is understood too."""
    harness.network.script["a"] = [httpx2.Response(308, headers={"Location": "http://b/v1"})]
    outcome = harness.send(bearer(follow_moved=True, trusted_origins=frozenset({"http://b:80"})))
    assert outcome.endpoint == "http://b/v1"


def test_unreachable_single_endpoint_is_one_retry(harness: Harness) -> None:
    """Refused twice on the only endpoint: a NetworkError after 2 attempts, not 6."""
    harness.network.script["a"] = [httpx2.ConnectError("refused")] * 6
    with pytest.raises(NetworkError, match="after 2 attempts") as caught:
        harness.send(signed("a"))
    assert "running" in str(caught.value.hint)
    assert len(harness.network.posts()) == 2
