"""The dev node as the network stands after July 2026, the official SDK's discovery against
a default node, and X-Timestamp parsed as Go's strconv.ParseInt parses it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from gonka_cli.cli import app
from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.devnode.verify import Refusal, TAContext, check_signed_request, parse_timestamp
from gonka_cli.errors import UsageError
from gonka_cli.signing import CLOCK, Scheme
from tests.test_devnode_support import KEY, QUESTION, body_of, payload, signed_headers

MODEL = "Qwen/QwQ-32B"
MESSAGES: list[Any] = [{"role": "user", "content": QUESTION}]
CHAT = body_of(model=MODEL, messages=MESSAGES)
READ_ROUTES = ("/v1/identity", "/v1/models", "/v1/epochs/current/participants")


@pytest.fixture(scope="module")
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=10) as http:
        yield http


@pytest.fixture(autouse=True)
def no_gonka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONKA_PRIVATE_KEY", "GONKA_ADDRESS", "GONKA_ENDPOINTS", "GONKA_SOURCE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GONKA_VERIFY_PROOF", raising=False)


# --- the official SDK against a default node ------------------------------------------------


def test_the_official_sdk_discovers_a_default_node_with_three_tas() -> None:
    """A default node lists its own TAs on its allowlist, so gonka-openai 0.2.6's
    source_url discovery finds one and is served; models.list() names the served models."""
    from gonka_openai import GonkaOpenAI  # type: ignore[import-untyped]

    with start_node(NodeConfig(participants=3)) as node:
        for _ in range(3):  # the SDK picks a TA at random: each pick must work
            with GonkaOpenAI(
                gonka_private_key=KEY.to_hex(), source_url=node.url, max_retries=0
            ) as sdk:
                answer = sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
                models = [model.id for model in sdk.models.list()]
            assert answer.choices[0].message.content == f"Echo: {QUESTION}"
            assert models == list(node.config.models)
        assert node.stats.accepted == 3


def test_an_empty_allowlist_is_still_published_on_request(client: httpx2.Client) -> None:
    """allowlist=() publishes [] (every TA allowed), which the SDK mishandles: it ends with
    no endpoint at all (IndexError), the bug this option exists to reproduce."""
    from gonka_openai import GonkaOpenAI

    with start_node(NodeConfig(participants=2, allowlist=())) as node:
        params = client.get(node.url + "/chain-api/productscience/inference/inference/params")
        access = params.json()["params"]["transfer_agent_access_params"]
        assert access["allowed_transfer_addresses"] == []
        with pytest.raises(IndexError):
            GonkaOpenAI(gonka_private_key=KEY.to_hex(), source_url=node.url, max_retries=0)


# --- Deprecation headers on read routes ------------------------------------------------------


def test_retired_read_routes_carry_deprecation_and_an_edge_api_link(
    client: httpx2.Client,
) -> None:
    """In retired mode the /v1 read routes answer 200 with Deprecation: true and a Link
    titled edge-api; a TA does not, unless asked."""
    with (
        start_node(NodeConfig(mode="retired")) as retired,
        start_node(NodeConfig()) as plain,
        start_node(NodeConfig(deprecation_headers=True)) as flagged,
    ):
        for route in READ_ROUTES:
            for node, expected in ((retired, True), (plain, False), (flagged, True)):
                answer = client.get(node.url + route)
                assert answer.status_code == 200
                assert ("deprecation" in answer.headers) is expected, (route, node.config.mode)
                if expected:
                    assert answer.headers["Deprecation"] == "true"
                    assert 'title="edge-api"' in answer.headers["Link"]
                    assert f"</edge-api{route}>" in answer.headers["Link"]


def test_retired_chat_routes_answer_410_with_the_v4_successor(client: httpx2.Client) -> None:
    """POST and GET /v1/chat/completions and POST /v1/completions: 410, the network's body,
    Deprecation: true and Link to </devshard/v4>."""
    with start_node(NodeConfig(mode="retired")) as node:
        answers = [
            client.post(node.url + "/v1/chat/completions", content=CHAT),
            client.get(node.url + "/v1/chat/completions", params={"id": "x"}),
            client.post(node.url + "/v1/completions", content=b"{}"),
        ]
    for answer in answers:
        assert answer.status_code == 410
        assert answer.content == (
            b'{"error":"deprecated","message":"classic inference is deprecated; use devshard"}'
        )
        assert answer.headers["Deprecation"] == "true"
        assert answer.headers["Link"] == '</devshard/v4>; rel="successor-version"'


# --- participants documents in the SDK's shape -----------------------------------------------


def test_sdk_shaped_participants_have_string_numbers_and_a_proof_block(
    client: httpx2.Client,
) -> None:
    """participants_shape="sdk": numbers inside active_participants are strings, the
    block height is a string, proof ops carry base64 keys; discovery still lists every TA."""
    with start_node(NodeConfig(participants=2, participants_shape="sdk")) as node:
        document = client.get(node.url + "/v1/epochs/current/participants").json()
        from gonka_openai import GonkaOpenAI

        with GonkaOpenAI(gonka_private_key=KEY.to_hex(), source_url=node.url, max_retries=0) as sdk:
            answer = sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
    active = document["active_participants"]
    assert active["epoch_id"] == "1"
    assert active["poc_start_block_height"] == "1"
    assert [p["weight"] for p in active["participants"]] == ["10", "10"]
    assert [p["index"] for p in active["participants"]] == [p.address for p in node.participants]
    assert document["excluded_participants"] == []
    assert isinstance(document["block"]["height"], str)
    assert int(document["block"]["height"]) >= 1000
    assert len(base64.b64decode(document["block"]["app_hash"])) == 32
    ops = document["proof_ops"]["ops"]
    assert [op["type"] for op in ops] == ["ics23:iavl", "ics23:simple"]
    assert base64.b64decode(ops[1]["key"]) == b"inference"
    assert bytes.fromhex(document["active_participants_bytes"])
    assert answer.choices[0].message.content == f"Echo: {QUESTION}"


def test_default_participants_keep_numbers_as_numbers(client: httpx2.Client) -> None:
    """The default (chain) shape is unchanged: integers stay integers."""
    with start_node(NodeConfig()) as node:
        document = client.get(node.url + "/v1/epochs/current/participants").json()
    assert document["active_participants"]["participants"][0]["weight"] == 10
    assert isinstance(document["block"]["height"], int)


# --- gateway drift ----------------------------------------------------------------------------


def test_gateway_seed_fault_is_503_height_seed_incomplete(client: httpx2.Client) -> None:
    """The "seed" fault: 503 in the OpenAI envelope, code height_seed_incomplete, with
    Retry-After; the next request (no fault) is served."""
    config = NodeConfig(mode="gateway", api_keys=("sk-good",), fault_rate=1.0, faults=("seed",))
    headers = {"Authorization": "Bearer sk-good", "Content-Type": "application/json"}
    with start_node(config) as node:
        answer = client.post(node.url + "/v1/chat/completions", content=CHAT, headers=headers)
        assert node.stats.faults == {"seed": 1}
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    error = answer.json()["error"]
    assert error["code"] == "height_seed_incomplete"
    assert error["type"] == "service_unavailable"
    assert "height_seed_incomplete" in error["message"]


def test_the_seed_fault_belongs_to_gateway_mode() -> None:
    """Asking a TA for the gateway-only fault is a usage error."""
    with pytest.raises(UsageError, match="gateway fault"):
        NodeConfig(fault_rate=0.5, faults=("seed",))


@pytest.mark.parametrize("location", [False, True])
def test_retired_gateway_308_with_or_without_location(
    client: httpx2.Client, location: bool
) -> None:
    """A disabled gateway answers 308 with JSON new_url; with retired_location also
    Location, as some builds send it."""
    config = NodeConfig(
        mode="gateway", retired_to="https://new.example/v1", retired_location=location
    )
    with start_node(config) as node:
        answer = client.post(node.url + "/v1/chat/completions", content=CHAT)
    assert answer.status_code == 308
    assert answer.json()["new_url"] == "https://new.example/v1"
    assert answer.headers.get("location") == ("https://new.example/v1" if location else None)


# --- the command line -------------------------------------------------------------------------


def test_cli_refuses_allow_with_empty_allowlist() -> None:
    """--allow and --empty-allowlist together: exit 2 with one line naming both."""
    result = CliRunner().invoke(
        app, ["node", "--port", "0", "--empty-allowlist", "--allow", KEY.address]
    )
    assert result.exit_code == 2
    assert "--allow and --empty-allowlist" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "seed"], "gateway fault"),
        (["--participants-shape", "json"], "'json' is not one of"),
        (["--header-timeout", "0"], "--header-timeout"),
        (["--limit-concurrency", "0"], "--limit-concurrency"),
    ],
)
def test_cli_refuses_impossible_new_flags(args: list[str], message: str) -> None:
    """The new flags are checked before the node listens: exit 2, one message."""
    result = CliRunner().invoke(app, ["node", "--port", "0", *args])
    assert result.exit_code == 2
    assert message in result.stderr


# --- X-Timestamp as Go parses it ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("", 0),
        ("1700000000000000000", 1700000000000000000),
        ("+1700000000000000000", 1700000000000000000),
        ("-5", -5),
        ("0" * 5000 + "7", 7),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_timestamps_go_accepts(text: str, value: int) -> None:
    """An optional sign, ASCII digits (leading zeros any number), within int64."""
    assert parse_timestamp(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1_700", "invalid syntax"),
        (" 17", "invalid syntax"),
        ("17 ", "invalid syntax"),
        ("\u0661\u0662", "invalid syntax"),  # Arabic-Indic digits: int() takes them
        ("\uff11\uff12", "invalid syntax"),  # fullwidth digits
        ("+", "invalid syntax"),
        ("+-1", "invalid syntax"),
        ("0x10", "invalid syntax"),
        ("1e18", "invalid syntax"),
        ("9223372036854775808", "value out of range"),
        ("-9223372036854775809", "value out of range"),
        ("9" * 5000, "value out of range"),
    ],
)
def test_timestamps_go_refuses_are_400(text: str, reason: str) -> None:
    """What ParseInt refuses is a 400 naming the header and Go's reason."""
    with pytest.raises(Refusal) as refused:
        parse_timestamp(text)
    assert refused.value.status == 400
    assert refused.value.message.startswith("invalid X-Timestamp header: strconv.ParseInt")
    assert reason in refused.value.message
    assert len(refused.value.message) < 200


def _context() -> TAContext:
    return TAContext(
        own_address=TA,
        models=(MODEL, "echo"),
        schemes=(Scheme.HASH,),
        now_ns=CLOCK.now_ns(),
        window_back_ns=60 * 10**9,
        window_ahead_ns=30 * 10**9,
        seen=lambda raw: False,
    )


TA = KEY.address


def test_a_plus_signed_timestamp_verifies_and_a_negative_one_is_too_old() -> None:
    """ "+T" verifies as T (the signature covers the decimal value); a negative timestamp
    parses, is signed without a timestamp, and the window refuses it."""
    body = payload()
    stamp = CLOCK.now_ns()
    headers = {k.lower(): v for k, v in signed_headers(body, TA, timestamp_ns=stamp).items()}
    headers["x-timestamp"] = f"+{stamp}"
    assert check_signed_request(body, headers, _context()).timestamp_ns == stamp
    negative = {k.lower(): v for k, v in signed_headers(body, TA, timestamp_ns=0).items()}
    negative["x-timestamp"] = "-1"
    with pytest.raises(Refusal) as refused:
        check_signed_request(body, negative, _context())
    assert (refused.value.status, refused.value.message) == (400, "signature is too old")


def test_a_live_node_answers_a_malformed_timestamp_with_400(client: httpx2.Client) -> None:
    """Over HTTP: an underscore in X-Timestamp gets 400 and the TA's error shape."""
    with start_node(NodeConfig()) as node:
        ta = node.participants[0].address
        stamp = CLOCK.now_ns()
        headers = signed_headers(payload(), ta, timestamp_ns=stamp)
        spaced = f"{str(stamp)[:3]}_{str(stamp)[3:]}"
        answer = client.post(
            node.url + "/v1/chat/completions",
            content=payload(),
            headers={**headers, "X-Timestamp": spaced},
        )
        good = client.post(node.url + "/v1/chat/completions", content=payload(), headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("invalid X-Timestamp header")
    assert good.status_code == 200
