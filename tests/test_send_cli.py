"""`gonka send-request` through the command line, against the dev node over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gonka_cli.cli import app
from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.devnode.server import RunningNode
from tests import vectors as v

REPO = Path(__file__).resolve().parent.parent
REQUEST = str(REPO / "inference-requests" / "request_payload.json")
STREAMING = str(REPO / "inference-requests" / "streaming.json")
ANSWER = "Echo: What is the capital city of France?\n"
STREAMED = "Echo: Name three rivers that flow through Paris or near it.\n"
API_KEY = "obk-test-key-0123456789"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("GONKA_")] + ["NO_COLOR"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GONKA_HOME", str(tmp_path / "home"))


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GONKA_PRIVATE_KEY", v.PRIVATE_KEY_HEX)


@pytest.fixture(scope="module")
def ta() -> Iterator[RunningNode]:
    with start_node(NodeConfig()) as node:
        yield node


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningNode]:
    with start_node(NodeConfig(mode="gateway", api_keys=(API_KEY,))) as node:
        yield node


@pytest.fixture
def broker_env(monkeypatch: pytest.MonkeyPatch, gateway: RunningNode) -> None:
    monkeypatch.setenv("GONKA_BROKER_URL", gateway.url + "/v1")
    monkeypatch.setenv("GONKA_BROKER_API_KEY", API_KEY)


def send(*args: str, stdin: bytes | None = None) -> Result:
    return runner.invoke(app, ["send-request", *args], input=stdin)


def test_quick_start_with_a_dev_node_and_a_throwaway_key() -> None:
    """The README quick start: --dev answers, and says it signed with a throwaway key."""
    result = send("--dev", "--file", REQUEST)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ANSWER
    assert "throwaway dev key" in result.stderr


@pytest.mark.usefixtures("key_env")
def test_node_address_prints_the_answer(ta: RunningNode) -> None:
    """Text output is the answer alone on stdout; reasoning goes to stderr."""
    result = send("--node-address", ta.url, "--file", REQUEST)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ANSWER
    assert "The user asked" in result.stderr


@pytest.mark.usefixtures("key_env")
def test_json_output_is_one_object_with_the_ids(ta: RunningNode) -> None:
    """--output json prints exactly one JSON object: the completion plus a gonka block."""
    result = send("--node-address", ta.url + "/v1/", "--file", REQUEST, "-o", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["object"] == "chat.completion"
    assert document["gonka"]["inference_id"] == document["id"]
    assert document["gonka"]["transfer_address"] == ta.participants[0].address
    assert document["gonka"]["attempts"] == 1


@pytest.mark.usefixtures("key_env")
def test_streamed_text_reasoning_and_usage(ta: RunningNode) -> None:
    """A stream prints content on stdout; -u adds tokens, timing and the id on stderr."""
    result = send("--node-address", ta.url, "--file", STREAMING, "-u")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == STREAMED
    assert "The user asked" in result.stderr
    assert "usage: tokens: " in result.stderr
    assert "first token" in result.stderr
    assert "inference_id: " in result.stderr
    hidden = send("--node-address", ta.url, "--file", STREAMING, "--hide-reasoning")
    assert hidden.stdout == STREAMED
    assert hidden.stderr == ""


@pytest.mark.usefixtures("key_env")
def test_streamed_json_is_reassembled(ta: RunningNode) -> None:
    """A streamed answer in --output json is one chat.completion with content and usage."""
    result = send("--node-address", ta.url, "--file", STREAMING, "-o", "json")
    document = json.loads(result.stdout)
    message = document["choices"][0]["message"]
    assert message["content"] == STREAMED.rstrip("\n")
    assert message["reasoning_content"].startswith("The user asked")
    assert document["usage"]["total_tokens"] > 0
    assert document["gonka"]["streamed"] is True


@pytest.mark.usefixtures("key_env")
def test_raw_output_is_the_event_stream(ta: RunningNode) -> None:
    """--output raw prints the SSE text as the node sent it."""
    result = send("--node-address", ta.url, "--file", STREAMING, "-o", "raw")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("data: {")
    assert result.stdout.endswith("data: [DONE]\n\n")
    plain = send("--node-address", ta.url, "--file", REQUEST, "-o", "raw", "--no-stream")
    assert json.loads(plain.stdout)["object"] == "chat.completion"


@pytest.mark.usefixtures("key_env")
def test_overrides_and_stdin(ta: RunningNode) -> None:
    """--stream, --max-tokens, --set and --file - change what is sent, and it is accepted."""
    body = Path(REQUEST).read_bytes()
    args = ["--node-address", ta.url, "--file", "-", "--stream", "--max-tokens", "3"]
    result = send(*args, "--set", "temperature=0.1", "-o", "json", stdin=body)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["completion_tokens"] <= 3


@pytest.mark.usefixtures("key_env")
def test_bad_json_exits_2_and_sends_nothing(ta: RunningNode, tmp_path: Path) -> None:
    """A body that does not parse names file, line and column, and never reaches the node."""
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "model": "m",\n  "messages": [\n')
    before = ta.stats.received
    result = send("--node-address", ta.url, "--file", str(broken))
    assert result.exit_code == 2
    assert f"{broken}:4:1: not valid JSON" in result.stderr
    assert result.stdout == ""
    assert ta.stats.received == before


def test_no_key_configured_says_what_to_pass(ta: RunningNode) -> None:
    """Neither a signing key nor an API key: exit 7 and the hint names both ways."""
    result = send("--node-address", ta.url, "--file", REQUEST)
    assert result.exit_code == 7
    assert "GONKA_BROKER_API_KEY" in result.stderr
    assert "GONKA_PRIVATE_KEY" in result.stderr


@pytest.mark.usefixtures("broker_env")
def test_gateway_needs_no_flag_beyond_the_environment(gateway: RunningNode) -> None:
    """GONKA_BROKER_URL + GONKA_BROKER_API_KEY: bearer auth, answer printed, ids on -u."""
    result = send("--file", REQUEST, "-u")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ANSWER
    assert "request_id: " in result.stderr
    assert "devshard_id: " in result.stderr
    streamed = send("--file", STREAMING)
    assert streamed.stdout == STREAMED


@pytest.mark.usefixtures("broker_env")
def test_gateway_wrong_key_is_401_with_the_key_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused API key exits 4 and points at where the key comes from."""
    monkeypatch.setenv("GONKA_BROKER_API_KEY", "obk-wrong-key-000000")
    result = send("--file", REQUEST)
    assert result.exit_code == 4
    assert "HTTP 401" in result.stderr
    assert "GONKA_BROKER_API_KEY" in result.stderr


def test_gateway_balance_and_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """402 says the broker balance ran out; 429 after retries exits 5."""
    with start_node(NodeConfig(mode="gateway", api_keys=(API_KEY,), key_balance=0)) as node:
        monkeypatch.setenv("GONKA_BROKER_URL", node.url)
        monkeypatch.setenv("GONKA_BROKER_API_KEY", API_KEY)
        result = send("--file", REQUEST)
    assert result.exit_code == 4
    assert "broker balance ran out" in result.stderr
    limited = NodeConfig(mode="gateway", api_keys=(API_KEY,), fault_rate=1.0, faults=("429",))
    with start_node(limited) as node:
        monkeypatch.setenv("GONKA_BROKER_URL", node.url)
        result = send("--file", REQUEST, "--max-retries", "1")
        assert node.stats.by_status == {429: 2}
    assert result.exit_code == 5
    assert "rate-limiting" in result.stderr


def test_retired_gateway_reports_the_new_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 308 with new_url is reported with the way to follow it; --follow-moved follows it
    to another origin only with --trust-origin naming that origin (issue 13)."""
    with (
        start_node(NodeConfig(mode="gateway", api_keys=(API_KEY,))) as new,
        start_node(NodeConfig(mode="gateway", retired_to=new.url + "/v1")) as old,
    ):
        monkeypatch.setenv("GONKA_BROKER_URL", old.url + "/v1")
        monkeypatch.setenv("GONKA_BROKER_API_KEY", API_KEY)
        reported = send("--file", REQUEST)
        refused = send("--file", REQUEST, "--follow-moved")
        followed = send("--file", REQUEST, "--follow-moved", "--trust-origin", new.url)
        assert new.stats.by_status.get(200) == 1
    assert refused.exit_code == 4
    assert f"--trust-origin {new.url}" in refused.stderr
    assert reported.exit_code == 4
    assert f"moved to {new.url}/v1" in reported.stderr
    assert "--follow-moved" in reported.stderr
    assert followed.exit_code == 0, followed.stderr
    assert followed.stdout == ANSWER


@pytest.mark.usefixtures("key_env")
def test_retired_node_stops_at_once_with_the_broker_hint() -> None:
    """A mainnet-style 410 is final on the first attempt, with the broker hint."""
    with start_node(NodeConfig(mode="retired")) as node:
        result = send("--node-address", node.url, "--file", REQUEST)
        assert node.stats.received == 1
    assert result.exit_code == 4
    assert "HTTP 410" in result.stderr
    assert "--auth bearer" in result.stderr


@pytest.mark.usefixtures("key_env")
def test_stream_cut_after_content_exits_6() -> None:
    """A stream cut after text was printed is not retried: cut off, exit 6."""
    with start_node(NodeConfig(fault_rate=1.0, faults=("cut",))) as node:
        result = send("--node-address", node.url, "--file", STREAMING)
        assert node.stats.received == 1
    assert result.exit_code == 6
    assert "cut off" in result.stderr


@pytest.mark.usefixtures("key_env")
def test_read_timeout_names_its_flag() -> None:
    """A node that stays silent longer than --read-timeout: exit 6, the flag named."""
    with start_node(NodeConfig(fault_rate=1.0, faults=("slow",), slow_ms=600)) as node:
        args = ["--node-address", node.url, "--file", REQUEST, "--max-retries", "0"]
        result = send(*args, "--read-timeout", "0.2")
    assert result.exit_code == 6
    assert "sent nothing for 0.2 s" in result.stderr
    assert "--read-timeout" in result.stderr


@pytest.mark.usefixtures("key_env")
def test_unserved_model_is_404_with_the_models_hint(ta: RunningNode) -> None:
    """A model the node does not serve ends in exit 4 with a pointer to gonka models."""
    result = send("--node-address", ta.url, "--file", REQUEST, "--model", "nope/none")
    assert result.exit_code == 4
    assert "gonka models" in result.stderr


@pytest.mark.usefixtures("key_env")
def test_endpoint_pairs_sign_for_each_address() -> None:
    """--endpoint URL;ADDRESS pairs are used as given; a wrong address is a 401 with a hint."""
    with start_node(NodeConfig(participants=2)) as node:
        first, second = node.participants
        pairs = ["--endpoint", f"{first.url};{first.address}"]
        pairs += ["--endpoint", f"{second.url};{second.address}"]
        good = send(*pairs, "--file", REQUEST)
        wrong = send("--endpoint", f"{first.url};{second.address}", "--file", REQUEST)
    assert good.exit_code == 0, good.stderr
    assert good.stdout == ANSWER
    assert wrong.exit_code == 4
    assert "HTTP 401" in wrong.stderr
    assert "transfer address" in wrong.stderr


@pytest.mark.usefixtures("key_env")
def test_raw_scheme_for_old_nodes() -> None:
    """A pre-v0.2.6 node takes --scheme raw; the default hash scheme gets the --scheme hint."""
    with start_node(NodeConfig(scheme="raw")) as node:
        old = send("--node-address", node.url, "--file", REQUEST, "--scheme", "raw")
        new = send("--node-address", node.url, "--file", REQUEST)
    assert old.exit_code == 0, old.stderr
    assert new.exit_code == 4
    assert "--scheme" in new.stderr


CURL = shutil.which("curl")


@pytest.mark.usefixtures("key_env")
@pytest.mark.parametrize("overrides", [(), ("--max-tokens", "5")])
def test_dry_run_curl_is_accepted_by_the_node(ta: RunningNode, overrides: tuple[str, ...]) -> None:
    """The printed curl command sends exactly the signed bytes; the node answers 200."""
    before = ta.stats.received
    result = send(
        "--node-address", ta.url, "--file", REQUEST, *overrides, "--dry-run", "--print", "curl"
    )
    assert result.exit_code == 0, result.stderr
    command = result.stdout
    assert ta.stats.received == before  # nothing was sent
    assert "X-Timestamp" in command
    assert "X-Transfer-Address" not in command
    if CURL is None:  # the command itself is still checked above
        return
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)  # noqa: S607
    answer = json.loads(done.stdout)
    assert answer["object"] == "chat.completion"
    assert f"Authorization: {answer['id']}" in command  # the signature printed is the id


@pytest.mark.usefixtures("broker_env")
def test_dry_run_never_prints_the_api_key() -> None:
    """Bearer dry runs mask the key (http, json) or refer to it (curl)."""
    for form in ("http", "json", "curl"):
        result = send("--file", REQUEST, "--dry-run", "--print", form)
        assert result.exit_code == 0, result.stderr
        assert API_KEY not in result.stdout
    curl = send("--file", REQUEST, "--dry-run", "--print", "curl").stdout
    assert '"Authorization: Bearer $GONKA_BROKER_API_KEY"' in curl


@pytest.mark.usefixtures("key_env")
def test_dry_run_http_shows_request_line_headers_and_body(ta: RunningNode) -> None:
    """--print http: request line, the signature headers, a blank line, the exact body."""
    result = send("--node-address", ta.url, "--file", REQUEST, "--dry-run")
    head, _, body = result.stdout.partition("\n\n")
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\n")
    assert f"X-Requester-Address: {v.PRIVATE_KEY_ADDRESS}" in head
    assert body == Path(REQUEST).read_text()


def test_print_without_dry_run_is_refused() -> None:
    """--print only makes sense with --dry-run."""
    result = send("--file", REQUEST, "--print", "curl")
    assert result.exit_code == 2
