"""Interop with clients nobody here wrote: the gonka-openai SDK and the openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from gonka_cli.devnode import NodeConfig, participant_key, start_node
from gonka_cli.devnode.server import RunningNode
from gonka_cli.keys import SigningKey
from tests.test_devnode_support import KEY, QUESTION

MODEL = "Qwen/QwQ-32B"
MESSAGES: list[Any] = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def node() -> Iterator[RunningNode]:
    with start_node(NodeConfig(participants=2)) as running:
        yield running


@pytest.fixture(autouse=True)
def no_gonka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONKA_PRIVATE_KEY", "GONKA_ADDRESS", "GONKA_ENDPOINTS", "GONKA_SOURCE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GONKA_VERIFY_PROOF", raising=False)


def gonka_client(url: str, address: str, key: SigningKey = KEY) -> Any:
    """A gonka-openai client bound to one endpoint (imported late: it configures logging)."""
    from gonka_openai import Endpoint, GonkaOpenAI  # type: ignore[import-untyped]

    return GonkaOpenAI(
        gonka_private_key=key.to_hex(),
        endpoints=[Endpoint(url=url, address=address)],
        max_retries=0,
    )


def test_gonka_openai_sdk_gets_an_answer(node: RunningNode) -> None:
    """The official SDK's signed request is accepted; the answer id is its signature."""
    participant = node.participants[1]
    before = participant.stats.accepted
    with gonka_client(participant.base_url, participant.address) as client:
        answer = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert answer.choices[0].message.content == f"Echo: {QUESTION}"
    assert len(answer.id) == 88
    assert participant.stats.accepted == before + 1


def test_gonka_openai_sdk_streams(node: RunningNode) -> None:
    """The official SDK streams an answer from the node to its end."""
    participant = node.participants[0]
    with gonka_client(participant.base_url, participant.address) as client:
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        with stream:
            chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Echo: {QUESTION}"
    assert chunks[-1].usage.total_tokens > 0


def test_gonka_openai_sdk_with_the_wrong_transfer_address_gets_401(node: RunningNode) -> None:
    """A request the SDK signs for another TA's address is refused with 401."""
    target, other = node.participants
    with (
        gonka_client(target.base_url, other.address) as client,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert refused.value.status_code == 401
    message = refused.value.response.json()["error"]
    assert message.startswith("Unable to validate request against PubKey")


def test_gonka_openai_sdk_discovers_the_node() -> None:
    """With a source URL the SDK finds a TA by discovery and the allowlist, and is served."""
    allowed = (participant_key(0, 0).address, participant_key(0, 1).address)
    with start_node(NodeConfig(participants=2, allowlist=allowed)) as running:
        from gonka_openai import GonkaOpenAI

        with GonkaOpenAI(
            gonka_private_key=KEY.to_hex(), source_url=running.url, max_retries=0
        ) as client:
            answer = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert answer.choices[0].message.content == f"Echo: {QUESTION}"
        assert running.stats.accepted == 1


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningNode]:
    with start_node(NodeConfig(mode="gateway")) as running:
        yield running


def test_openai_sdk_against_the_gateway(gateway: RunningNode) -> None:
    """The openai SDK with base_url and api_key gets an answer and the gateway's headers."""
    with openai.OpenAI(
        base_url=gateway.base_url, api_key=gateway.api_keys[0], max_retries=0
    ) as client:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
        answer = raw.parse()
    assert answer.choices[0].message.content == f"Echo: {QUESTION}"
    assert answer.id == f"devshard-{raw.headers['X-Devshard-ID']}-{answer.id.rsplit('-', 1)[1]}"
    assert raw.headers["X-Request-Id"]


def test_openai_sdk_streams_from_the_gateway(gateway: RunningNode) -> None:
    """The openai SDK streams from the gateway to the end, usage included."""
    with openai.OpenAI(
        base_url=gateway.base_url, api_key=gateway.api_keys[0], max_retries=0
    ) as client:
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        with stream:
            chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Echo: {QUESTION}"
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.total_tokens > 0


def test_openai_sdk_with_a_bad_key_gets_401(gateway: RunningNode) -> None:
    """A wrong key surfaces as the SDK's AuthenticationError, parsed from the envelope."""
    with (
        openai.OpenAI(base_url=gateway.base_url, api_key="sk-nope", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert refused.value.code == "invalid_api_key"
