"""`--help` of every command and subcommand, as a stranger reads it: real processes,
piped (plain help, 80 columns), no traceback, whole one-line summaries in the group
listings, and every example of a docstring printed whole, so that it can be copied."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

# Every command path of `gonka`, groups first.
GROUPS = (("keys",), ("results",), ("config",))
COMMANDS = (
    ("send-request",),
    ("sign",),
    ("verify",),
    ("node",),
    ("endpoints",),
    ("account",),
    ("models",),
    *(
        ("keys", name)
        for name in ("add", "import", "list", "show", "export", "delete", "rename", "default")
    ),
    ("results", "merge"),
    ("results", "report"),
    ("config", "show"),
)


def gonka_help(path: tuple[str, ...], home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GONKA_HOME": str(home),
        "HOME": str(home),
        "COLUMNS": "80",
    }
    return subprocess.run(
        [sys.executable, "-m", "gonka_cli", *path, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def docstring_examples(path: tuple[str, ...]) -> list[str]:
    """The example lines of a command's docstring: those indented under the prose."""
    from gonka_cli.cli import full_app

    command = typer.main.get_command(full_app())
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    text = inspect.cleandoc(command.help or "")
    return [
        line.strip()
        for line in text.splitlines()
        if line.startswith("    ") and line.strip() not in ("", "\b")
    ]


def test_every_command_has_examples_to_check() -> None:
    """The check below has something to check: the commands with examples have them."""
    for path in (("sign",), ("verify",), ("send-request",), ("keys", "import")):
        assert docstring_examples(path), path


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_prints_every_example_whole(path: tuple[str, ...], tmp_path: Path) -> None:
    """Each example line of the docstring is one line of the help, not cut by re-wrapping
    (a `gonka verify --from-json` cut from its `-` would no longer run)."""
    done = gonka_help(path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "Traceback" not in done.stdout
    shown = {line.strip() for line in done.stdout.splitlines()}
    for example in docstring_examples(path):
        assert example in shown, f"{' '.join(path)}: {example!r} is cut in\n{done.stdout}"


@pytest.mark.parametrize("group", GROUPS, ids=" ".join)
def test_group_help_shows_whole_summaries(group: tuple[str, ...], tmp_path: Path) -> None:
    """`gonka keys --help` and the other groups list each subcommand with a whole one-line
    summary, not a first sentence cut off with "..."."""
    done = gonka_help(group, tmp_path)
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("Commands:")[1].strip().splitlines()
    subcommands = [path[1] for path in COMMANDS if path[:1] == group]
    assert len(listed) == len(subcommands)
    for line, name in zip(listed, subcommands, strict=True):
        assert line.split()[0] == name
        assert not line.rstrip().endswith("..."), line
        assert line.rstrip().endswith("."), line
