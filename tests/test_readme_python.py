"""The README's "From Python" examples run as they are written, against dev nodes, so they
cannot rot.

Each ```python block of that section is run on its own: a block that defines tests goes
through pytester (as a user's test file would), any other is executed with
`GONKA_SOURCE_URL` pointing at a dev transfer agent, `GONKA_PRIVATE_KEY` set, and the
broker variables pointing at a dev gateway, as the README says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.devnode import NodeConfig, RunningNode, start_node
from gonka_cli.keys import SigningKey

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
SECTION = "\n## From Python\n"  # other sections show fragments (a KEY_HEX to fill in)


def python_blocks() -> list[tuple[int, str]]:
    """Every ```python block of the README's "From Python" section, with its first line."""
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return [
        (text.count("\n", 0, found.start()) + 2, found.group(1))
        for found in BLOCK.finditer(text, start, end)
    ]


BLOCKS = python_blocks()
SCRIPTS = [(line, code) for line, code in BLOCKS if "def test_" not in code]
TEST_FILES = [(line, code) for line, code in BLOCKS if "def test_" in code]


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[RunningNode, RunningNode]]:
    with (
        start_node(NodeConfig(participants=2)) as ta,
        start_node(NodeConfig(mode="gateway", api_keys=("sk-readme",))) as gateway,
    ):
        yield ta, gateway


@pytest.fixture
def readme_environment(
    nodes: tuple[RunningNode, RunningNode], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ta, gateway = nodes
    monkeypatch.setenv("GONKA_HOME", str(tmp_path))
    monkeypatch.setenv("GONKA_SOURCE_URL", ta.url)
    monkeypatch.setenv("GONKA_PRIVATE_KEY", SigningKey.generate().to_hex())
    monkeypatch.setenv("GONKA_BROKER_URL", gateway.base_url)
    monkeypatch.setenv("GONKA_BROKER_API_KEY", "sk-readme")
    monkeypatch.setenv("GONKA_MODEL", "Qwen/QwQ-32B")
    for name in ("GONKA_ADDRESS", "GONKA_ENDPOINTS", "GONKA_KEYRING_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)


def test_the_readme_has_its_python_examples() -> None:
    """The From Python section's examples are found (an empty list would pass everything)."""
    assert len(SCRIPTS) >= 5
    assert len(TEST_FILES) >= 1


@pytest.mark.parametrize(("line", "code"), SCRIPTS, ids=[f"README.md:{n}" for n, _ in SCRIPTS])
@pytest.mark.usefixtures("readme_environment")
def test_readme_example_runs(line: int, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A README example runs to its end and prints what it promises (answers, not errors)."""
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})  # noqa: S102
    printed = capsys.readouterr().out
    if "chat.completions.create" in code or "requests.post" in code or ".post(" in code:
        assert "Echo: " in printed


@pytest.mark.parametrize(
    ("line", "code"), TEST_FILES, ids=[f"README.md:{n}" for n, _ in TEST_FILES]
)
def test_readme_test_file_passes(line: int, code: str, pytester: pytest.Pytester) -> None:
    """The README's pytest example passes as a user's test file, with the plugin alone."""
    pytester.makepyfile(test_from_readme=code)
    # In a subprocess, without hypothesis: see test_pytest_plugin.run.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=code.count("def test_"))
