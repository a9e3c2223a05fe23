"""The small first-use fixes, each in a real process against the dev node: an explicit
--timestamp out of the window, a UTF-8 BOM, type errors in settings, an answer cut by
max_tokens, a curl command that works from anywhere, a GONKA_HOME that is a file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.devnode.server import RunningNode
from tests import vectors as v

REPO = Path(__file__).resolve().parent.parent
REQUEST = REPO / "inference-requests" / "request_payload.json"
ANSWER = "Echo: What is the capital city of France?\n"


def gonka(
    *args: str, home: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`gonka ARGS` as a real process, signing with the vectors' key."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GONKA_HOME": str(home),
        "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX,
    }
    return subprocess.run(
        [sys.executable, "-m", "gonka_cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def ta() -> Iterator[RunningNode]:
    with start_node(NodeConfig()) as node:
        yield node


def test_an_explicit_timestamp_out_of_the_window_is_not_a_clock_problem(
    ta: RunningNode, tmp_path: Path
) -> None:
    """--timestamp 1: exit 4, one attempt, the hint says the window and not NTP."""
    before = ta.stats.received
    done = gonka(
        "send-request",
        "--node-address",
        ta.url,
        "-f",
        str(REQUEST),
        "--timestamp",
        "1",
        home=tmp_path,
    )
    assert done.returncode == 4
    assert "--timestamp 1 is outside the window" in done.stderr
    assert "NTP" not in done.stderr
    assert ta.stats.received == before + 1


def test_a_byte_order_mark_is_dropped_before_parsing_and_sending(
    ta: RunningNode, tmp_path: Path
) -> None:
    """A payload saved with a UTF-8 BOM is accepted; the bytes sent are those after it."""
    with_bom = tmp_path / "bom.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + REQUEST.read_bytes())
    sent = gonka("send-request", "--node-address", ta.url, "-f", str(with_bom), home=tmp_path)
    assert (sent.returncode, sent.stdout) == (0, ANSWER), sent.stderr
    shown = gonka(
        "send-request",
        "--node-address",
        ta.url,
        "-f",
        str(with_bom),
        "--dry-run",
        "--print",
        "json",
        home=tmp_path,
    )
    assert json.loads(shown.stdout)["body"] == REQUEST.read_text()
    curl = gonka(
        "send-request",
        "--node-address",
        ta.url,
        "-f",
        str(with_bom),
        "--dry-run",
        "--print",
        "curl",
        home=tmp_path,
    )
    assert "@/" not in curl.stdout  # the file holds other bytes: the body is inlined


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GONKA_MAX_RETRIES", "abc", "$GONKA_MAX_RETRIES: expected an integer, got 'abc'"),
        ("GONKA_TIMEOUT", "soon", "$GONKA_TIMEOUT: expected a number, got 'soon'"),
    ],
)
def test_setting_type_errors_read_well(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    """A wrong type in the environment: exit 7 and a grammatical line."""
    done = gonka("send-request", "--dev", "Hi", home=tmp_path, env={variable: value})
    assert done.returncode == 7
    assert done.stderr.startswith(f"error: {expected}\n")


def test_a_profile_type_error_reads_well(tmp_path: Path) -> None:
    """A profile's max_retries = "x": the same wording, naming the profile."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[profiles.default]\nmax_retries = "x"\n')
    done = gonka("send-request", "--dev", "Hi", home=home)
    assert done.returncode == 7
    assert "expected an integer, got 'x'" in done.stderr


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_an_answer_cut_by_max_tokens_is_said(ta: RunningNode, tmp_path: Path, stream: str) -> None:
    """--max-tokens 5: stdout is empty (the tokens went to reasoning), and stderr says
    finish_reason: length and that stdout got nothing."""
    args = ["--node-address", ta.url, "-f", str(REQUEST), "--max-tokens", "5", stream]
    done = gonka("send-request", *args, "--hide-reasoning", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "finish_reason: length" in done.stderr
    assert "stdout got nothing" in done.stderr
    enough = gonka("send-request", "--node-address", ta.url, "-f", str(REQUEST), home=tmp_path)
    assert "finish_reason" not in enough.stderr


def test_dry_run_curl_works_from_another_directory(ta: RunningNode, tmp_path: Path) -> None:
    """A relative --file becomes an absolute @path: the curl command answers from elsewhere."""
    relative = os.path.relpath(REQUEST, REPO)
    shown = gonka(
        "send-request",
        "--node-address",
        ta.url,
        "-f",
        relative,
        "--dry-run",
        "--print",
        "curl",
        home=tmp_path,
        cwd=REPO,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"@{REQUEST}" in shown.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert shutil.which("curl"), "this test runs the printed curl command"
    done = subprocess.run(  # the command we printed, run by the system shell
        ["/bin/sh", "-c", shown.stdout], capture_output=True, text=True, cwd=elsewhere, check=False
    )
    assert json.loads(done.stdout)["object"] == "chat.completion"


def test_a_gonka_home_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    """GONKA_HOME pointing at a file: exit 7 naming it, not "no keys yet"."""
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    for args in (["keys", "list"], ["send-request", "--dev", "Hi"]):
        done = gonka(*args, home=a_file)
        assert done.returncode == 7
        assert f"$GONKA_HOME={a_file} is not a directory" in done.stderr
        assert "no keys yet" not in done.stdout + done.stderr


def test_top_level_help_shows_whole_summaries(tmp_path: Path) -> None:
    """Piped `gonka --help` lists every command with its whole one-line summary, no "..."."""
    from gonka_cli.cli import COMMANDS, SUMMARIES

    done = gonka("--help", home=tmp_path)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.split("Commands:")[1]
    assert "..." not in commands
    for name in COMMANDS:
        assert f"{name}  " in commands
        assert SUMMARIES[name] in commands


def test_shell_completion(tmp_path: Path) -> None:
    """--show-completion prints a script for the shell; the completion it calls answers
    command names and options; --install-completion is offered in the help."""
    shown = gonka("--show-completion", "bash", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "_GONKA_COMPLETE=complete_bash" in shown.stdout
    assert "--install-completion" in gonka("--help", home=tmp_path).stdout
    names = gonka(
        home=tmp_path,
        env={"_GONKA_COMPLETE": "complete_bash", "COMP_WORDS": "gonka se", "COMP_CWORD": "1"},
    )
    assert names.stdout.split() == ["send-request"]
    options = gonka(
        home=tmp_path,
        env={
            "_GONKA_COMPLETE": "complete_bash",
            "COMP_WORDS": "gonka send-request --base",
            "COMP_CWORD": "2",
        },
    )
    assert options.stdout.split() == ["--base-url"]
