"""The pytest plugin, run by pytest's own pytester as a user's project would run it."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]


def test_the_plugin_is_cheap_to_load() -> None:
    """Loading the plugin (every pytest run does) loads no server, HTTP or curve library."""
    probe = "import gonka_cli.pytest_plugin, sys; print(sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    for heavy in ("uvicorn", "starlette", "httpx2", "coincurve", "rich", "cryptography"):
        assert f"'{heavy}'" not in loaded, heavy


def run(pytester: pytest.Pytester) -> pytest.RunResult:
    """Run pytest in a subprocess, as a user's project would (an in-process run would unload
    the modules it imported, httpcore2's among them, under the feet of later tests).
    Hypothesis, one of our test dependencies, costs a second to load: a user's project
    that installed only gonka-cli has none."""
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-v"
    )


def test_a_three_line_test_file_passes(pytester: pytest.Pytester) -> None:
    """The issue's three lines: the fixture comes from the installed plugin, no conftest."""
    pytester.makepyfile(
        test_three="""
        def test_node(gonka_node):
            assert gonka_node.stats.received == 0
            assert gonka_node.url.startswith("http://127.0.0.1:")
        """
    )
    run(pytester).assert_outcomes(passed=1)


SIGNED = """
import json
import httpx2
from gonka_cli import signed_headers

def test_signed(gonka_node):
    body = json.dumps({"model": "Qwen/QwQ-32B",
                       "messages": [{"role": "user", "content": "Hi"}]}).encode()
    headers = signed_headers(gonka_node.key, body, gonka_node.addresses[0])
    answer = httpx2.post(gonka_node.base_url + "/chat/completions", content=body, headers=headers)
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: Hi"
    assert gonka_node.stats.accepted == 1
    assert gonka_node.endpoints == [gonka_node.urls[0] + ";" + gonka_node.addresses[0]]
"""

FACTORY = """
import pytest
from gonka_cli.devnode import NodeConfig

def test_factory(gonka_node_factory):
    tas = gonka_node_factory(participants=3, fault_rate=0.5, faults=("429",), latency_ms=5)
    gateway = gonka_node_factory(NodeConfig(mode="gateway", api_keys=("sk-t",)))
    retired = gonka_node_factory(mode="retired")
    assert len(set(tas.addresses)) == 3 and len(tas.urls) == 3
    assert tas.config.latency_ms == 5 and tas.api_key is None
    assert gateway.api_key == "sk-t" and retired.config.mode == "retired"
    assert tas.key.address.startswith("gonka1")
    with pytest.raises(TypeError):
        gonka_node_factory(NodeConfig(), participants=2)
    with open("urls.txt", "w") as out:
        out.write("\\n".join(tas.urls + gateway.urls + retired.urls))
"""

BAD = """
def test_bad(gonka_node_factory):
    gonka_node_factory(mode="sideways")
"""


def test_the_fixtures_serve_a_users_tests(pytester: pytest.Pytester) -> None:
    """A signed request is served and counted; the factory builds any node and stops them all
    after the test; a configuration no node can run fails that test with the node's message."""
    pytester.makepyfile(test_signed=SIGNED, test_factory=FACTORY, test_bad=BAD)
    result = run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*UsageError: mode must be one of*"])
    urls = (pytester.path / "urls.txt").read_text().split()
    assert len(urls) == 5
    for url in urls:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2).close()
