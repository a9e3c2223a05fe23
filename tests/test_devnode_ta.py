"""The dev node as a transfer agent: every check of docs/protocol.md section 4, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from gonka_cli.devnode import Account, NodeConfig, participant_key, start_node
from gonka_cli.devnode.server import RunningNode
from gonka_cli.keys import SigningKey
from gonka_cli.signing import CLOCK, Scheme, sign, signature_headers
from tests.test_devnode_support import (
    KEY,
    QUESTION,
    body_of,
    high_s,
    payload,
    post_signed,
    signed_headers,
    stream_chunks,
)

SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def node() -> Iterator[RunningNode]:
    with start_node(NodeConfig(participants=3)) as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=10) as http:
        yield http


@pytest.fixture
def ta(node: RunningNode) -> str:
    return node.participants[0].address


def error_of(response: httpx2.Response) -> str:
    message: str = response.json()["error"]
    return message


def test_good_request_is_answered_with_the_signature_as_id(
    node: RunningNode, client: httpx2.Client, ta: str
) -> None:
    """A correctly signed sample request gets 200, the echo answer, and id = signature."""
    body = payload()
    headers = signed_headers(body, ta)
    response = client.post(node.url + "/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert answer["id"] == headers["Authorization"]
    assert answer["object"] == "chat.completion"
    message = answer["choices"][0]["message"]
    assert message["content"] == f"Echo: {QUESTION}"
    assert QUESTION in message["reasoning_content"]
    assert answer["usage"]["total_tokens"] == (
        answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]
    )


def test_stream_has_reasoning_usage_and_done(
    node: RunningNode, client: httpx2.Client, ta: str
) -> None:
    """A streamed answer carries reasoning deltas, a final usage chunk and ends with [DONE]."""
    body = body_of(
        model="Qwen/QwQ-32B", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    headers = signed_headers(body, ta)
    response = client.post(node.url + "/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks, done = stream_chunks(response.text)
    assert done
    assert {chunk["id"] for chunk in chunks} == {headers["Authorization"]}
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == f"Echo: {QUESTION}"
    assert "".join(d.get("reasoning_content", "") for d in deltas).startswith("The user asked")
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_non_reasoning_model_has_no_reasoning(
    node: RunningNode, client: httpx2.Client, ta: str
) -> None:
    """The plain `echo` model answers without reasoning_content."""
    body = body_of(model="echo", messages=[{"role": "user", "content": "hi"}])
    response = post_signed(client, node.url, body, ta)
    assert response.json()["choices"][0]["message"] == {"role": "assistant", "content": "Echo: hi"}


def test_tampered_body_is_401(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """Bytes that differ from the signed ones fail verification."""
    headers = signed_headers(payload(), ta)
    tampered = payload().replace(b"France", b"Spain")
    response = client.post(node.url + "/v1/chat/completions", content=tampered, headers=headers)
    assert response.status_code == 401
    assert error_of(response).startswith("Unable to validate request against PubKey: ")


def test_high_s_signature_is_401(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """The high-S twin of a valid signature is refused, as libsecp256k1 refuses it."""
    headers = signed_headers(payload(), ta)
    headers["Authorization"] = high_s(headers["Authorization"])
    response = client.post(node.url + "/v1/chat/completions", content=payload(), headers=headers)
    assert response.status_code == 401
    assert "high-S" in error_of(response)


@pytest.mark.parametrize(
    ("offset_s", "message"),
    [(-61, "signature is too old"), (31, "signature is in the future")],
)
def test_timestamp_outside_window_is_400(
    node: RunningNode, client: httpx2.Client, ta: str, offset_s: int, message: str
) -> None:
    """Timestamps over 60 s old or over 30 s ahead of the node's clock are refused."""
    stamp = CLOCK.now_ns() + offset_s * SECOND
    response = post_signed(client, node.url, payload(), ta, timestamp_ns=stamp)
    assert (response.status_code, error_of(response)) == (400, message)


def test_replay_is_400_and_counted(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """A signature used once is refused the second time, and the node counts the replay."""
    headers = signed_headers(payload(), ta)
    before = node.stats.replays_refused
    url = node.url + "/v1/chat/completions"
    assert client.post(url, content=payload(), headers=headers).status_code == 200
    again = client.post(url, content=payload(), headers=headers)
    assert (again.status_code, error_of(again)) == (
        400,
        "AuthKey has already been used for a transfer request",
    )
    assert node.stats.replays_refused == before + 1


def test_missing_authorization_is_401(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """Without Authorization the node answers 401 before looking at anything else."""
    headers = signed_headers(payload(), ta)
    del headers["Authorization"]
    response = client.post(node.url + "/v1/chat/completions", content=payload(), headers=headers)
    assert (response.status_code, error_of(response)) == (401, "Authorization is required")


def test_missing_model_is_400(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """A signed body without a model is refused with the network's message."""
    body = body_of(messages=[{"role": "user", "content": "hi"}])
    response = post_signed(client, node.url, body, ta)
    assert (response.status_code, error_of(response)) == (400, "No model specified")


def test_unknown_model_is_404(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """A model not served this epoch is 404 once the signature verified."""
    body = body_of(model="nobody/serves-this", messages=[{"role": "user", "content": "hi"}])
    response = post_signed(client, node.url, body, ta)
    assert (response.status_code, error_of(response)) == (404, "model not found")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "invalid chat completion request: "),
        (b"[" * 100_000 + b"]" * 100_000, "invalid chat completion request: "),
        (b'{"model": "echo", "max_tokens": ' + b"9" * 5000 + b"}", "invalid chat completion"),
        (body_of(model="echo"), "messages is required"),
        (body_of(model="echo", messages=[{"role": "wizard", "content": "x"}]), "invalid chat"),
    ],
)
def test_malformed_bodies_are_400(
    node: RunningNode, client: httpx2.Client, ta: str, body: bytes, message: str
) -> None:
    """Bodies that are not JSON (also too deep or with huge numbers), lack messages or use
    an unknown role are 400, never a crash of the node."""
    response = post_signed(client, node.url, body, ta)
    assert response.status_code == 400
    assert error_of(response).startswith(message)


def test_checks_run_in_the_network_order(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """Each pair of faults is reported by the check that comes first in section 4."""
    url = node.url + "/v1/chat/completions"
    no_messages = body_of(model="echo")
    assert client.post(url, content=no_messages).status_code == 400  # body before Authorization
    no_model = body_of(messages=[{"role": "user", "content": "hi"}])
    assert client.post(url, content=no_model).status_code == 401  # Authorization before model
    unknown = body_of(model="nobody/x", messages=[{"role": "user", "content": "hi"}])
    headers = signed_headers(unknown, node.participants[1].address)
    assert client.post(url, content=unknown, headers=headers).status_code == 401  # sig first
    old = post_signed(client, node.url, unknown, ta, timestamp_ns=CLOCK.now_ns() - 120 * SECOND)
    assert old.status_code == 404  # model before the timestamp window


def test_body_over_10_mib_is_413(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """A body over 10 MiB is refused with 413 before anything else."""
    filler = "x" * (10 * 1024 * 1024)
    body = body_of(model="echo", messages=[{"role": "user", "content": filler}])
    response = post_signed(client, node.url, body, ta)
    assert response.status_code == 413


def test_each_participant_accepts_only_its_own_address(
    node: RunningNode, client: httpx2.Client
) -> None:
    """Discovery lists all three TAs; each verifies against its own address only."""
    listed = client.get(node.url + "/v1/epochs/current/participants").json()
    entries = listed["active_participants"]["participants"]
    assert [(e["index"], e["inference_url"]) for e in entries] == [
        (p.address, p.url) for p in node.participants
    ]
    assert len({p.address for p in node.participants}) == 3
    for target in node.participants:
        for signed_for in node.participants:
            response = post_signed(client, target.url, payload(), signed_for.address)
            assert response.status_code == (200 if target is signed_for else 401)


def test_identity_and_reads(node: RunningNode, client: httpx2.Client, ta: str) -> None:
    """Identity, models, params, accounts and the inference record answer as documented."""
    identity = client.get(node.url + "/v1/identity").json()
    assert identity["data"]["address"] == ta
    models = [m["id"] for m in client.get(node.url + "/v1/models").json()["models"]]
    assert models == ["Qwen/QwQ-32B", "echo"]
    params = client.get(node.url + "/chain-api/productscience/inference/inference/params").json()
    allowed = params["params"]["transfer_agent_access_params"]["allowed_transfer_addresses"]
    assert allowed == [p.address for p in node.participants]
    headers = signed_headers(payload(), ta)
    client.post(node.url + "/v1/chat/completions", content=payload(), headers=headers)
    record = client.get(node.url + "/v1/chat/completions", params={"id": headers["Authorization"]})
    assert record.json()["inference"]["requested_by"] == KEY.address
    account = client.get(f"{node.url}/v2/accounts/{KEY.address}").json()
    assert account["pubkey"] == KEY.public_key_b64


def test_allowlist_refuses_other_tas_with_403(client: httpx2.Client) -> None:
    """With a non-empty TA allowlist, a TA not on it answers 403; one on it serves."""
    allowed = participant_key(0, 1).address
    with start_node(NodeConfig(participants=2, allowlist=(allowed,))) as node:
        outside, inside = node.participants
        refused = post_signed(client, outside.url, payload(), outside.address)
        assert (refused.status_code, error_of(refused)) == (403, "Transfer Agent not allowed")
        assert post_signed(client, inside.url, payload(), inside.address).status_code == 200


def test_accounts_file_gates_requesters(tmp_path: Path, client: httpx2.Client) -> None:
    """With --accounts: unknown 500, no public key 500, poor 402, known 200."""
    no_key = SigningKey.from_secret(bytes(31) + b"\x07")
    poor = SigningKey.from_secret(bytes(31) + b"\x08")
    accounts = [
        {"address": KEY.address, "pubkey": KEY.public_key_b64, "balance": 10**9},
        {"address": no_key.address, "pubkey": None, "balance": 10**9},
        {"address": poor.address, "pubkey": poor.public_key_b64, "balance": 10},
    ]
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": accounts}))
    with start_node(NodeConfig(accounts=path)) as node:
        ta = node.participants[0].address
        stranger = SigningKey.from_secret(bytes(31) + b"\x09")
        cases = [(stranger, 500, "account not found"), (no_key, 500, "account has no public key")]
        for key, status, ending in cases:
            response = post_signed(client, node.url, payload(), ta, key=key)
            assert response.status_code == status
            assert error_of(response).endswith(ending)
        broke = post_signed(client, node.url, payload(), ta, key=poor)
        assert (broke.status_code, error_of(broke)) == (402, "Insufficient balance")
        assert post_signed(client, node.url, payload(), ta).status_code == 200


def test_accounts_verify_with_the_published_key(client: httpx2.Client) -> None:
    """A signature by a key other than the account's published one is 401."""
    impostor = SigningKey.from_secret(bytes(31) + b"\x0a")
    listed = Account(impostor.address, KEY.public_key, 10**9)
    with start_node(NodeConfig(accounts=[listed])) as node:
        ta = node.participants[0].address
        response = post_signed(client, node.url, payload(), ta, key=impostor)
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("node_scheme", "accepted"),
    [("raw", {Scheme.RAW}), ("both", {Scheme.RAW, Scheme.HASH})],
)
def test_scheme_selects_the_accepted_layouts(
    client: httpx2.Client, node_scheme: str, accepted: set[Scheme]
) -> None:
    """--scheme raw accepts only the legacy layout; both accepts either."""
    with start_node(NodeConfig(scheme=node_scheme)) as node:
        ta = node.participants[0].address
        for scheme in Scheme:
            response = post_signed(client, node.url, payload(), ta, scheme=scheme)
            assert response.status_code == (200 if scheme in accepted else 401)


def test_clock_offset_moves_the_window(client: httpx2.Client) -> None:
    """A node whose clock runs 120 s ahead refuses our now and accepts our now + 120 s."""
    with start_node(NodeConfig(clock_offset_s=120)) as node:
        ta = node.participants[0].address
        stale = post_signed(client, node.url, payload(), ta)
        assert (stale.status_code, error_of(stale)) == (400, "signature is too old")
        stamp = CLOCK.now_ns() + 120 * SECOND
        body = payload()
        headers = signature_headers(sign(KEY, body, stamp, ta), KEY.address, stamp)
        fresh = client.post(node.url + "/v1/chat/completions", content=body, headers=headers)
        assert fresh.status_code == 200
