"""Sending requests: the httpx2 Auth classes, and `Sender`, the one async send path.

`Sender.send(body)` is used by ``gonka send-request`` and by the batch runner alike. Each
attempt signs the exact bytes it sends with a fresh, strictly increasing timestamp
(the network refuses a signature it has seen); a failed attempt is retried according
to `judge` (408, 429 and 5xx, connection failures before any answer byte), moving to
the next endpoint and re-signing for that endpoint's transfer address. A stream that
has already handed content to its sink is never retried: it is reported as cut off.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol, cast

import httpx2

from gonka_cli.endpoints import Endpoint, EndpointPool, discover, fetch_identity, usable_endpoints
from gonka_cli.errors import (
    GonkaError,
    HTTPServerError,
    NetworkError,
    PayloadError,
    Unreachable,
    UsageError,
)
from gonka_cli.keys import SigningKey
from gonka_cli.limits import DEFAULT_DEADLINE_S, MAX_EVENT_BYTES
from gonka_cli.settings import BearerAuth, RetryPolicy, SendConfig, SignedAuth, Timeouts
from gonka_cli.signing import CLOCK, NanoClock, Scheme, parse_scheme, sign, signature_headers
from gonka_cli.stream import CompletionAssembler, Delta, StreamError, message_parts
from gonka_cli.transport import (
    CLOCK_HINT,
    async_client,
    error_message,
    json_body,
    network_error,
    read_capped,
    read_prefix,
    too_large,
    undecodable,
)
from gonka_cli.verdicts import WARN_SKEW_NS, Verdict, date_offset_ns, judge, measure_offset_ns

JSON_HEADERS = {"Content-Type": "application/json"}
SIZE_FLAG = "--max-response-bytes"
MAX_SIGNED_BODY_BYTES = 10 * 1024 * 1024  # docs/protocol.md section 4: a TA answers 413 above it


# --- Authentication -----------------------------------------------------------------------


_AuthFlow = Generator[httpx2.Request, httpx2.Response, None]


class SignatureAuth(httpx2.Auth):
    """Signs ``request.content``, the exact bytes that go out, as a TA checks them.

    The timestamp is taken when the request is about to be sent; `signature` and
    `timestamp_ns` keep what was used (the signature doubles as the inference id).
    """

    requires_request_body = True

    def __init__(
        self,
        key: SigningKey,
        transfer_address: str,
        scheme: Scheme | str = Scheme.HASH,
        timestamp_ns: Callable[[], int] = CLOCK.now_ns,
    ) -> None:
        self._key = key
        self._transfer = transfer_address
        self._scheme = parse_scheme(scheme)  # "hash" from a library caller must not sign raw
        self._timestamp = timestamp_ns
        self.signature = ""
        self.timestamp_ns = 0

    def auth_flow(self, request: httpx2.Request) -> _AuthFlow:
        self.timestamp_ns = self._timestamp()
        self.signature = sign(
            self._key, request.content, self.timestamp_ns, self._transfer, self._scheme
        )
        headers = signature_headers(self.signature, self._key.address, self.timestamp_ns)
        for name, value in headers.items():  # one by one: .update() costs 4x (a whole Headers)
            request.headers[name] = value
        yield request


class BearerTokenAuth(httpx2.Auth):
    """``Authorization: Bearer <key>`` and nothing else: brokers and gateways."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx2.Request) -> _AuthFlow:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request


# --- What callers hand in and get back ---------------------------------------------------


class Sink(Protocol):
    """Receives a successful answer as it arrives (a non-streamed one all at once).

    `printed` says whether anything reached the user: a stream that breaks after that
    is not retried (the retry would repeat what was shown), only reported as cut off.
    """

    printed: bool

    def content(self, text: str) -> None:
        """Answer text."""

    def reasoning(self, text: str) -> None:
        """Reasoning text (``reasoning_content`` or ``reasoning``)."""

    def raw(self, text: str) -> None:
        """The response body or SSE text exactly as received."""


class NullSink:
    """A sink that keeps nothing (batch runs use the assembled outcome instead)."""

    printed = False

    def content(self, text: str) -> None:
        """Ignore answer text."""

    def reasoning(self, text: str) -> None:
        """Ignore reasoning."""

    def raw(self, text: str) -> None:
        """Ignore raw text."""


class Pause(Protocol):
    """A pause shared by concurrent senders: 429/503 with ``Retry-After`` pauses them all."""

    async def wait(self) -> None:
        """Return once no pause is in force."""

    def pause_for(self, seconds: float) -> None:
        """Ask everyone to hold off for `seconds`."""


class NoPause:
    """The single-request default: nobody else to pause."""

    async def wait(self) -> None:
        """Never waits."""

    def pause_for(self, seconds: float) -> None:
        """Nothing to do (the sender sleeps by itself)."""


@dataclass(frozen=True)
class Notice:
    """Something worth telling the user while sending: ``level`` is warning or info."""

    kind: str
    message: str
    level: str = "info"


@dataclass(frozen=True)
class Outcome:
    """A successful answer and what support desks ask for."""

    status_code: int
    response: dict[str, Any]
    endpoint: str
    transfer_address: str
    inference_id: str
    request_id: str | None
    devshard_id: str | None
    attempts: int
    latency_s: float
    ttft_s: float | None
    usage: dict[str, Any] | None
    streamed: bool
    signature: str | None = None
    timestamp_ns: int | None = None

    def meta(self) -> dict[str, Any]:
        """The facts about the exchange, for ``--output json`` and ``-v``."""
        return {
            "endpoint": self.endpoint,
            "transfer_address": self.transfer_address or None,
            "inference_id": self.inference_id,
            "request_id": self.request_id,
            "devshard_id": self.devshard_id,
            "attempts": self.attempts,
            "latency_s": round(self.latency_s, 3),
            "ttft_s": None if self.ttft_s is None else round(self.ttft_s, 3),
            "streamed": self.streamed,
        }


@dataclass(frozen=True)
class PreparedRequest:
    """A signed request as it would go out (``--dry-run``)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    transfer_address: str
    timestamp_ns: int | None
    signature: str | None


# --- One attempt ----------------------------------------------------------------------------


class _Tracked:
    """Wraps a sink to know whether anything reached it, and when the first token did."""

    def __init__(self, sink: Sink, started: float) -> None:
        self.sink = sink
        self.started = started
        self.first_token_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.sink.printed

    def delta(self, delta: Delta) -> None:
        if delta and self.first_token_s is None:
            self.first_token_s = time.monotonic() - self.started
        if delta.reasoning:
            self.sink.reasoning(delta.reasoning)
        if delta.content:
            self.sink.content(delta.content)

    def raw(self, text: str) -> None:
        self.sink.raw(text)


class _TooLarge(Exception):
    """A stream passed its byte limit (--max-response-bytes)."""


class _Tee:
    """Stands in for the response inside `EventSource`: passes the SSE text to `raw` too,
    and stops the stream once its text passes `limit` bytes (endless deltas)."""

    def __init__(self, response: httpx2.Response, raw: Callable[[str], None], limit: int) -> None:
        self.headers = response.headers
        self.request = response.request
        self._response = response
        self._raw = raw
        self._left = limit

    async def aiter_text(self) -> AsyncIterator[str]:
        texts = cast(AsyncGenerator[str, None], self._response.aiter_text())
        async with aclosing(texts) as chunks:
            async for text in chunks:
                self._left -= len(text.encode("utf-8", "surrogatepass"))
                if self._left < 0:
                    raise _TooLarge
                self._raw(text)
                yield text


@dataclass
class _Answer:
    status: int
    headers: httpx2.Headers
    body: bytes = b""
    completion: dict[str, Any] | None = None
    streamed: bool = False


class _Failed(Exception):
    """One attempt failed; `verdict` says whether and how to retry."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.error.message)
        self.verdict = verdict


async def _read_stream(response: httpx2.Response, out: _Tracked, url: str, limit: int) -> _Answer:
    assembler = CompletionAssembler()
    tee = _Tee(response, out.raw, limit)
    source = httpx2.EventSource(cast(httpx2.Response, tee), min(MAX_EVENT_BYTES, limit))
    try:
        async with aclosing(cast(AsyncGenerator[Any, None], aiter(source))) as events:
            async for event in events:
                if event.data:
                    out.delta(assembler.feed(event.data, event.event))
                if assembler.done:
                    break
    except StreamError as exc:
        message = f"the stream from {url} reported an error: {exc}"
        raise _Failed(_stream_failure(message, out)) from None
    except _TooLarge:
        raise _Failed(_over(too_large(url, limit, "stream", SIZE_FLAG), out)) from None
    except httpx2.SSEError:
        flag = SIZE_FLAG if limit < MAX_EVENT_BYTES else None
        error = too_large(url, min(MAX_EVENT_BYTES, limit), "server-sent event", flag)
        raise _Failed(_over(error, out)) from None
    if not assembler.done:
        error = NetworkError(f"the stream from {url} ended before [DONE]")
        raise _Failed(_cut(error, out))
    return _Answer(response.status_code, response.headers, b"", assembler.completion(), True)


def _stream_failure(message: str, out: _Tracked) -> Verdict:
    if out.delivered:
        return Verdict(HTTPServerError(message + " (answer cut off)", status_code=502))
    return Verdict(HTTPServerError(message, status_code=502), retry=True, failover=True)


def _over(error: NetworkError, out: _Tracked) -> Verdict:
    """A size limit was hit: never retried (the same server would send the same again)."""
    if out.delivered:
        error.message += " (the answer above is cut off)"
        error.args = (error.message,)
    return Verdict(error)


def _cut(error: NetworkError, out: _Tracked) -> Verdict:
    if out.delivered:
        error.message += " (the answer above is cut off; not retried, as it was already printed)"
        error.args = (error.message,)
        return Verdict(error)
    return Verdict(error, retry=True, failover=True)


def _read_json(answer: _Answer, out: _Tracked, url: str) -> _Answer:
    completion = json_body(answer.body)
    if not completion:
        error = NetworkError(f"{url} answered {answer.status} with a body that is not JSON")
        raise _Failed(Verdict(error, retry=True, failover=True))
    out.raw(answer.body.decode("utf-8", "replace"))
    parts = message_parts(completion)
    out.delta(parts)
    answer.completion = completion
    return answer


# --- The sender -----------------------------------------------------------------------------


@dataclass
class _Attempt:
    endpoint: Endpoint
    transfer: str = ""
    signature: str | None = None
    timestamp_ns: int | None = None
    clock_generation: int = 0


@dataclass
class _State:
    started: float
    attempts: int = 0
    failures: int = 0
    skew_retried: bool = False
    moves: int = 0


class Sender:
    """Sends chat requests (signed or bearer) with retries, failover and skew correction.

    Use it as an async context manager; one instance serves any number of concurrent
    `send` calls (the batch runner shares one).
    """

    def __init__(
        self,
        config: SendConfig,
        *,
        pause: Pause | None = None,
        on_notice: Callable[[Notice], None] | None = None,
        clock: NanoClock = CLOCK,
        transport: httpx2.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._pause: Pause = pause or NoPause()
        self._notify = on_notice or (lambda notice: None)
        self._clock = clock
        self._clock_generation = 0
        self._skew_warned = False
        self._date_seen = ""
        self._client = async_client(config.timeouts, transport)
        self._rng = rng or random.Random()  # noqa: S311  # jitter and load spreading only
        self._sleep = sleep
        self._pool: EndpointPool | None = None
        self._addresses: dict[str, str] = {}
        self._moved: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @property
    def bearer(self) -> bool:
        """True for broker/gateway requests."""
        return isinstance(self.config.auth, BearerAuth)

    # -- public --------------------------------------------------------------------------

    async def send(
        self, body: bytes, *, sink: Sink | None = None, model: str | None = None
    ) -> Outcome:
        """Send one request body (exact bytes); raise a `GonkaError` when it finally fails."""
        self._check_size(body)
        state = _State(time.monotonic())
        out = _Tracked(sink or NullSink(), state.started)
        total = self.config.timeouts.total
        default = total is None and not _streamed(body)
        if default:
            total = DEFAULT_DEADLINE_S
        try:
            async with asyncio.timeout(total):
                return await self._send(body, out, state, model)
        except TimeoutError:
            raise NetworkError(
                f"no complete answer within --timeout {total:g} s"
                + (" (the default for a request that is not streamed)" if default else "")
                + (" (the answer above is cut off)" if out.delivered else ""),
                hint="raise --timeout"
                if default
                else "raise --timeout, or leave it unset (only --read-timeout then limits silence)",
            ) from None

    def _check_size(self, body: bytes) -> None:
        """Refuse, before anything goes out, a signed body every transfer agent refuses."""
        if not self.bearer and len(body) > MAX_SIGNED_BODY_BYTES:
            raise PayloadError(
                f"the request body is {len(body):,} bytes; transfer agents refuse bodies "
                "over 10 MiB (HTTP 413), so it was not sent"
            )

    async def prepare(self, body: bytes, *, model: str | None = None) -> PreparedRequest:
        """Build and sign the request the next `send` would start with, without sending it."""
        pool = await self._endpoints()
        attempt = _Attempt(self._current(pool.start(pool.serving(model or _model_of(body)))))
        attempt.transfer = await self._transfer_for(attempt.endpoint)
        auth = self._auth(attempt)
        request = self._client.build_request(
            "POST", attempt.endpoint.chat_url, content=body, headers=JSON_HEADERS
        )
        signed = next(auth.sync_auth_flow(request))
        return PreparedRequest(
            "POST",
            attempt.endpoint.chat_url,
            tuple((name.decode(), value.decode()) for name, value in signed.headers.raw),
            body,
            attempt.transfer,
            getattr(auth, "timestamp_ns", None),
            getattr(auth, "signature", None),
        )

    async def endpoints(self) -> list[Endpoint]:
        """The endpoints of this run (discovering them first if needed)."""
        return list((await self._endpoints()).endpoints)

    # -- the loop --------------------------------------------------------------------------

    async def _send(self, body: bytes, out: _Tracked, state: _State, model: str | None) -> Outcome:
        pool = await self._endpoints()
        if not model and any(known.models is not None for known in pool.endpoints):
            model = _model_of(body)  # parsed only when some endpoint lists its models
        candidates = pool.serving(model)
        endpoint = pool.start(candidates)
        budget = 1 if self.config.fixed_timestamp is not None else self.config.retry.max_retries + 1
        while True:
            await self._pause.wait()
            attempt = _Attempt(self._current(endpoint), clock_generation=self._clock_generation)
            state.attempts += 1
            try:
                answer = await self._attempt(attempt, body, out)
            except _Failed as failed:
                verdict = failed.verdict
            else:
                return self._outcome(answer, attempt, state, out)
            if verdict.skew and await self._correct_skew(verdict, attempt, state):
                continue
            if verdict.moved_to and self.config.follow_moved and state.moves < 3:
                self._follow(attempt.endpoint, verdict, state)
                continue
            state.failures += 1
            if not verdict.retry or state.failures >= self._budget(verdict, candidates, budget):
                raise self._final(verdict, state)
            endpoint = await self._next_endpoint(pool, candidates, endpoint, verdict, state)

    async def _attempt(self, attempt: _Attempt, body: bytes, out: _Tracked) -> _Answer:
        url = attempt.endpoint.chat_url
        try:
            try:
                attempt.transfer = await self._transfer_for(attempt.endpoint)
            except NetworkError as exc:  # this TA is down or silent: another may answer
                raise _Failed(Verdict(exc, retry=True, failover=True)) from None
            auth = self._auth(attempt)
            async with self._client.stream(
                "POST", url, content=body, headers=JSON_HEADERS, auth=auth
            ) as response:
                self._observe_clock(response.headers)
                attempt.signature = getattr(auth, "signature", None)
                attempt.timestamp_ns = getattr(auth, "timestamp_ns", None)
                answer = _Answer(response.status_code, response.headers)
                limit = self.config.max_response_bytes
                if not 200 <= response.status_code < 300:
                    answer.body = await read_prefix(response)
                    raise _Failed(self._judge(answer, url))
                if "text/event-stream" in response.headers.get("content-type", ""):
                    return await _read_stream(response, out, url, limit)
                try:
                    answer.body = await read_capped(response, limit, url, "answer", SIZE_FLAG)
                except NetworkError as exc:
                    raise _Failed(Verdict(exc)) from None
        except httpx2.UnsupportedProtocol as exc:
            raise UsageError(f"{url}: {exc}") from exc
        except httpx2.TransportError as exc:
            raise _Failed(_cut(network_error(exc, url, self.config.timeouts), out)) from exc
        except httpx2.DecodingError as exc:
            raise _Failed(_over(undecodable(exc, url), out)) from exc
        return _read_json(answer, out, url)

    def _judge(self, answer: _Answer, url: str) -> Verdict:
        message = error_message(answer.body, answer.status)
        return judge(
            answer.status,
            message,
            answer.headers,
            url=url,
            bearer=self.bearer,
            body=answer.body.decode("utf-8", "replace")[:2000],
        )

    @staticmethod
    def _budget(verdict: Verdict, candidates: list[Endpoint], budget: int) -> int:
        """How many failures end a request: one retry only when the one endpoint there is
        cannot be connected to at all (a node that is not running will not start)."""
        if isinstance(verdict.error, Unreachable) and len(candidates) == 1:
            return min(budget, 2)
        return budget

    async def _next_endpoint(
        self,
        pool: EndpointPool,
        candidates: list[Endpoint],
        endpoint: Endpoint,
        verdict: Verdict,
        state: _State,
    ) -> Endpoint:
        """Cool the failed endpoint down, pick the next one, and wait if it must."""
        policy = self.config.retry
        delay = verdict.wait
        if delay is not None and delay > policy.max_retry_after:
            raise self._final(verdict, state, f"the server asked to wait {delay:g} s")
        if delay is None:
            delay = policy.backoff(state.failures, self._rng.random())
        pool.cool_down(endpoint, delay)
        chosen, wait = pool.after(candidates, endpoint) if verdict.failover else (endpoint, delay)
        kind = "failover" if chosen != endpoint else "retry"
        self._notify(
            Notice(
                kind,
                f"{verdict.error.message}; retrying"
                + (f" on {chosen.url}" if chosen != endpoint else "")
                + (f" in {wait:.1f} s" if wait > 0 else ""),
            )
        )
        if wait > 0:
            if verdict.wait is not None:
                self._pause.pause_for(wait)
            await self._sleep(wait)
        return chosen

    def _final(self, verdict: Verdict, state: _State, reason: str = "") -> GonkaError:
        error = verdict.error
        notes = [reason] if reason else []
        if state.attempts > 1:
            notes.append(f"after {state.attempts} attempts")
        if notes:
            error.message += f" ({', '.join(notes)})"
            error.args = (error.message,)
        return error

    # -- skew, moves, endpoints, addresses ---------------------------------------------------

    async def _correct_skew(self, verdict: Verdict, attempt: _Attempt, state: _State) -> bool:
        """Measure the node's clock and re-sign once; False when that is not possible."""
        if state.skew_retried or self.config.fixed_timestamp is not None or self.bearer:
            return False
        state.skew_retried = True
        async with self._lock:
            if attempt.clock_generation != self._clock_generation:
                return True  # another request corrected the clock meanwhile
            offset = await measure_offset_ns(
                self._client, attempt.endpoint, verdict.headers, self.config.timeouts
            )
            if offset is None:
                return False
            self._adopt_offset(offset)
        return True

    def _observe_clock(self, headers: httpx2.Headers) -> None:
        """Notice a node clock far from ours (its ``Date``) before it refuses a request."""
        if self._skew_warned or self.bearer or self.config.fixed_timestamp is not None:
            return
        date = headers.get("date", "")
        if date == self._date_seen:
            return  # checked already (Date has one-second resolution; parsing it costs)
        self._date_seen = date
        offset = date_offset_ns(headers)
        if offset is not None:
            self._observe_offset(offset)

    def _observe_offset(self, offset_ns: int) -> None:
        """Adopt a measured node clock far (10 s or more) from the one we sign with."""
        if self._skew_warned or self.bearer or self.config.fixed_timestamp is not None:
            return
        if abs(offset_ns - self._clock.offset_ns) >= WARN_SKEW_NS:
            self._adopt_offset(offset_ns)

    def _adopt_offset(self, offset_ns: int) -> None:
        """Sign with the node's time from now on, and say so once."""
        self._clock = NanoClock(offset_ns=offset_ns)
        self._clock_generation += 1
        if self._skew_warned:
            return
        self._skew_warned = True
        seconds = offset_ns / 1e9
        self._notify(
            Notice(
                "skew",
                f"the node's clock is {abs(seconds):.1f} s "
                f"{'ahead of' if seconds > 0 else 'behind'} this machine's; signing with the "
                f"node's time. To fix this machine's clock: {CLOCK_HINT}",
                "warning",
            )
        )

    def _follow(self, endpoint: Endpoint, verdict: Verdict, state: _State) -> None:
        """Send to where the endpoint moved; credentials never go to another origin
        unless ``--trust-origin`` names it (else the move is refused, nothing is sent)."""
        from urllib.parse import urljoin

        from gonka_cli.endpoints import normalize_base_url, origin

        new_url = normalize_base_url(urljoin(endpoint.chat_url, verdict.moved_to or ""))
        new_origin = origin(new_url)
        if new_origin != origin(endpoint.url) and new_origin not in self.config.trusted_origins:
            error = verdict.error
            error.message += (
                f"; not followed: {new_origin} is another origin, and the "
                + ("API key" if self.bearer else "signature")
                + " is not sent there unless you trust it"
            )
            error.args = (error.message,)
            error.hint = f"to follow it with your credentials, add --trust-origin {new_origin}"
            raise error
        state.moves += 1
        self._moved[endpoint.url] = new_url
        self._notify(Notice("moved", f"{endpoint.url} moved to {new_url}; following", "warning"))

    def _current(self, endpoint: Endpoint) -> Endpoint:
        url = self._moved.get(endpoint.url)
        return (
            endpoint if url is None else Endpoint(url, endpoint.transfer_address, endpoint.models)
        )

    async def _endpoints(self) -> EndpointPool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                found = list(self.config.endpoints)
                if self.config.source_url:
                    found += await self._discover(self.config.source_url)
                self._pool = EndpointPool(found, rng=self._rng)
        return self._pool

    async def _discover(self, source_url: str) -> list[Endpoint]:
        participants = await discover(self._client, source_url, self.config.timeouts)
        found = usable_endpoints(participants, None)
        if not found:
            from gonka_cli.errors import ConfigError

            raise ConfigError(
                f"discovery at {source_url} found no usable transfer agent "
                f"({len(participants)} participants, none usable)",
                hint="see `gonka endpoints --source-url URL` for why",
            )
        self._notify(Notice("discovery", f"{len(found)} endpoints from {source_url}"))
        return found

    async def _transfer_for(self, endpoint: Endpoint) -> str:
        if self.bearer or endpoint.transfer_address:
            return endpoint.transfer_address
        if endpoint.url not in self._addresses:
            identity = await fetch_identity(self._client, endpoint.url, self.config.timeouts)
            self._addresses[endpoint.url] = identity.address
            self._notify(Notice("identity", f"{endpoint.url} is transfer agent {identity.address}"))
            if identity.time_ns is not None:
                self._observe_offset(identity.time_ns - time.time_ns())
        return self._addresses[endpoint.url]

    def _auth(self, attempt: _Attempt) -> httpx2.Auth:
        auth = self.config.auth
        if isinstance(auth, BearerAuth):
            return BearerTokenAuth(auth.api_key)
        fixed = self.config.fixed_timestamp
        stamp: Callable[[], int] = self._clock.now_ns if fixed is None else (lambda: fixed)
        return SignatureAuth(auth.key, attempt.transfer, auth.scheme, stamp)

    def _outcome(self, answer: _Answer, attempt: _Attempt, state: _State, out: _Tracked) -> Outcome:
        completion = answer.completion or {}
        usage = completion.get("usage")
        return Outcome(
            status_code=answer.status,
            response=completion,
            endpoint=attempt.endpoint.url,
            transfer_address=attempt.transfer,
            inference_id=str(completion.get("id") or attempt.signature or ""),
            request_id=answer.headers.get("x-request-id"),
            devshard_id=answer.headers.get("x-devshard-id"),
            attempts=state.attempts,
            latency_s=time.monotonic() - state.started,
            ttft_s=out.first_token_s,
            usage=usage if isinstance(usage, dict) else None,
            streamed=answer.streamed,
            signature=attempt.signature,
            timestamp_ns=attempt.timestamp_ns,
        )


def _streamed(body: bytes) -> bool:
    return json_body(body).get("stream") is True


def _model_of(body: bytes) -> str | None:
    model = json_body(body).get("model")
    return model if isinstance(model, str) else None


__all__ = [
    "BearerAuth",
    "BearerTokenAuth",
    "NoPause",
    "Notice",
    "NullSink",
    "Outcome",
    "Pause",
    "PreparedRequest",
    "RetryPolicy",
    "SendConfig",
    "Sender",
    "SignatureAuth",
    "SignedAuth",
    "Sink",
    "Timeouts",
]
