"""Where requests go: endpoints, discovery (docs/protocol.md section 5), choice and failover.

An `Endpoint` is a base URL ending in ``/v1`` and, for signed requests, the transfer
address the signature is bound to (empty until known). The parsing and choosing here
is pure; the two reads from the network (`discover`, `fetch_identity`) take a client.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from gonka_cli.errors import ConfigError, GonkaError, HTTPClientError, NetworkError, UsageError
from gonka_cli.keys import parse_address

if TYPE_CHECKING:
    import httpx2

    from gonka_cli.settings import Timeouts

PARTICIPANTS_PATH = "/v1/epochs/current/participants"
PARAMS_PATH = "/chain-api/productscience/inference/inference/params"
_STRIP_SUFFIXES = ("/chat/completions", "/completions")


def normalize_base_url(url: str) -> str:
    """``http://host:port[/prefix]/v1``: no trailing slash, never ``/v1/v1``."""
    text = url.strip()
    parts = _split_url(url, text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{url!r} is not an http(s) URL", hint="for example http://host:8000")
    _check_host_and_port(url, text, parts)
    if parts.query or parts.fragment:
        raise UsageError(f"{url!r}: a base URL takes no query or fragment")
    text = text.rstrip("/")
    for suffix in _STRIP_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)].rstrip("/")
    return text if text.endswith("/v1") else text + "/v1"


def _split_url(url: str, text: str) -> SplitResult:
    try:
        return urlsplit(text)
    except ValueError as exc:  # an unclosed IPv6 bracket, for one
        raise UsageError(f"{url!r} is not a valid URL ({exc})") from None


def _check_host_and_port(url: str, text: str, parts: SplitResult) -> None:
    """Refuse what httpx2, or the socket layer for a port above 65535, would fail on later."""
    import httpx2  # lazily: `gonka sign` and `gonka --help` do not load httpx

    try:
        host, port = httpx2.URL(text).host, parts.port  # .port raises outside 0..65535
    except (httpx2.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors too
        raise UsageError(f"{url!r} is not a valid URL ({exc})") from None
    if not host:
        raise UsageError(f"{url!r} has no host name", hint="for example http://host:8000")
    if port == 0:
        raise UsageError(f"{url!r}: port 0 cannot be connected to")


def origin(url: str) -> str:
    """``scheme://host:port`` of an http(s) URL, the port spelled out: what credentials
    are bound to (a move to another origin must not take them along)."""
    import httpx2  # lazily, as in `_check_host_and_port`

    try:
        parsed = httpx2.URL(url.strip())
    except (httpx2.InvalidURL, ValueError) as exc:
        raise UsageError(f"{url!r} is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f"{url!r} is not an http(s) URL", hint="for example https://host:8443")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host.lower()}:{port}"


def node_root(url: str) -> str:
    """The node's root URL (the base URL without ``/v1``)."""
    return normalize_base_url(url)[: -len("/v1")]


@dataclass(frozen=True)
class Endpoint:
    """A base URL (ending in /v1), its transfer address, and the models it serves if known."""

    url: str
    transfer_address: str = ""
    models: frozenset[str] | None = field(default=None, compare=False)

    @property
    def chat_url(self) -> str:
        """Where chat requests are POSTed."""
        return self.url + "/chat/completions"

    def serves(self, model: str | None) -> bool:
        """True unless this endpoint is known not to serve `model`."""
        return model is None or self.models is None or model in self.models


def parse_endpoint(text: str) -> Endpoint:
    """``URL;ADDRESS`` (as the SDKs write it) or a bare URL."""
    url, _, address = text.partition(";")
    return Endpoint(normalize_base_url(url), parse_address(address) if address.strip() else "")


def parse_endpoints(items: Iterable[str]) -> list[Endpoint]:
    """Several ``URL;ADDRESS`` entries (``GONKA_ENDPOINTS`` is split on commas already)."""
    return [parse_endpoint(item) for item in items if item.strip()]


# --- Discovery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    """One participant of the current epoch, as `gonka endpoints` shows it."""

    address: str
    inference_url: str
    models: tuple[str, ...] = ()
    weight: float = 0
    excluded: bool = False
    reason: str = ""
    allowed: bool = True

    @property
    def usable(self) -> bool:
        """Has a valid URL and an address, is not excluded, and the allowlist lets it in."""
        listed = bool(self.address and self.inference_url) and not self.excluded and self.allowed
        return listed and self.valid_url

    @property
    def valid_url(self) -> bool:
        """Whether the URL the chain lists can be sent to (one bad entry must not stop a run)."""
        try:
            normalize_base_url(self.inference_url)
        except UsageError:
            return False
        return True

    def endpoint(self) -> Endpoint:
        """This participant as an endpoint (``inference_url + /v1``, address ``index``)."""
        models = frozenset(self.models) if self.models else None
        return Endpoint(normalize_base_url(self.inference_url), self.address, models)


def parse_participants(
    document: Mapping[str, Any], allowlist: frozenset[str] = frozenset()
) -> list[Participant]:
    """Participants from ``/v1/epochs/current/participants``; a non-empty allowlist restricts."""
    active = document.get("active_participants") or {}
    listed = active.get("participants") if isinstance(active, dict) else None
    excluded = {
        str(entry.get("address")): str(entry.get("reason") or "")
        for entry in _items(document.get("excluded_participants"))
        if isinstance(entry, dict)
    }
    result = []
    for raw in _items(listed):
        if not isinstance(raw, dict):
            continue
        address = str(raw.get("index") or "")
        models = raw.get("models") if isinstance(raw.get("models"), list) else []
        result.append(
            Participant(
                address=address,
                inference_url=str(raw.get("inference_url") or ""),
                models=tuple(str(m) for m in models or ()),
                weight=_number(raw.get("weight")),
                excluded=address in excluded,
                reason=excluded.get(address, ""),
                allowed=not allowlist or address in allowlist,
            )
        )
    return result


def parse_allowlist(document: Mapping[str, Any]) -> frozenset[str]:
    """``params.transfer_agent_access_params.allowed_transfer_addresses`` (empty = all)."""
    params = document.get("params") or {}
    access = params.get("transfer_agent_access_params") if isinstance(params, dict) else None
    allowed = access.get("allowed_transfer_addresses") if isinstance(access, dict) else None
    return frozenset(str(a) for a in _items(allowed))


def _items(value: object) -> list[Any]:
    """A JSON array from a node; anything else counts as empty."""
    return value if isinstance(value, list) else []


def usable_endpoints(participants: Sequence[Participant], model: str | None) -> list[Endpoint]:
    """The endpoints a request for `model` may go to."""
    found = [p.endpoint() for p in participants if p.usable]
    return [endpoint for endpoint in found if endpoint.serves(model)]


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]  # weights come as numbers or strings
    except (TypeError, ValueError):
        return 0.0


async def discover(
    client: httpx2.AsyncClient, source_url: str, timeouts: Timeouts
) -> list[Participant]:
    """Read the participants and the TA allowlist from a source node."""
    from gonka_cli.transport import get_json

    root = node_root(source_url)
    document = await get_json(client, root + PARTICIPANTS_PATH, timeouts)
    if not isinstance(document, dict):
        raise ConfigError(f"{root}{PARTICIPANTS_PATH} did not answer a participants document")
    try:
        params = await get_json(client, root + PARAMS_PATH, timeouts)
    except HTTPClientError:
        params = {}  # a node without the chain API: no allowlist to apply
    return parse_participants(document, parse_allowlist(params if isinstance(params, dict) else {}))


@dataclass(frozen=True)
class Identity:
    """What ``GET {node}/v1/identity`` says: the node's address and, if given, its time."""

    address: str
    time_ns: int | None = None


async def fetch_identity(client: httpx2.AsyncClient, base_url: str, timeouts: Timeouts) -> Identity:
    """The node's own account address (``data.address``) and clock (``data.timestamp``)."""
    from gonka_cli.transport import get_json

    url = normalize_base_url(base_url) + "/identity"
    try:
        document = await get_json(client, url, timeouts)
    except NetworkError:
        raise  # a node that is down: its own hint (is it running?) is the right one
    except GonkaError as exc:
        exc.hint = _identity_hint(exc)
        raise
    data = document.get("data") if isinstance(document, dict) else None
    address = data.get("address") if isinstance(data, dict) else None
    if not isinstance(address, str) or not address:
        raise ConfigError(
            f"{url} did not say the node's address",
            hint="pass the TA's address with --endpoint-account ADDR",
        )
    assert isinstance(data, dict)
    return Identity(parse_address(address), parse_time_ns(data.get("timestamp")))


def _identity_hint(error: GonkaError) -> str:
    """Every transfer agent answers ``/v1/identity``; a 401 or 404 there means this is
    most likely a broker or gateway, not a TA."""
    from gonka_cli.verdicts import GATEWAY_HINT

    if isinstance(error, HTTPClientError) and error.status_code in (401, 404):
        return (
            f"{GATEWAY_HINT}. If it is a transfer agent behind a proxy, pass its address "
            "with --endpoint-account"
        )
    return "pass the TA's address with --endpoint-account, or use --endpoint URL;ADDRESS"


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time_ns(value: Any) -> int | None:
    """A time as ns since the epoch: seconds, ms, us or ns as a number, or RFC 3339 text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
        try:
            return int(datetime.fromisoformat(text).timestamp() * 1e9)
        except (ValueError, OverflowError, OSError):  # .timestamp() raises the other two
            return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return None
    for limit, scale in ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3)):
        if abs(number) < limit:
            return number * scale
    return number


# --- Choice and failover -----------------------------------------------------------------


class EndpointPool:
    """The endpoints of a run: round-robin start per request, failover, cool-downs.

    Each request starts at the next endpoint (spreading load), moves to the following
    one on failover, and skips endpoints that asked to be left alone (429 with
    ``Retry-After``) until their cool-down ends.
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ConfigError("no endpoints to send to")
        self.endpoints = list(endpoints)
        # load spreading, not security: any generator does
        self._next = (rng or random.Random()).randrange(len(self.endpoints))  # noqa: S311
        self._cool_until: dict[str, float] = {}
        self._now = now

    def serving(self, model: str | None) -> list[Endpoint]:
        """The endpoints that serve `model` (all when unknown); raise when none does."""
        found = [endpoint for endpoint in self.endpoints if endpoint.serves(model)]
        if not found:
            served = sorted({m for e in self.endpoints for m in e.models or ()})
            raise HTTPClientError(
                f"no endpoint serves model {model!r}",
                status_code=404,
                hint=f"models served: {', '.join(served) or 'none listed'}",
            )
        return found

    def start(self, candidates: Sequence[Endpoint]) -> Endpoint:
        """The first endpoint for a new request (round-robin), skipping cooling ones."""
        index = self._next % len(candidates)
        self._next += 1
        return self.choose(candidates, index)[0]

    def after(self, candidates: Sequence[Endpoint], current: Endpoint) -> tuple[Endpoint, float]:
        """Failover: the next endpoint after `current`, and how long to wait before using it."""
        try:
            index = candidates.index(current) + 1
        except ValueError:
            index = 0
        return self.choose(candidates, index)

    def choose(self, candidates: Sequence[Endpoint], index: int) -> tuple[Endpoint, float]:
        """The first endpoint from `index` on that is not cooling down, else the soonest free."""
        ordered = [candidates[(index + i) % len(candidates)] for i in range(len(candidates))]
        waits = [self.wait_for(endpoint) for endpoint in ordered]
        best = min(range(len(ordered)), key=lambda i: (waits[i] > 0, waits[i], i))
        return ordered[best], waits[best]

    def cool_down(self, endpoint: Endpoint, seconds: float) -> None:
        """Leave `endpoint` alone for `seconds`."""
        self._cool_until[endpoint.url] = self._now() + seconds

    def wait_for(self, endpoint: Endpoint) -> float:
        """Seconds until `endpoint` may be used again (0 when it may be now)."""
        return max(0.0, self._cool_until.get(endpoint.url, 0.0) - self._now())
