"""The ``gonka`` command line: parse, call the core, render, exit.

Each command lives in a module of this package; this one builds the app. Heavy
libraries (httpx, rich, the server) are imported inside the commands that need
them, so that ``gonka sign`` and ``gonka --help`` start fast.
"""

from __future__ import annotations

import typer

from gonka_cli.cli import diag, keys, node, send, signature
from gonka_cli.cli._common import GonkaGroup

app = typer.Typer(
    name="gonka",
    cls=GonkaGroup,
    help="Sign and send inference requests to the Gonka network.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)

app.command("sign")(signature.sign_command)
app.command("verify")(signature.verify_command)
app.command("node")(node.node_command)
app.add_typer(keys.app, name="keys")
app.command("send-request")(send.send_request_command)
app.command("endpoints")(diag.endpoints_command)
app.command("account")(diag.account_command)
app.command("models")(diag.models_command)
app.add_typer(diag.config_app, name="config")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gonka")
