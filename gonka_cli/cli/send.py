"""``gonka send-request``: send a chat request (signed, or with an API key) and show the answer.

httpx2, rich, httpx2's SSE parser and the dev node are imported inside the functions below, never
at module level, so that ``gonka --help`` and ``gonka sign`` stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

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
    SchemeChoice,
    TimestampOpt,
    TransferOpt,
)
from gonka_cli.cli.send_batch import (  # issue 6: batch sending
    BatchArgs,
    BatchJob,
    ConcurrencyOpt,
    DirOpt,
    FailFastOpt,
    FilesOpt,
    GlobOpt,
    JsonlOpt,
    OutputDirOpt,
    OutputFileOpt,
    QuietOpt,
    RateOpt,
    RecursiveOpt,
    ResumeOpt,
    ShardCountOpt,
    ShardOpt,
    refuse_single_only,
)
from gonka_cli.errors import HTTPClientError, Interrupted, UsageError

if TYPE_CHECKING:
    from gonka_cli.client import Notice, Outcome
    from gonka_cli.keys import SigningKey
    from gonka_cli.payloads import ChatBody, Overrides
    from gonka_cli.render import Consoles, TerminalSink
    from gonka_cli.settings import SendConfig, Settings

T = TypeVar("T")

WHERE = "Where to send"
KEYS = "Keys"
BODY = "Body overrides"
OUTPUT = "Output"
NETWORK = "Retries and time-outs"


class SendOutput(StrEnum):
    """What stdout carries."""

    text = "text"
    json = "json"
    raw = "raw"


class PrintAs(StrEnum):
    """How ``--dry-run`` shows the request."""

    http = "http"
    curl = "curl"
    json = "json"


class AuthChoice(StrEnum):
    """How requests are authorised."""

    auto = "auto"
    signature = "signature"
    bearer = "bearer"


@dataclass(frozen=True)
class View:
    """How to show the answer."""

    output: SendOutput
    hide_reasoning: bool
    usage: bool
    verbose: bool


def send_request_command(
    text: Annotated[
        str | None,
        typer.Argument(
            metavar="[PROMPT|JSON]",
            help="A prompt, or a JSON request body (text starting with '{').",
        ),
    ] = None,
    file: FilesOpt = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            "-p",
            metavar="TEXT|-",
            help="Send TEXT as the user message (- reads it from stdin).",
        ),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", metavar="TEXT", help="A system message before the prompt."),
    ] = None,
    node_address: Annotated[
        str | None,
        typer.Option(
            "--node-address",
            metavar="URL",
            help="A transfer agent's URL (/v1 optional): a signed request.",
            rich_help_panel=WHERE,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            metavar="URL",
            help="A broker's or gateway's base URL (/v1 optional): a Bearer request.",
            rich_help_panel=WHERE,
        ),
    ] = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--endpoint",
            metavar="URL;ADDR",
            help="A TA and its address; repeat for failover.",
            rich_help_panel=WHERE,
        ),
    ] = None,
    source_url: Annotated[
        str | None,
        typer.Option(
            "--source-url",
            metavar="URL",
            help="Discover the TAs from this node.",
            rich_help_panel=WHERE,
        ),
    ] = None,
    endpoint_account: TransferOpt = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Start a local dev node, send to it, stop it.",
            rich_help_panel=WHERE,
        ),
    ] = False,
    auth: Annotated[
        AuthChoice | None,
        typer.Option(
            "--auth", help="auto, signature (TA) or bearer (broker).", rich_help_panel=KEYS
        ),
    ] = None,
    key: KeyOpt = None,
    account_address: AccountAddressOpt = None,
    private_key_file: PrivateKeyFileOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    from_name: FromOpt = None,
    keyring_backend: KeyringBackendOpt = None,
    keyring_dir: KeyringDirOpt = None,
    home: HomeOpt = None,
    api_key_file: Annotated[
        str | None,
        typer.Option(
            "--api-key-file", metavar="PATH", help="Broker API key file.", rich_help_panel=KEYS
        ),
    ] = None,
    api_key_cmd: Annotated[
        str | None,
        typer.Option(
            "--api-key-cmd",
            metavar="CMD",
            help="Command printing the API key (a password manager).",
            rich_help_panel=KEYS,
        ),
    ] = None,
    scheme: Annotated[
        SchemeChoice | None,
        typer.Option("--scheme", help="hash (v0.2.6 on) or raw (older).", rich_help_panel=KEYS),
    ] = None,
    timestamp: TimestampOpt = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Replace the body's model.", rich_help_panel=BODY),
    ] = None,
    stream: Annotated[
        bool | None,
        typer.Option("--stream/--no-stream", help='Set "stream".', rich_help_panel=BODY),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, help='Set "max_tokens".', rich_help_panel=BODY),
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=JSON",
            help="Set a body field (dotted keys nest); repeatable.",
            rich_help_panel=BODY,
        ),
    ] = None,
    output: Annotated[
        SendOutput,
        typer.Option("--output", "-o", help="text, json or raw.", rich_help_panel=OUTPUT),
    ] = SendOutput.text,
    hide_reasoning: Annotated[
        bool,
        typer.Option("--hide-reasoning", help="Do not show reasoning.", rich_help_panel=OUTPUT),
    ] = False,
    usage: Annotated[
        bool,
        typer.Option(
            "--usage", "-u", help="Tokens, timing and ids on stderr.", rich_help_panel=OUTPUT
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Say what happens, on stderr.", rich_help_panel=OUTPUT
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Build and sign; print; send nothing.", rich_help_panel=OUTPUT
        ),
    ] = False,
    print_as: Annotated[
        PrintAs | None,
        typer.Option("--print", help="With --dry-run: http, curl or json.", rich_help_panel=OUTPUT),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries",
            min=0,
            help="Retries after a failed attempt, each re-signed (default 5).",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    connect_timeout: Annotated[
        float | None,
        typer.Option(
            "--connect-timeout", metavar="S", help="Connect limit (10).", rich_help_panel=NETWORK
        ),
    ] = None,
    read_timeout: Annotated[
        float | None,
        typer.Option(
            "--read-timeout",
            metavar="S",
            help="Longest silence between bytes (300).",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", metavar="S", help="Limit for the whole request.", rich_help_panel=NETWORK
        ),
    ] = None,
    follow_moved: Annotated[
        bool | None,
        typer.Option(
            "--follow-moved/--no-follow-moved",
            help="Follow a gateway's 308 new_url.",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    trust_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-origin",
            metavar="URL",
            help="Let --follow-moved take the credentials to this origin; repeatable.",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    max_response_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-response-bytes",
            metavar="N",
            min=1,
            help="Largest answer read, streamed or not (64 MiB).",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="NAME", help="Profile in the config file."),
    ] = None,
    # -- batch (issue 6; options in gonka_cli/cli/send_batch.py) --
    batch_dir: DirOpt = None,
    recursive: RecursiveOpt = False,
    glob: GlobOpt = "*.json",
    jsonl: JsonlOpt = None,
    shard: ShardOpt = None,
    shard_count: ShardCountOpt = None,
    output_file: OutputFileOpt = None,
    output_dir: OutputDirOpt = None,
    resume: ResumeOpt = False,
    concurrency: ConcurrencyOpt = 8,
    rate: RateOpt = None,
    fail_fast: FailFastOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Send a chat request and print the answer: signed to a transfer agent, or with an
    API key to a broker or gateway (how Gonka mainnet is reached since v0.2.14).

    The destination decides the way in: --base-url or GONKA_BROKER_URL sends Bearer;
    --node-address, --endpoint, --source-url or --dev signs (--auth settles a tie).

    The body is sent byte for byte as given (overrides re-encode it compactly). A
    prompt (TEXT not starting with '{', or --prompt) becomes a one-message chat request
    for --model, else GONKA_MODEL or the profile's model, else the endpoint's first model.

        gonka send-request --dev "What is the capital of France?"

        gonka send-request --dev --file inference-requests/request_payload.json

        gonka send-request --node-address http://node:8000 --file body.json

        GONKA_BROKER_URL=https://broker/v1 GONKA_BROKER_API_KEY=... \\
            gonka send-request --file body.json

    Exit codes: 2 bad input, 4 HTTP 4xx (or a move to an untrusted origin), 5 HTTP 5xx
    or 429 after retries (or an error event mid-stream), 6 network, time-out, a stream
    cut off or an answer over --max-response-bytes, 7 keys or settings, 130 interrupted.
    """
    flags: dict[str, Any] = {
        "auth": auth.value if auth else None,
        "node_address": node_address,
        "broker_url": base_url,
        "endpoints": endpoint,
        "source_url": source_url,
        "transfer_address": endpoint_account,
        "key": key,
        "account_address": account_address,
        "private_key_file": private_key_file,
        "passphrase_file": passphrase_file,
        "from_name": from_name,
        "keyring_backend": keyring_backend,
        "keyring_dir": keyring_dir,
        "home": home,
        "api_key_file": api_key_file,
        "api_key_cmd": api_key_cmd,
        "scheme": scheme.value if scheme else None,
        "max_retries": max_retries,
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "timeout": timeout,
        "follow_moved": follow_moved,
        "trust_origins": trust_origin,
        "max_response_bytes": max_response_bytes,
    }
    if print_as is not None and not dry_run:
        raise UsageError("--print goes with --dry-run")
    from gonka_cli.payloads import Overrides, is_json_object_text, prepare_chat_body, read_input
    from gonka_cli.settings import load_settings

    if text is not None and prompt is None and not is_json_object_text(text):
        text, prompt = None, text  # TEXT that is not a JSON object is a prompt
    if prompt is not None and (text is not None or file):
        raise UsageError("give either a prompt or a request body (TEXT or --file), not both")
    if system is not None and prompt is None:
        raise UsageError("--system goes with a prompt (TEXT or --prompt), not a JSON body")

    settings = load_settings(flags, profile=profile)
    overrides = Overrides(
        model,
        settings.text("model"),
        stream,
        max_tokens,
        tuple(set_values or ()),
        default_model_origin=settings["model"].origin,
    )
    batch = BatchArgs(
        tuple(file or ()), batch_dir, recursive, glob, jsonl, shard, output_file, output_dir,
        resume, concurrency, rate, fail_fast, quiet, shard_count,
    )  # fmt: skip
    if batch.requested():  # issue 6: many requests through the same Sender
        refuse_single_only(
            text=text is not None or prompt is not None,
            dry_run=dry_run,
            timestamp=timestamp is not None,
            output=output,
        )
        batch_job = BatchJob(batch, overrides, verbose)
        if dev:
            _run_dev(flags, profile, batch_job)
        else:
            batch_job.run(settings)
        return
    body: ChatBody | Prompt
    if prompt is not None:
        from gonka_cli.payloads import prompt_text

        body = Prompt(prompt_text(prompt), system, overrides)
    else:
        body = prepare_chat_body(read_input(text, batch.single_file()), overrides)
    view = View(output, hide_reasoning, usage, verbose)
    job = _Job(body, view, timestamp, print_as or PrintAs.http if dry_run else None)
    if dev:
        _run_dev(flags, profile, job)
    else:
        job.run(settings)


@dataclass(frozen=True)
class Prompt:
    """A prompt whose request body is built once the destination is known (its model may
    come from the endpoint)."""

    text: str
    system: str | None
    overrides: Overrides

    def chat_body(self, config: SendConfig, settings: Settings, consoles: Consoles) -> ChatBody:
        """The one-message chat request, its model named on stderr unless --model gave it."""
        from gonka_cli.payloads import prepare_chat_body, prompt_body
        from gonka_cli.render import notice

        model = self.overrides.model
        if model is None:
            model, origin = self._model(config, settings)
            notice(consoles.err, f"model {model} (from {origin})")
        return prepare_chat_body(prompt_body(self.text, model, self.system), self.overrides)

    @staticmethod
    def _model(config: SendConfig, settings: Settings) -> tuple[str, str]:
        from gonka_cli.modelpick import first_model_at
        from gonka_cli.settings import BearerAuth

        configured = settings.text("model")
        if configured is not None:
            return configured, settings["model"].origin
        base = config.endpoints[0].url if config.endpoints else config.source_url
        if base is None:  # send_config always names a destination; kept for the type
            raise UsageError("no endpoint to ask for a model: pass --model NAME")
        headers = None
        if isinstance(config.auth, BearerAuth):
            headers = {"Authorization": f"Bearer {config.auth.api_key}"}
        model = run_async(
            first_model_at(
                base,
                config.timeouts,
                headers,
                follow_moved=config.follow_moved,
                trusted_origins=config.trusted_origins,
            )
        )
        return model, f"the first model of {base}/models"


@dataclass(frozen=True)
class _Job:
    """One send-request invocation after parsing: what to send and how to show it."""

    body: ChatBody | Prompt
    view: View
    timestamp: int | None
    dry_run: PrintAs | None

    def run(
        self, settings: Settings, *, dev: bool = False, dev_key: SigningKey | None = None
    ) -> None:
        """Resolve keys and endpoints, then send (or print, for --dry-run)."""
        from gonka_cli.render import make_consoles
        from gonka_cli.settings import AuthMode, send_config

        consoles = make_consoles()
        mode = AuthMode.SIGNATURE if dev else None
        config = send_config(settings, mode=mode, fixed_timestamp=self.timestamp, dev_key=dev_key)
        body = self.body
        if isinstance(body, Prompt):
            body = body.chat_body(config, settings, consoles)
        if self.dry_run is not None:
            run_async(_dry_run(config, body, self.dry_run, settings, consoles))
            return
        try:
            _send_and_show(config, body, self.view, consoles)
        except HTTPClientError as exc:
            self._explain_own_timestamp(exc)
            raise

    def _explain_own_timestamp(self, exc: HTTPClientError) -> None:
        """A timestamp the user gave is not a clock to fix: say it is out of the window."""
        from gonka_cli.transport import CLOCK_HINT

        if self.timestamp is not None and exc.hint == CLOCK_HINT:
            exc.hint = (
                f"--timestamp {self.timestamp} is outside the window the node accepts (60 s "
                "behind to 30 s ahead of its clock): drop --timestamp to sign with the "
                "current time"
            )


def _run_dev(flags: dict[str, Any], profile: str | None, job: _Job | BatchJob) -> None:
    """``--dev``: a dev node in this process, a throwaway key unless one is named."""
    from gonka_cli.devnode import NodeConfig, start_node
    from gonka_cli.keys import SigningKey
    from gonka_cli.render import make_consoles, notice
    from gonka_cli.settings import load_settings, signing_key_named

    where = ("node_address", "broker_url", "endpoints", "source_url")
    if any(flags.get(name) for name in where) or flags.get("auth") == "bearer":
        raise UsageError(
            "--dev starts its own transfer agent: drop --node-address, --base-url, "
            "--endpoint, --source-url and --auth bearer"
        )
    err = make_consoles().err
    with start_node(NodeConfig()) as node:
        settings = load_settings(
            {**flags, "node_address": node.url, "transfer_address": None}, profile=profile
        )
        dev_key = None
        if not signing_key_named(settings):  # a stored default key is not asked for
            dev_key = SigningKey.generate()
            notice(
                err,
                f"dev node at {node.url}; signing with a throwaway dev key "
                f"({dev_key.address}; --key NAME signs with a stored key)",
            )
        else:
            notice(err, f"dev node at {node.url}")
        job.run(settings, dev=True, dev_key=dev_key)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the async core; Ctrl-C becomes `Interrupted` (exit 130)."""
    import asyncio  # here, not at the top: `gonka sign` and `--help` need no event loop

    from gonka_cli.cli._common import Stopped

    try:
        return asyncio.run(coroutine)
    except Stopped:
        raise  # SIGTERM or SIGHUP: its own exit code (143, 129)
    except KeyboardInterrupt:
        raise Interrupted("interrupted") from None


def _send_and_show(config: SendConfig, body: ChatBody, view: View, consoles: Consoles) -> None:
    from gonka_cli.render import OutputMode, TerminalSink

    terminal = TerminalSink(
        consoles, OutputMode(view.output.value), hide_reasoning=view.hide_reasoning
    )
    sink = _Plain(terminal)
    try:
        outcome = run_async(_send(config, body, sink, _notifier(consoles, view)))
    finally:
        terminal.finish()
    _show(outcome, view, consoles)


class _Plain:
    """Answer text without terminal escapes or the secrets in use (``-o raw`` stays exact)."""

    def __init__(self, sink: TerminalSink) -> None:
        self._sink = sink

    @property
    def printed(self) -> bool:
        return self._sink.printed

    @printed.setter
    def printed(self, value: bool) -> None:
        self._sink.printed = value

    def content(self, text: str) -> None:
        from gonka_cli.redact import plain, scrub_data

        self._sink.content(scrub_data(plain(text)))

    def reasoning(self, text: str) -> None:
        from gonka_cli.redact import plain, scrub_data

        self._sink.reasoning(scrub_data(plain(text)))

    def raw(self, text: str) -> None:
        self._sink.raw(text)


async def _send(
    config: SendConfig, body: ChatBody, sink: _Plain, notify: Callable[[Notice], None]
) -> Outcome:
    from gonka_cli.client import Sender

    async with Sender(config, on_notice=notify) as sender:
        return await sender.send(body.data, sink=sink, model=body.model)


def _notifier(consoles: Consoles, view: View) -> Callable[[Notice], None]:
    from gonka_cli.render import notice

    def show(event: Notice) -> None:
        if event.level == "warning" or event.kind in ("retry", "failover") or view.verbose:
            notice(consoles.err, event.message, event.level)

    return show


def _show(outcome: Outcome, view: View, consoles: Consoles) -> None:
    from gonka_cli.redact import redact_data
    from gonka_cli.render import print_facts, print_json, print_line, usage_text

    if view.output is SendOutput.json:
        print_json(consoles.out, {**outcome.response, "gonka": redact_data(outcome.meta())})
    _explain_cut(outcome.response, view, consoles)
    if view.usage:
        print_line(consoles.err, "usage: " + usage_text(outcome.usage, outcome.meta()), "dim")
    if view.usage or view.verbose:
        meta = outcome.meta()
        facts = {k: meta[k] for k in ("inference_id", "request_id", "devshard_id")}
        if view.verbose:
            facts = {**meta, **facts}
        print_facts(consoles.err, facts)


def _explain_cut(response: dict[str, Any], view: View, consoles: Consoles) -> None:
    """``finish_reason: length`` said on stderr: an answer cut short (or empty) is otherwise
    silent, since the text on stdout just stops."""
    from gonka_cli.render import notice

    choices = response.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, dict) or first.get("finish_reason") != "length":
        return
    message = first.get("message")
    message = message if isinstance(message, dict) else {}
    note = "finish_reason: length (the answer was cut off by max_tokens; raise --max-tokens)"
    if not message.get("content") and view.output is SendOutput.text:
        note += "; stdout got nothing"
        if message.get("reasoning_content") or message.get("reasoning"):
            note += " (every token went to reasoning)"
    notice(consoles.err, note, "warning")


async def _dry_run(
    config: SendConfig, body: ChatBody, print_as: PrintAs, settings: Settings, consoles: Consoles
) -> None:
    from gonka_cli import dryrun
    from gonka_cli.client import Sender
    from gonka_cli.render import print_json, print_line
    from gonka_cli.settings import api_key_origin

    async with Sender(config) as sender:
        request = await sender.prepare(body.data, model=body.model)
    parts = (request.method, request.url, request.headers, request.body)
    if print_as is PrintAs.http:
        print_line(consoles.out, dryrun.as_http(*parts).removesuffix("\n"))
    elif print_as is PrintAs.json:
        extra = {
            "transfer_address": request.transfer_address or None,
            "timestamp": request.timestamp_ns,
            "signature": request.signature,
        }
        print_json(consoles.out, dryrun.as_json(*parts, extra))
    else:
        origin = api_key_origin(settings) if sender.bearer else None
        key_ref = dryrun.key_reference(origin, _absolute(origin, settings))
        body_file = _body_file(body)
        print_line(consoles.out, dryrun.as_curl(*parts, body_file=body_file, key_ref=key_ref))


def _body_file(body: ChatBody) -> str | None:
    """The body's file as an absolute path (the curl command then works from any
    directory), when it holds exactly the bytes sent; else None (the bytes are inlined)."""
    from pathlib import Path

    if body.changed or body.source.startswith("<"):
        return None
    path = Path(body.source).expanduser().resolve()
    try:
        return str(path) if path.read_bytes() == body.data else None  # a BOM was dropped
    except OSError:
        return None


def _absolute(origin: str | None, settings: Settings) -> str | None:
    """The API key's source for the curl command; a key file as an absolute path."""
    from pathlib import Path

    value = settings.text(origin) if origin else None
    if origin == "api_key_file" and value:
        return str(Path(value).expanduser().resolve())
    return value
