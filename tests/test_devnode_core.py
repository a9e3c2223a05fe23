"""The dev node's pure parts: echo model, request checks, fault plans, configuration."""

from __future__ import annotations

from typing import Any

import pytest

from gonka_cli.devnode import NodeConfig, fault_sequence, parse_accounts, participant_key
from gonka_cli.devnode.config import Account, AccountBook
from gonka_cli.devnode.model import chunks, echo_answer, is_reasoning_model, tokens
from gonka_cli.devnode.verify import Refusal, TAContext, check_signed_request, request_cost
from gonka_cli.errors import UsageError
from gonka_cli.signing import CLOCK, Scheme
from tests.test_devnode_support import KEY, QUESTION, body_of, signed_headers

TA = participant_key(0, 0).address


def context(**overrides: Any) -> TAContext:
    values: dict[str, Any] = {
        "own_address": TA,
        "models": ("echo",),
        "schemes": (Scheme.HASH,),
        "now_ns": CLOCK.now_ns(),
        "window_back_ns": 60 * 10**9,
        "window_ahead_ns": 30 * 10**9,
        "seen": lambda raw: False,
    }
    values.update(overrides)
    return TAContext(**values)


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.mark.parametrize(
    ("model", "reasons"),
    [
        ("Qwen/QwQ-32B", True),
        ("deepseek-ai/DeepSeek-R1", True),
        ("some/model-r1", True),
        ("echo", False),
        ("Qwen/Qwen2.5-7B-Instruct", False),
    ],
)
def test_reasoning_models_are_recognised(model: str, reasons: bool) -> None:
    """QwQ, DeepSeek and R1 names get reasoning_content; others do not."""
    assert is_reasoning_model(model) is reasons


def test_echo_answer_is_deterministic_and_readable() -> None:
    """The answer repeats the last user message, the same every time."""
    chat = {
        "messages": [{"role": "system", "content": "terse"}, {"role": "user", "content": QUESTION}]
    }
    first, second = echo_answer(chat, "echo"), echo_answer(chat, "echo")
    assert first == second
    assert "".join(first.content) == f"Echo: {QUESTION}"
    assert first.reasoning == ()
    assert first.finish_reason == "stop"


def test_max_tokens_cuts_the_answer_with_finish_length() -> None:
    """An answer longer than max_tokens stops there with finish_reason length."""
    chat = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 3}
    answer = echo_answer(chat, "Qwen/QwQ-32B")
    assert answer.completion_tokens == 3
    assert answer.finish_reason == "length"


def test_tokens_join_back_into_the_text() -> None:
    """Streaming the tokens reproduces the text exactly."""
    text = "Echo:  two  spaces\nand a line"
    assert "".join(tokens(text)) == text


def test_chunks_end_with_finish_then_usage() -> None:
    """The chunk list starts with the role, ends with a finish chunk then a usage chunk."""
    answer = echo_answer({"messages": [{"role": "user", "content": "hi"}]}, "echo")
    out = chunks(answer, "id-1", "echo", 0)
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert out[-2]["choices"][0]["finish_reason"] == "stop"
    assert out[-1]["choices"] == []
    assert out[-1]["usage"] == answer.usage()


def test_pure_check_accepts_a_good_request() -> None:
    """The check returns the requester, model and recovered key of a good request."""
    body = body_of(model="echo", messages=[{"role": "user", "content": "hi"}])
    signed = check_signed_request(body, lower(signed_headers(body, TA)), context())
    assert (signed.requester, signed.model, signed.public_key) == (
        KEY.address,
        "echo",
        KEY.public_key,
    )


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"x-requester-address": ""}, 500, "empty address string is not allowed"),
        ({"x-requester-address": "gonka1nope"}, 500, "decoding bech32 failed"),
        ({"x-timestamp": "soon"}, 400, "invalid X-Timestamp header"),
        ({"authorization": "not base64!"}, 401, "not valid base64"),
    ],
)
def test_pure_check_refusals(headers: dict[str, str], status: int, message: str) -> None:
    """Bad requester addresses, timestamps and signature encodings get the network's answer."""
    body = body_of(model="echo", messages=[{"role": "user", "content": "hi"}])
    sent = {**lower(signed_headers(body, TA)), **headers}
    with pytest.raises(Refusal) as refused:
        check_signed_request(body, sent, context())
    assert refused.value.status == status
    assert message in refused.value.message


def test_pure_check_refuses_a_seen_signature() -> None:
    """A signature the replay store knows is refused last, with the replay message."""
    body = body_of(model="echo", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(Refusal) as refused:
        check_signed_request(body, lower(signed_headers(body, TA)), context(seen=lambda raw: True))
    assert refused.value.message == "AuthKey has already been used for a transfer request"


def test_request_cost_counts_prompt_characters_and_max_tokens() -> None:
    """Cost is (prompt characters + max_tokens, 5000 when absent) x price."""
    chat = {"messages": [{"role": "user", "content": "abcd"}]}
    assert request_cost(chat, 2) == (4 + 5000) * 2
    assert request_cost({**chat, "max_tokens": 10}, 1) == 14


def test_fault_sequences_depend_on_seed_and_participant() -> None:
    """A (seed, participant) pair always yields the same plan; others differ."""
    kinds = ("429", "drop")
    plan = fault_sequence(3, 0, 0.5, kinds, 40)
    assert plan == fault_sequence(3, 0, 0.5, kinds, 40)
    assert plan != fault_sequence(3, 1, 0.5, kinds, 40)
    assert plan != fault_sequence(4, 0, 0.5, kinds, 40)
    assert set(plan) == {None, "429", "drop"}
    assert fault_sequence(3, 0, 0.0, kinds, 40) == [None] * 40


def test_participant_keys_are_stable_and_distinct() -> None:
    """Participant keys depend on seed and index only."""
    assert participant_key(0, 0).address == participant_key(0, 0).address
    assert len({participant_key(s, i).address for s in (0, 1) for i in (0, 1)}) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "proxy"}, "mode must be one of"),
        ({"scheme": "sha3"}, "scheme must be one of"),
        ({"faults": ("429", "fire")}, "unknown fault kind"),
        ({"fault_rate": 1.5}, "fault rate"),
        ({"participants": 0}, "participants"),
        ({"allowlist": ("gonka1bad",)}, "not a valid bech32"),
        ({"upstream": "ftp://x"}, "http(s) URL"),
        ({"fault_participants": (2,)}, "fault participant 2"),
    ],
)
def test_impossible_configurations_are_usage_errors(
    overrides: dict[str, Any], message: str
) -> None:
    """A configuration no node can run with is refused up front with a clear message."""
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        NodeConfig(**overrides)


def test_accounts_documents_parse_in_both_shapes() -> None:
    """A bare list and {"accounts", "price"} both parse; a null pubkey stays None."""
    entry = {"address": KEY.address, "pubkey": KEY.public_key_b64, "balance": 5}
    assert parse_accounts([entry]) == AccountBook(
        {KEY.address: Account(KEY.address, KEY.public_key, 5)}
    )
    book = parse_accounts({"accounts": [{**entry, "pubkey": None}], "price": 3})
    assert (book.price, book.accounts[KEY.address].pubkey) == (3, None)


@pytest.mark.parametrize(
    "document",
    [
        {"accounts": "x"},
        [{"pubkey": "x"}],
        [{"address": "gonka1bad"}],
        {"accounts": [], "price": -1},
    ],
)
def test_bad_accounts_documents_are_usage_errors(document: Any) -> None:
    """Malformed accounts files are refused with a UsageError naming the problem."""
    with pytest.raises(UsageError):
        parse_accounts(document)


def test_replay_guard_remembers_and_forgets_by_window() -> None:
    """A used signature is refused while its timestamp is in the window, forgotten after."""
    from gonka_cli.devnode.state import ReplayGuard

    guard = ReplayGuard(horizon_ns=1_000)
    guard.mark(b"old", timestamp_ns=0, now_ns=0)
    assert guard.seen(b"old")
    for n in range(5000):  # past the prune threshold, long after "old" left the window
        guard.mark(n.to_bytes(4, "big"), timestamp_ns=10_000, now_ns=10_000)
    assert not guard.seen(b"old")
    assert guard.seen((4999).to_bytes(4, "big"))


def test_replay_guard_prunes_rarely_when_everything_is_fresh() -> None:
    """With every signature still in the window, the store is rebuilt only when it doubles."""
    from gonka_cli.devnode.state import ReplayGuard

    guard = ReplayGuard(horizon_ns=10**12)
    rebuilt = 0
    before = guard._used
    for n in range(20_000):
        guard.mark(n.to_bytes(4, "big"), timestamp_ns=n, now_ns=n)
        if guard._used is not before:
            rebuilt += 1
            before = guard._used
    assert rebuilt <= 3  # at 4097, about 8194 and 16390 entries
    assert all(guard.seen(n.to_bytes(4, "big")) for n in range(0, 20_000, 997))


def test_recent_records_forget_the_oldest_first() -> None:
    """The inference records keep the latest `limit` entries, in arrival order."""
    from gonka_cli.devnode.state import RecentRecords

    records = RecentRecords(limit=3)
    for n in range(5):
        records[f"id{n}"] = {"n": n}
    assert list(records) == ["id2", "id3", "id4"]


def test_listening_sockets_are_tcp_so_asyncio_disables_nagle() -> None:
    """Sockets are made with IPPROTO_TCP, which makes asyncio set TCP_NODELAY on accepts."""
    import socket

    from gonka_cli.devnode.server import bind_sockets

    sockets = bind_sockets("127.0.0.1", 0, 2)
    try:
        assert all(sock.proto == socket.IPPROTO_TCP for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
