"""The ``gonka`` command line: parse, call the core, render, exit.

Each command lives in a module of this package; `build_app` assembles them. `main`
builds only the command being run (when the first argument names one), so that
``gonka sign`` neither imports the other commands' modules nor converts their
options: start-up stays close to that of typer and coincurve alone. Heavy libraries
(httpx2, rich, the server) are imported inside the commands that need them.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from typing import Annotated

import typer

from gonka_cli.cli._common import GonkaGroup, help_markup

# name -> (module in this package, attribute, whether it is a sub-app), in help order.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "send-request": ("send", "send_request_command", False),
    "results": ("results", "app", True),
    "sign": ("signature", "sign_command", False),
    "verify": ("signature", "verify_command", False),
    "keys": ("keys", "app", True),
    "node": ("node", "node_command", False),
    "endpoints": ("diag", "endpoints_command", False),
    "account": ("diag", "account_command", False),
    "models": ("diag", "models_command", False),
    "config": ("diag", "config_app", True),
}


# One line each for the top-level help (click would cut the docstrings' first sentences
# off with "..." to fit); a command missing here shows its docstring's first sentence.
SUMMARIES: dict[str, str] = {
    "send-request": "Send a chat request: signed to a TA, or Bearer to a broker.",
    "sign": "Sign a request body as a transfer agent checks it.",
    "verify": "Check a signature: exit 0 if valid, 3 if not.",
    "keys": "Create, import, list, export and delete signing keys.",
    "node": "Run a local transfer agent or gateway to test against.",
    "endpoints": "List the epoch's transfer agents and which are usable.",
    "account": "Is an account ready to sign? Its public key and balance.",
    "models": "List the models a node or gateway serves.",
    "config": "Show every setting and where its value comes from.",
    "results": "Merge shard results files and report on a finished batch.",
}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"gonka-cli {version('gonka-cli')}\n")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Sign and send inference requests to the Gonka network."""


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with the command `only` alone."""
    app = typer.Typer(
        name="gonka",
        cls=GonkaGroup,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        # --install-completion/--show-completion on the bare group only: `gonka sign`
        # builds no completion parameters (start-up stays as it was).
        add_completion=only is None,
        rich_markup_mode=help_markup(),
    )
    app.callback()(_root)  # a callback keeps a one-command app a group: `gonka sign ...`
    for name, (module, attribute, is_group) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"gonka_cli.cli.{module}"), attribute)
        if is_group:
            app.add_typer(target, name=name, short_help=SUMMARIES.get(name))
        else:
            app.command(name, short_help=SUMMARIES.get(name))(target)
    return app


@cache
def full_app() -> typer.Typer:
    """Every command: what `--help` shows and what tests drive through CliRunner."""
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # `from gonka_cli.cli import app`, built on first use
        return full_app()
    raise AttributeError(name)


def main() -> None:
    """Console-script entry point."""
    first = sys.argv[1] if len(sys.argv) > 1 else None
    build_app(first if first in COMMANDS else None)(prog_name="gonka")
