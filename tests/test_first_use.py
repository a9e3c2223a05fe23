"""The first ten minutes, in real processes: the broker path with a key in the store,
``--dev`` without a terminal, and a prompt instead of a JSON body."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.devnode.server import RunningNode
from gonka_cli.errors import ConfigError
from gonka_cli.settings import AuthMode, choose_auth
from tests import vectors as v

REPO = Path(__file__).resolve().parent.parent
REQUEST = str(REPO / "inference-requests" / "request_payload.json")
ANSWER = "Echo: What is the capital city of France?\n"
API_KEY = "obk-test-key-0123456789"
PASSPHRASE = "correct horse battery staple"


def gonka(
    *args: str, home: Path, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    """`gonka ARGS` as a real process: no terminal, only the environment given."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GONKA_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "gonka_cli", *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def stored_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gonka home holding one encrypted key, the default, as `gonka keys add` leaves it."""
    home = tmp_path_factory.mktemp("stored") / "home"
    added = gonka("keys", "add", "mykey", home=home, env={"GONKA_KEYRING_PASSPHRASE": PASSPHRASE})
    assert added.returncode == 0, added.stderr
    return home


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningNode]:
    with start_node(NodeConfig(mode="gateway", api_keys=(API_KEY,))) as node:
        yield node


@pytest.fixture(scope="module")
def ta() -> Iterator[RunningNode]:
    with start_node(NodeConfig()) as node:
        yield node


def test_broker_environment_answers_with_a_stored_key(
    stored_home: Path, gateway: RunningNode
) -> None:
    """The README's broker example answers although a signing key is stored."""
    env = {"GONKA_BROKER_URL": gateway.url + "/v1", "GONKA_BROKER_API_KEY": API_KEY}
    done = gonka("send-request", "--file", REQUEST, home=stored_home, env=env)
    assert (done.returncode, done.stdout) == (0, ANSWER), done.stderr


def test_base_url_and_key_file_answer_with_a_stored_key(
    stored_home: Path, gateway: RunningNode, tmp_path: Path
) -> None:
    """--base-url with --api-key-file is a Bearer request, whatever key is stored."""
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    args = ["--base-url", gateway.url + "/v1", "--api-key-file", str(key_file)]
    done = gonka("send-request", *args, "--file", REQUEST, home=stored_home)
    assert (done.returncode, done.stdout) == (0, ANSWER), done.stderr


def test_a_transfer_agent_flag_beats_a_broker_in_the_environment(
    stored_home: Path, gateway: RunningNode, ta: RunningNode
) -> None:
    """--node-address (a flag) over GONKA_BROKER_URL (the environment): a signed request."""
    env = {
        "GONKA_BROKER_URL": gateway.url + "/v1",
        "GONKA_BROKER_API_KEY": API_KEY,
        "GONKA_KEYRING_PASSPHRASE": PASSPHRASE,
    }
    done = gonka(
        "send-request", "--node-address", ta.url, "--file", REQUEST, home=stored_home, env=env
    )
    assert (done.returncode, done.stdout) == (0, ANSWER), done.stderr


def test_only_a_truly_ambiguous_command_is_refused(
    stored_home: Path, gateway: RunningNode, ta: RunningNode
) -> None:
    """A broker and a TA equally strong, keys for both: exit 7, the hint names --auth,
    and --auth bearer settles it."""
    env = {
        "GONKA_BROKER_URL": gateway.url + "/v1",
        "GONKA_BROKER_API_KEY": API_KEY,
        "GONKA_NODE_ADDRESS": ta.url,
    }
    before = ta.stats.received + gateway.stats.received
    refused = gonka("send-request", "--file", REQUEST, home=stored_home, env=env)
    assert refused.returncode == 7
    assert "--auth bearer" in refused.stderr
    assert ta.stats.received + gateway.stats.received == before
    settled = gonka(
        "send-request", "--auth", "bearer", "--file", REQUEST, home=stored_home, env=env
    )
    assert (settled.returncode, settled.stdout) == (0, ANSWER), settled.stderr


def test_dev_uses_the_throwaway_key_with_an_encrypted_key_stored(stored_home: Path) -> None:
    """--dev with a prompt answers with no terminal and no passphrase anywhere."""
    done = gonka("send-request", "--dev", "What is the capital of France?", home=stored_home)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Echo: What is the capital of France?\n"
    assert "throwaway dev key" in done.stderr
    named = gonka("send-request", "--dev", "--key", "mykey", "Hi", home=stored_home)
    assert named.returncode == 7  # a key named explicitly is opened, and needs its passphrase
    assert "passphrase" in named.stderr


def _dry_body(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr
    body: dict[str, object] = json.loads(json.loads(done.stdout)["body"])
    return body


def test_prompt_forms_build_a_chat_request(ta: RunningNode, tmp_path: Path) -> None:
    """TEXT, --prompt and --prompt - become {model, messages}; --system comes first; the
    model's source is said on stderr (the endpoint's first model, GONKA_MODEL), not for --model."""
    env = {"GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX}
    dry = ["--node-address", ta.url, "--dry-run", "--print", "json"]
    first = gonka("send-request", *dry, "Hello there", home=tmp_path, env=env)
    assert _dry_body(first) == {
        "model": ta.config.models[0],
        "messages": [{"role": "user", "content": "Hello there"}],
    }
    assert f"from the first model of {ta.url}/v1/models" in first.stderr
    piped = gonka(
        "send-request", *dry, "-p", "-", "--system", "Be brief", home=tmp_path,
        env={**env, "GONKA_MODEL": "m/one"}, stdin=b"Two\nlines\n",
    )  # fmt: skip
    assert _dry_body(piped) == {
        "model": "m/one",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Two\nlines"},
        ],
    }
    assert "model m/one (from $GONKA_MODEL)" in piped.stderr
    flagged = gonka(
        "send-request", *dry, "--prompt", '{"x": 1}', "-m", "m/two", home=tmp_path, env=env
    )
    assert _dry_body(flagged)["messages"] == [{"role": "user", "content": '{"x": 1}'}]
    assert "model" not in flagged.stderr


def test_a_json_object_is_still_the_raw_body(ta: RunningNode, tmp_path: Path) -> None:
    """TEXT starting with '{' is the request body byte for byte, as in inferenced."""
    text = '{"model": "Qwen/QwQ-32B", "messages": [{"role": "user", "content": "Hi"}]}'
    env = {"GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX}
    done = gonka(
        "send-request",
        "--node-address",
        ta.url,
        "--dry-run",
        "--print",
        "json",
        text,
        home=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["body"] == text
    broken = gonka("send-request", "--node-address", ta.url, '{"model": ', home=tmp_path, env=env)
    assert broken.returncode == 2
    assert "not valid JSON" in broken.stderr


def test_prompt_and_body_together_are_refused(tmp_path: Path) -> None:
    """A prompt with --file, or --system with a JSON body: exit 2, one line, nothing sent."""
    both = gonka("send-request", "--dev", "-p", "Hi", "--file", REQUEST, home=tmp_path)
    assert both.returncode == 2
    assert both.stderr.startswith("error: ")
    system = gonka("send-request", "--dev", "--system", "x", "--file", REQUEST, home=tmp_path)
    assert system.returncode == 2
    assert "--system" in system.stderr


@pytest.mark.parametrize(
    ("to_broker", "to_ta", "signing", "bearer", "expected"),
    [
        (1, None, True, True, AuthMode.BEARER),  # GONKA_BROKER_URL and a stored key
        (0, None, True, False, AuthMode.BEARER),  # --base-url: the missing API key is said later
        (None, 0, True, True, AuthMode.SIGNATURE),  # --node-address
        (1, 0, True, True, AuthMode.SIGNATURE),  # a flag over the environment
        (0, 1, True, True, AuthMode.BEARER),
        (None, 0, False, True, AuthMode.BEARER),  # a TA's URL with only an API key
        (1, 1, True, False, AuthMode.SIGNATURE),  # equally strong: the keys decide
    ],
)
def test_the_destination_decides_the_way_in(
    to_broker: int | None, to_ta: int | None, signing: bool, bearer: bool, expected: AuthMode
) -> None:
    """auto follows the stronger destination, then the keys."""
    chosen = choose_auth("auto", signing=signing, bearer=bearer, to_broker=to_broker, to_ta=to_ta)
    assert chosen is expected


def test_equally_strong_destinations_with_both_keys_name_auth() -> None:
    """The one ambiguous case is refused, and the hint names --auth."""
    with pytest.raises(ConfigError) as caught:
        choose_auth("auto", signing=True, bearer=True, to_broker=1, to_ta=1)
    assert "--auth bearer" in str(caught.value.hint)
