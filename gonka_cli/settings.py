"""Every setting of a request, resolved in one place: flag, environment, profile, default.

The order is: a command-line flag; then an environment variable (``GONKA_*``, including
the SDK's ``GONKA_ENDPOINTS``/``GONKA_SOURCE_URL`` and the Gonka docs'
``GONKA_ENDPOINT``/``GONKA_PROVIDER_ADDRESS``/``GONKA_BROKER_URL``/
``GONKA_BROKER_API_KEY``/``GONKA_MODEL``); then the named profile of the TOML file
``<gonka home>/config.toml``::

    [profiles.default]
    source_url = "http://node1.example:8000"

    [profiles.broker]
    auth = "bearer"
    broker_url = "https://broker.example/v1"
    api_key_cmd = "pass show gonka/broker"
    model = "Qwen/QwQ-32B"

then the built-in default. `resolve` is pure; `load_settings` reads the file and the
environment. Each value remembers where it came from, for ``gonka config show``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from gonka_cli.endpoints import Endpoint, normalize_base_url, parse_endpoints
from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys import SigningKey, parse_address
from gonka_cli.limits import DEFAULT_MAX_RESPONSE_BYTES
from gonka_cli.paths import gonka_home
from gonka_cli.signing import Scheme

CONFIG_FILE = "config.toml"
ENV_PROFILE = "GONKA_PROFILE"
DEFAULT_PROFILE = "default"
API_KEY_CMD_TIMEOUT_S = 30.0
API_KEY_CMD_MAX_BYTES = 64 * 1024  # an API key is a line; more is a command gone wrong


class Source(StrEnum):
    """Where a value came from, strongest first."""

    FLAG = "flag"
    ENV = "env"
    PROFILE = "profile"
    DEFAULT = "default"


class Kind(StrEnum):
    """How a value is read from text (environment) or checked (profile)."""

    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    LIST = "list"


@dataclass(frozen=True)
class Setting:
    """One setting: its flag, its environment variables (first wins), its kind, its default."""

    name: str
    flag: str | None
    env: tuple[str, ...]
    kind: Kind = Kind.TEXT
    default: Any = None
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("auth", "--auth", ("GONKA_AUTH",), default="auto"),
    Setting("node_address", "--node-address", ("GONKA_NODE_ADDRESS", "GONKA_ENDPOINT")),
    Setting("broker_url", "--base-url", ("GONKA_BROKER_URL",)),
    Setting("endpoints", "--endpoint", ("GONKA_ENDPOINTS",), Kind.LIST, default=()),
    Setting("source_url", "--source-url", ("GONKA_SOURCE_URL",)),
    Setting(
        "transfer_address",
        "--endpoint-account",
        ("GONKA_TRANSFER_ADDRESS", "GONKA_PROVIDER_ADDRESS"),
    ),
    Setting("model", None, ("GONKA_MODEL",)),
    Setting("scheme", "--scheme", ("GONKA_SCHEME",), default="hash"),
    Setting("key", "--key", ()),
    Setting("account_address", "--account-address", ()),
    Setting("private_key", None, ("GONKA_PRIVATE_KEY",), secret=True),
    Setting("private_key_file", "--private-key-file", ("GONKA_PRIVATE_KEY_FILE",)),
    Setting("passphrase_file", "--passphrase-file", ()),
    Setting("from_name", "--from", ()),
    Setting("keyring_backend", "--keyring-backend", ("GONKA_KEYRING_BACKEND",)),
    Setting("keyring_dir", "--keyring-dir", ()),  # then --home, then $GONKA_KEYRING_DIR
    Setting("home", "--home", ()),
    Setting("api_key", None, ("GONKA_BROKER_API_KEY",), secret=True),
    Setting("api_key_file", "--api-key-file", ("GONKA_API_KEY_FILE",)),
    Setting("api_key_cmd", "--api-key-cmd", ("GONKA_API_KEY_CMD",)),
    Setting("max_retries", "--max-retries", ("GONKA_MAX_RETRIES",), Kind.INT, default=5),
    Setting("connect_timeout", "--connect-timeout", ("GONKA_CONNECT_TIMEOUT",), Kind.FLOAT, 10.0),
    Setting("read_timeout", "--read-timeout", ("GONKA_READ_TIMEOUT",), Kind.FLOAT, 300.0),
    Setting("timeout", "--timeout", ("GONKA_TIMEOUT",), Kind.FLOAT),
    Setting("follow_moved", "--follow-moved", ("GONKA_FOLLOW_MOVED",), Kind.BOOL, False),
    Setting("trust_origins", "--trust-origin", ("GONKA_TRUST_ORIGINS",), Kind.LIST, default=()),
    Setting(
        "max_response_bytes",
        "--max-response-bytes",
        ("GONKA_MAX_RESPONSE_BYTES",),
        Kind.INT,
        DEFAULT_MAX_RESPONSE_BYTES,
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
# What a kind of value is called in messages ("expected an integer").
_WANTED = {
    Kind.TEXT: "text",
    Kind.INT: "an integer",
    Kind.FLOAT: "a number",
    Kind.BOOL: "true or false",
    Kind.LIST: "a list of strings",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Value:
    """An effective value and where it came from ("--model", "$GONKA_MODEL", ...)."""

    value: Any
    source: Source
    origin: str


@dataclass(frozen=True)
class Profile:
    """The settings of one profile and a label for messages ("default in /x/config.toml")."""

    values: Mapping[str, Any]
    label: str | None = None


@dataclass(frozen=True)
class Settings:
    """Resolved settings with typed accessors."""

    values: Mapping[str, Value]
    profile: str | None = None

    def __getitem__(self, name: str) -> Value:
        return self.values[name]

    def text(self, name: str) -> str | None:
        """A text setting, None when unset or empty."""
        value = self.values[name].value
        return str(value) if value not in (None, "") else None

    def integer(self, name: str) -> int:
        """An integer setting (those all have defaults)."""
        return int(self.values[name].value)

    def number(self, name: str) -> float | None:
        """A float setting, None when unset."""
        value = self.values[name].value
        return None if value is None else float(value)

    def flag(self, name: str) -> bool:
        """A boolean setting."""
        return bool(self.values[name].value)

    def strings(self, name: str) -> tuple[str, ...]:
        """A list setting."""
        return tuple(self.values[name].value or ())


def resolve(flags: Mapping[str, Any], env: Mapping[str, str], profile: Profile) -> Settings:
    """Flag, then environment, then profile, then default, for every setting (pure)."""
    unknown = sorted(set(profile.values) - set(BY_NAME))
    if unknown:
        raise ConfigError(
            f"profile {profile.label}: unknown setting(s) {', '.join(unknown)}",
            hint=f"known settings: {', '.join(BY_NAME)}",
        )
    secrets = sorted(name for name in profile.values if BY_NAME[name].secret)
    if secrets:
        raise ConfigError(
            f"profile {profile.label}: {', '.join(secrets)} may not be kept in a config file",
            hint="keep secrets out of it: api_key_file or api_key_cmd for an API key, "
            "key (a stored key's name) or private_key_file for a signing key",
        )
    return Settings({s.name: _resolve_one(s, flags, env, profile) for s in SETTINGS}, profile.label)


def _resolve_one(
    setting: Setting, flags: Mapping[str, Any], env: Mapping[str, str], profile: Profile
) -> Value:
    flagged = flags.get(setting.name)
    if flagged not in (None, (), []):
        return Value(
            _check(setting, flagged, setting.flag or setting.name),
            Source.FLAG,
            setting.flag or setting.name,
        )
    for variable in setting.env:
        if env.get(variable, "") != "":
            origin = f"${variable}"
            return Value(_parse(setting, env[variable], origin), Source.ENV, origin)
    if setting.name in profile.values:
        origin = f"profile {profile.label}"
        return Value(_check(setting, profile.values[setting.name], origin), Source.PROFILE, origin)
    return Value(setting.default, Source.DEFAULT, "default")


def _parse(setting: Setting, text: str, origin: str) -> Any:
    """A value from environment text."""
    if setting.kind is Kind.LIST:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if setting.kind is Kind.BOOL:
        lowered = text.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise ConfigError(f"{origin}: expected true or false, got {text!r}")
        return lowered in _TRUE
    return _check(setting, text.strip(), origin)


def _check(setting: Setting, value: Any, origin: str) -> Any:
    """A value of the right kind, converting numbers given as text."""
    try:
        if setting.kind is Kind.INT and not isinstance(value, bool):
            return int(value)
        if setting.kind is Kind.FLOAT and not isinstance(value, bool):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: expected {_WANTED[setting.kind]}, got {value!r}") from None
    if setting.kind is Kind.LIST:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list | tuple) and all(isinstance(item, str) for item in items):
            return tuple(items)
    elif isinstance(value, bool if setting.kind is Kind.BOOL else str):
        return value
    raise ConfigError(f"{origin}: {setting.name} expects {_WANTED[setting.kind]}, got {value!r}")


def config_path() -> Path:
    """``<gonka home>/config.toml``."""
    return gonka_home() / CONFIG_FILE


def load_profile(name: str | None, *, path: Path | None = None) -> Profile:
    """The named profile (``default`` when not named and present) from the config file.

    A profile named explicitly must exist; the ``default`` profile may be missing.
    """
    path = path or config_path()
    profiles = _read_profiles(path)
    chosen = name or DEFAULT_PROFILE
    if chosen not in profiles:
        if name is None:
            return Profile({}, None)
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(
            f"no profile {name!r} in {path}",
            hint=f"profiles there: {known}; add a [profiles.{name}] table",
        )
    values = profiles[chosen]
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: profiles.{chosen} must be a table")
    return Profile(values, f"{chosen!r} ({path})")


def _read_profiles(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    return profiles


def load_settings(
    flags: Mapping[str, Any], *, profile: str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Resolve against the real environment and config file (the I/O edge of `resolve`)."""
    env = os.environ if env is None else env
    name = profile or env.get(ENV_PROFILE) or None
    return resolve(flags, env, load_profile(name))


# --- Secrets --------------------------------------------------------------------------


def mask(value: str, *, tail: bool = True) -> str:
    """A secret for display: its last four characters at most (none with tail=False)."""
    return f"***{value[-4:]}" if tail and len(value) >= 16 else "***"


def display(settings: Settings, name: str) -> str:
    """A value as ``gonka config show`` prints it, secrets masked."""
    value = settings[name].value
    if value is None or value == ():
        return "-"
    if BY_NAME[name].secret:
        # An API key's last characters help tell keys apart; a private key shows none.
        return mask(str(value), tail=name != "private_key")
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def api_key_configured(settings: Settings) -> bool:
    """True when some API-key source is set."""
    return any(settings.text(name) for name in ("api_key", "api_key_file", "api_key_cmd"))


def api_key_origin(settings: Settings) -> str | None:
    """Which setting supplies the API key: the strongest source wins, flags before all."""
    candidates = [
        (list(Source).index(settings[name].source), name)
        for name in ("api_key_file", "api_key_cmd", "api_key")
        if settings.text(name)
    ]
    if not candidates:
        return None
    flagged = [name for rank, name in candidates if rank == 0]
    if len(flagged) > 1:
        raise ConfigError("pass only one of --api-key-file and --api-key-cmd")
    return min(candidates)[1]


def load_api_key(settings: Settings) -> str:
    """The broker API key, read from its file, its command, or the environment."""
    origin = api_key_origin(settings)
    if origin is None:
        raise ConfigError(
            "no API key for the broker or gateway",
            hint="pass --api-key-file PATH or --api-key-cmd CMD, or set GONKA_BROKER_API_KEY",
        )
    text = settings.text(origin) or ""
    if origin == "api_key_file":
        key = _read_key_file(Path(text).expanduser())
    elif origin == "api_key_cmd":
        key = _run_key_command(text)
    else:
        key = text
    return secret_in_use(_check_key(key.strip(), settings[origin].origin))


def secret_in_use(api_key: str) -> str:
    """Register `api_key` with `gonka_cli.redact`, so nothing printed or stored shows it."""
    from gonka_cli import redact

    redact.register(api_key)
    return api_key


def key_in_use(key: SigningKey) -> SigningKey:
    """Register a signing key with `gonka_cli.redact` (its hex, in any case or piece)."""
    from gonka_cli import redact

    redact.register_hex_key(key.to_hex())
    return key


def _read_key_file(path: Path) -> str:
    try:
        from gonka_cli.keys.files import read_small

        return read_small(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such API key file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"{path}: cannot read the API key file ({reason})") from None


def _run_key_command(command: str) -> str:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"--api-key-cmd: cannot parse the command ({exc})") from None
    if not argv:
        raise ConfigError("--api-key-cmd is empty")
    try:
        code, out, err = _bounded_run(argv, API_KEY_CMD_TIMEOUT_S, API_KEY_CMD_MAX_BYTES)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--api-key-cmd {argv[0]}: could not run ({exc})") from None
    if code is None:
        raise ConfigError(
            f"--api-key-cmd {argv[0]}: printed more than {API_KEY_CMD_MAX_BYTES} bytes; stopped it"
        )
    if code != 0:
        text = err.decode("utf-8", "replace")
        detail = text.strip().splitlines()[-1:] or [""]
        raise ConfigError(f"--api-key-cmd {argv[0]}: exited with {code} {detail[0]}".rstrip())
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--api-key-cmd {argv[0]}: printed something that is not text") from None


def _bounded_run(argv: list[str], timeout: float, limit: int) -> tuple[int | None, bytes, bytes]:
    """Run `argv`; its exit code, stdout and stderr, each read up to `limit` bytes. A code of
    None: it printed more and was killed (a command that never stops talking, such as
    `yes`, was read into memory for the whole time-out). `TimeoutExpired` after `timeout`."""
    import selectors
    import time

    process = subprocess.Popen(  # noqa: S603  # the user's own command, run without a shell
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    read: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as selector:
            for stream in (process.stdout, process.stderr):
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(argv, timeout)
                for ready, _ in selector.select(left):
                    chunk = os.read(ready.fd, 65536)
                    if not chunk:
                        selector.unregister(ready.fileobj)
                    read[ready.fd].append(chunk)
                    if sum(map(len, read[ready.fd])) > limit:
                        return None, b"", b""
        code = process.wait(max(0.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    return code, b"".join(read[out_fd]), b"".join(read[err_fd])


def _check_key(key: str, origin: str) -> str:
    if not key:
        raise ConfigError(f"{origin}: the API key is empty")
    if any(ch.isspace() for ch in key) or not key.isprintable():
        raise ConfigError(f"{origin}: the API key contains spaces or control characters")
    return key


# --- What a sender is built from -----------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    """Connect limit, idle limit between two bytes (not a total deadline), optional total."""

    connect: float = 10.0
    read: float = 300.0
    total: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries, and how long to wait between them."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_retry_after: float = 120.0

    def backoff(self, failures: int, jitter: float) -> float:
        """Exponential backoff for the n-th failure (n >= 1); `jitter` in [0, 1) spreads it."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** (failures - 1))
        return float(delay * (0.5 + jitter / 2))


class AuthMode(StrEnum):
    """How requests are authorised."""

    AUTO = "auto"
    SIGNATURE = "signature"
    BEARER = "bearer"


@dataclass(frozen=True)
class SignedAuth:
    """Signed requests to a transfer agent (docs/protocol.md sections 1 and 2)."""

    key: SigningKey
    scheme: Scheme = Scheme.HASH


@dataclass(frozen=True)
class BearerAuth:
    """``Authorization: Bearer <key>`` to a broker or gateway (docs/protocol.md section 10)."""

    api_key: str = field(repr=False)


@dataclass(frozen=True)
class SendConfig:
    """Everything a `gonka_cli.client.Sender` needs, resolved."""

    auth: SignedAuth | BearerAuth
    endpoints: tuple[Endpoint, ...] = ()
    source_url: str | None = None
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    follow_moved: bool = False
    fixed_timestamp: int | None = None
    trusted_origins: frozenset[str] = frozenset()
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


def choose_auth(
    requested: str,
    *,
    signing: bool,
    bearer: bool,
    to_broker: int | None = None,
    to_ta: int | None = None,
) -> AuthMode:
    """Turn ``auto`` into bearer or signature: the destination decides, then the keys.

    `to_broker` and `to_ta` are the strength of the configured destinations (the rank
    of their `Source`, lower is stronger; None when there is none): a broker or gateway
    URL means Bearer, a transfer agent means a signature, and the stronger one wins. A
    stored signing key never turns a broker destination into a signed request. When the
    destinations are equally strong (or absent), the keys configured decide.
    """
    try:
        mode = AuthMode(requested)
    except ValueError:
        raise ConfigError(f"--auth {requested!r}: choose auto, signature or bearer") from None
    if mode is not AuthMode.AUTO:
        return mode
    if to_broker is not None and (to_ta is None or to_broker < to_ta):
        return AuthMode.BEARER
    if to_ta is not None and (to_broker is None or to_ta < to_broker) and (signing or bearer):
        # A transfer agent's URL with only an API key: it may be a gateway's URL.
        return AuthMode.BEARER if bearer and not signing else AuthMode.SIGNATURE
    if signing != bearer:
        return AuthMode.SIGNATURE if signing else AuthMode.BEARER
    if signing:
        raise ConfigError(
            "both a signing key and a broker API key are configured, and the destination "
            "does not say which way in is meant",
            hint="pass --auth bearer (a broker or gateway) or --auth signature (a transfer agent)",
        )
    raise ConfigError(
        "no key configured to send with",
        hint=(
            "for a broker or gateway set GONKA_BROKER_API_KEY (or --api-key-file PATH); for a "
            "transfer agent pass --key NAME (a key from `gonka keys add`) or set "
            "GONKA_PRIVATE_KEY; "
            "or try `gonka send-request --dev` against a local dev node"
        ),
    )


def parse_scheme(value: str | None) -> Scheme:
    """``hash`` or ``raw``."""
    try:
        return Scheme(value or "hash")
    except ValueError:
        raise ConfigError(f"scheme {value!r}: choose hash or raw") from None


def timeouts_from(settings: Settings) -> Timeouts:
    """The three time-outs, checked: positive seconds (infinity: no limit), never NaN."""
    for name in ("connect_timeout", "read_timeout", "timeout"):
        value = settings.number(name)
        if value is not None and not value > 0:  # `not >` refuses NaN as well
            origin = settings[name]
            error = UsageError if origin.source is Source.FLAG else ConfigError
            raise error(f"{origin.origin} {value:g}: time-outs must be positive numbers of seconds")
    return Timeouts(
        connect=settings.number("connect_timeout") or 10.0,
        read=settings.number("read_timeout") or 300.0,
        total=settings.number("timeout"),
    )


def retry_from(settings: Settings) -> RetryPolicy:
    """The retry policy (only the retry count is a setting)."""
    retries = settings.integer("max_retries")
    if retries < 0:
        raise ConfigError("--max-retries may not be negative")
    return RetryPolicy(max_retries=retries)


def targets(settings: Settings, mode: AuthMode) -> tuple[tuple[Endpoint, ...], str | None]:
    """Where to send: explicit endpoints, or a source URL to discover them from.

    The strongest source wins (a flag over the environment over a profile); among
    equals: ``--endpoint`` pairs, then ``--node-address``, then ``--source-url``.
    """
    transfer = settings.text("transfer_address")
    address = parse_address(transfer) if transfer else ""
    if mode is AuthMode.BEARER:
        url = _bearer_url(settings)
        return (Endpoint(normalize_base_url(url)),), None
    choices = [
        (list(Source).index(settings[name].source), rank, name)
        for rank, name in enumerate(("endpoints", "node_address", "source_url"))
        if settings[name].source is not Source.DEFAULT and settings[name].value
    ]
    if not choices:
        raise ConfigError(
            "no transfer agent to send to",
            hint="pass --node-address URL, --endpoint URL;ADDRESS or --source-url URL "
            "(or set GONKA_ENDPOINTS / GONKA_SOURCE_URL)",
        )
    name = min(choices)[2]
    if name == "source_url":
        return (), normalize_base_url(settings.text("source_url") or "")
    if name == "node_address":
        return (Endpoint(normalize_base_url(settings.text("node_address") or ""), address),), None
    found = parse_endpoints(settings.strings("endpoints"))
    return tuple(replace(e, transfer_address=e.transfer_address or address) for e in found), None


def _bearer_url(settings: Settings) -> str:
    """The broker's URL: ``--base-url``/``GONKA_BROKER_URL``/a profile's ``broker_url``,
    or a ``--node-address`` given with ``--auth bearer``, the stronger source first."""
    candidates = [
        (list(Source).index(settings[name].source), rank, name)
        for rank, name in enumerate(("broker_url", "node_address"))
        if settings.text(name)
    ]
    if not candidates:
        raise ConfigError(
            "no broker or gateway base URL",
            hint="set GONKA_BROKER_URL (ending in /v1) or pass --base-url URL",
        )
    return settings.text(min(candidates)[2]) or ""


def signing_configured(settings: Settings) -> bool:
    """Whether a signing key is configured (nothing is decrypted or asked)."""
    from gonka_cli.keys.selection import signing_key_configured

    return signing_key_configured(
        key=settings.text("key"),
        account_address=settings.text("account_address"),
        private_key_file=settings.text("private_key_file"),
        from_name=settings.text("from_name"),
    )


def signing_key_named(settings: Settings) -> bool:
    """Whether a signing key is named (``--key``, ``--account-address``, a key file, or
    ``GONKA_PRIVATE_KEY``), as opposed to merely stored as the default."""
    named = ("key", "account_address", "private_key_file", "private_key")
    return any(settings.text(name) for name in named)


def signing_key(settings: Settings) -> SigningKey:
    """The signing key, in the order `gonka_cli.keys.selection` documents."""
    from gonka_cli.keys.selection import KeyringChoice, resolve_signing_key

    keyring = KeyringChoice(
        settings.text("keyring_backend"), settings.text("keyring_dir"), settings.text("home")
    )
    return key_in_use(
        resolve_signing_key(
            key=settings.text("key"),
            account_address=settings.text("account_address"),
            private_key_file=settings.text("private_key_file"),
            passphrase_file=settings.text("passphrase_file"),
            from_name=settings.text("from_name"),
            keyring=keyring,
        )
    )


def destination_ranks(settings: Settings) -> tuple[int | None, int | None]:
    """How strongly a broker and a transfer agent are configured as the destination
    (the rank of the strongest source; None when not at all): see `choose_auth`."""

    def rank(names: tuple[str, ...]) -> int | None:
        ranks = [
            list(Source).index(settings[name].source)
            for name in names
            if settings[name].source is not Source.DEFAULT and settings[name].value
        ]
        return min(ranks, default=None)

    return rank(("broker_url",)), rank(("endpoints", "node_address", "source_url"))


def auth_mode(settings: Settings, *, dev_key: SigningKey | None = None) -> AuthMode:
    """Bearer or signature, from ``--auth``, the destination and the keys configured."""
    to_broker, to_ta = destination_ranks(settings)
    return choose_auth(
        settings.text("auth") or "auto",
        signing=dev_key is not None or signing_configured(settings),
        bearer=api_key_configured(settings),
        to_broker=to_broker,
        to_ta=to_ta,
    )


def send_config(
    settings: Settings,
    *,
    mode: AuthMode | None = None,
    fixed_timestamp: int | None = None,
    dev_key: SigningKey | None = None,
) -> SendConfig:
    """Resolve keys, endpoints, time-outs and retries into a `SendConfig`.

    `dev_key`, when given, signs (``--dev`` uses a throwaway key unless one is named).
    """
    mode = mode or auth_mode(settings, dev_key=dev_key)
    auth: SignedAuth | BearerAuth
    if mode is AuthMode.BEARER:
        auth = BearerAuth(load_api_key(settings))
    else:
        key = key_in_use(dev_key) if dev_key is not None else signing_key(settings)
        auth = SignedAuth(key, parse_scheme(settings.text("scheme")))
    endpoints, source_url = targets(settings, mode)
    return SendConfig(
        auth,
        endpoints,
        source_url,
        timeouts_from(settings),
        retry_from(settings),
        settings.flag("follow_moved"),
        fixed_timestamp,
        trusted_origins(settings),
        max_response_bytes(settings),
    )


def trusted_origins(settings: Settings) -> frozenset[str]:
    """``--trust-origin`` URLs as origins: where a followed move may take the credentials."""
    from gonka_cli.endpoints import origin

    found = set()
    for url in settings.strings("trust_origins"):
        try:
            found.add(origin(url))
        except UsageError as exc:
            where = settings["trust_origins"]
            error = UsageError if where.source is Source.FLAG else ConfigError
            raise error(f"{where.origin}: {exc.message}", hint=exc.hint) from None
    return frozenset(found)


def max_response_bytes(settings: Settings) -> int:
    """The cap on an answer's size: a positive number of bytes."""
    value = settings.integer("max_response_bytes")
    if value <= 0:
        setting = settings["max_response_bytes"]
        error = UsageError if setting.source is Source.FLAG else ConfigError
        raise error(f"{setting.origin} {value}: the limit must be a positive number of bytes")
    return value
