"""Diagnostics: ``gonka endpoints``, ``gonka account``, ``gonka models``, ``gonka config show``.

Heavy modules (httpx2, rich) are imported inside the commands.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gonka_cli.cli._common import (
    AccountAddressOpt,
    FromOpt,
    HomeOpt,
    KeyOpt,
    KeyringBackendOpt,
    KeyringDirOpt,
    PassphraseFileOpt,
    PrivateKeyFileOpt,
    help_markup,
)
from gonka_cli.cli.send import run_async
from gonka_cli.errors import ConfigError

if TYPE_CHECKING:
    from gonka_cli.endpoints import Participant
    from gonka_cli.settings import Settings, Timeouts


class TableOutput(StrEnum):
    """A table for people or JSON for programs."""

    table = "table"
    json = "json"


OutputOpt = Annotated[
    TableOutput, typer.Option("--output", "-o", help="table (on a terminal) or json.")
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", metavar="NAME", help="Profile in the config file.")
]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source-url", metavar="URL", help="The node to ask (else GONKA_SOURCE_URL)."),
]
NodeOpt = Annotated[
    str | None,
    typer.Option("--node-address", "--base-url", metavar="URL", help="The node or gateway to ask."),
]


# --- gonka endpoints ----------------------------------------------------------------------------


def endpoints_command(
    source_url: SourceOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only participants serving MODEL.")
    ] = None,
    output: OutputOpt = TableOutput.table,
    profile: ProfileOpt = None,
) -> None:
    """List the current epoch's participants: URL, address, models, weight, usable or why not.

    A participant is usable when it has a URL and an address, is not excluded, and the
    chain's TA allowlist (if not empty) lets it in.
    """
    from gonka_cli.settings import load_settings, timeouts_from

    settings = load_settings({"source_url": source_url}, profile=profile)
    source = settings.text("source_url") or settings.text("node_address")
    if not source:
        raise ConfigError("no node to ask", hint="pass --source-url URL or set GONKA_SOURCE_URL")
    participants = run_async(_participants(source, timeouts_from(settings)))
    shown = [p for p in participants if model is None or not p.models or model in p.models]
    if output is TableOutput.json:
        _print_json([_participant_json(p) for p in shown])
        return
    rows = [
        (
            p.inference_url or "-",
            p.address or "-",
            ", ".join(p.models) or "-",
            f"{p.weight:g}",
            _status(p),
        )
        for p in shown
    ]
    _print_table(
        ("URL", "ADDRESS", "MODELS", "WEIGHT", "STATUS"), rows, f"participants of {source}"
    )


async def _participants(source: str, timeouts: Timeouts) -> list[Participant]:
    from gonka_cli.endpoints import discover
    from gonka_cli.transport import async_client

    async with async_client(timeouts) as client:
        return await discover(client, source, timeouts)


def _status(participant: Participant) -> str:
    if participant.excluded:
        return f"excluded: {participant.reason}" if participant.reason else "excluded"
    if not participant.allowed:
        return "not on the TA allowlist"
    if not (participant.address and participant.inference_url):
        return "no URL or address"
    if not participant.valid_url:
        return "not a valid URL"
    return "usable"


def _participant_json(participant: Participant) -> dict[str, Any]:
    return {
        "url": participant.inference_url,
        "address": participant.address,
        "models": list(participant.models),
        "weight": participant.weight,
        "excluded": participant.excluded,
        "reason": participant.reason or None,
        "allowed": participant.allowed,
        "usable": participant.usable,
    }


# --- gonka account ------------------------------------------------------------------------------


def account_command(
    address: Annotated[
        str | None, typer.Argument(metavar="[ADDRESS]", help="Default: the signing key's.")
    ] = None,
    node_address: NodeOpt = None,
    source_url: SourceOpt = None,
    key: KeyOpt = None,
    account_address: AccountAddressOpt = None,
    private_key_file: PrivateKeyFileOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    from_name: FromOpt = None,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    output: Annotated[
        TableOutput, typer.Option("--output", "-o", help="table (text) or json.")
    ] = TableOutput.table,
    profile: ProfileOpt = None,
) -> None:
    """Is this account ready to sign requests? Its public key on chain, and its balance.

    An account must have published its public key (any transaction does it, for example
    `inferenced publish-pubkey`) before a transfer agent can verify its signatures.
    """
    from gonka_cli.keys import parse_address
    from gonka_cli.settings import load_settings, timeouts_from

    flags = {
        "node_address": node_address,
        "source_url": source_url,
        "key": key,
        "account_address": account_address,
        "private_key_file": private_key_file,
        "passphrase_file": passphrase_file,
        "from_name": from_name,
        "keyring_backend": keyring_backend,
        "keyring_dir": keyring_dir,
        "home": home,
    }
    settings = load_settings(flags, profile=profile)
    who = parse_address(address) if address else _own_address(settings)
    node = _node_root(settings)
    document = run_async(_get(node + f"/v2/accounts/{who}", timeouts_from(settings), None))
    info = document if isinstance(document, dict) else {}
    pubkey = info.get("pubkey") or None
    result = {
        "address": who,
        "pubkey": pubkey,
        "has_pubkey": bool(pubkey),
        "balance": info.get("balance"),
        "denom": info.get("denom"),
    }
    if output is TableOutput.json:
        _print_json(result)
    else:
        _show_account(result)


def _show_account(account: dict[str, Any]) -> None:
    from gonka_cli.render import make_consoles, notice, print_line

    consoles = make_consoles()
    pubkey = account["pubkey"]
    print_line(consoles.out, f"address:    {account['address']}")
    print_line(consoles.out, f"public key: {f'on chain ({pubkey})' if pubkey else 'NOT on chain'}")
    print_line(consoles.out, f"balance:    {account['balance']} {account['denom'] or ''}".rstrip())
    if not pubkey:
        notice(
            consoles.err,
            "this account cannot sign requests yet: publish its public key with any "
            "transaction, e.g. `inferenced publish-pubkey`",
            "warning",
        )


def _own_address(settings: Settings) -> str:
    from gonka_cli.keys import parse_address
    from gonka_cli.settings import signing_key

    configured = os.environ.get("GONKA_ADDRESS") or settings.text("account_address")
    return parse_address(configured) if configured else signing_key(settings).address


def _node_root(settings: Settings) -> str:
    from gonka_cli.endpoints import node_root, parse_endpoints

    url = settings.text("node_address") or settings.text("source_url")
    if url is None and settings.strings("endpoints"):
        url = parse_endpoints(settings.strings("endpoints"))[0].url
    if url is None:
        raise ConfigError("no node to ask", hint="pass --node-address URL or --source-url URL")
    return node_root(url)


async def _get(url: str, timeouts: Timeouts, headers: dict[str, str] | None) -> Any:
    from gonka_cli.transport import async_client, get_json

    async with async_client(timeouts) as client:
        return await get_json(client, url, timeouts, headers=headers)


# --- gonka models -------------------------------------------------------------------------------


def models_command(
    base_url: NodeOpt = None,
    api_key_file: Annotated[
        str | None, typer.Option("--api-key-file", metavar="PATH", help="Broker API key file.")
    ] = None,
    api_key_cmd: Annotated[
        str | None, typer.Option("--api-key-cmd", metavar="CMD", help="Command printing the key.")
    ] = None,
    output: OutputOpt = TableOutput.table,
    profile: ProfileOpt = None,
) -> None:
    """List the models a node or gateway serves (GET /v1/models), with context length and
    pricing where the server gives them. An API key, when configured, is sent along."""
    from gonka_cli.endpoints import normalize_base_url
    from gonka_cli.settings import (
        api_key_configured,
        load_api_key,
        load_settings,
        timeouts_from,
    )

    flags = {"node_address": base_url, "api_key_file": api_key_file, "api_key_cmd": api_key_cmd}
    settings = load_settings(flags, profile=profile)
    url = base_url or settings.text("broker_url") or settings.text("node_address")
    url = url or settings.text("source_url")
    if not url:
        raise ConfigError("no base URL", hint="pass --base-url URL or set GONKA_BROKER_URL")
    headers = None
    if api_key_configured(settings) and settings.text("auth") != "signature":
        headers = {"Authorization": f"Bearer {load_api_key(settings)}"}
    document = run_async(
        _get(normalize_base_url(url) + "/models", timeouts_from(settings), headers)
    )
    models = _models(document)
    if output is TableOutput.json:
        _print_json(models)
        return
    rows = [
        (str(m.get("id", "?")), str(m.get("context_length") or "-"), _pricing(m.get("pricing")))
        for m in models
    ]
    _print_table(("MODEL", "CONTEXT", "PRICING"), rows, f"models at {url}")


def _models(document: Any) -> list[dict[str, Any]]:
    """OpenAI's ``{"data": [...]}`` or the TA's ``{"models": [...]}``."""
    if isinstance(document, dict):
        document = document.get("data", document.get("models", []))
    return [m for m in document or () if isinstance(m, dict)]


def _pricing(pricing: Any) -> str:
    if isinstance(pricing, dict):
        return ", ".join(f"{k} {v}" for k, v in pricing.items()) or "-"
    return "-" if pricing in (None, "") else str(pricing)


# --- gonka config show --------------------------------------------------------------------------

config_app = typer.Typer(
    help="Settings: what each one is and where its value comes from.",
    no_args_is_help=True,
    rich_markup_mode=help_markup(),
)


@config_app.command("show", short_help="Print every setting and where its value comes from.")
def config_show_command(profile: ProfileOpt = None, output: OutputOpt = TableOutput.table) -> None:
    """Print every effective setting and where it came from (flag, env, profile, default);
    secrets are masked."""
    from gonka_cli.settings import SETTINGS, config_path, display, load_settings

    settings = load_settings({}, profile=profile)
    if output is TableOutput.json:
        _print_json(
            {
                "config_file": str(config_path()),
                "profile": settings.profile,
                "settings": {
                    s.name: {"value": display(settings, s.name), "source": settings[s.name].origin}
                    for s in SETTINGS
                },
            }
        )
        return
    rows = [(s.name, display(settings, s.name), settings[s.name].origin) for s in SETTINGS]
    title = f"settings (config file {config_path()}, profile {settings.profile or 'none'})"
    _print_table(("SETTING", "VALUE", "FROM"), rows, title)


# --- output ---------------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    from gonka_cli.render import make_consoles, print_json

    print_json(make_consoles().out, value)


def _print_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> None:
    from gonka_cli.render import make_consoles, print_table

    print_table(make_consoles().out, columns, rows, title=title)
