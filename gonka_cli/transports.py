"""httpx2 transports that deliver any request to a Gonka transfer agent, signed, with failover.

    client = OpenAI(base_url="http://gonka/v1", api_key="unused",
                    http_client=httpx2.Client(transport=GonkaTransport(key, source_url=NODE)))

A request aimed at any host goes to a transfer agent chosen from `endpoints` (``URL;ADDRESS``
strings, ``(url, address)`` pairs, or bare URLs whose address ``/v1/identity`` tells) or
from discovery at `source_url`; the path after ``/v1`` is kept, and the exact body bytes
are signed for that agent's own address. Failures are judged as ``gonka send-request``
judges them (`gonka_cli.verdicts.judge`): a fresh timestamp and signature per attempt,
failover on 429, 5xx and connection failures, ``Retry-After`` honoured, the node's clock
adopted after "signature is too old", 410 and other final answers raised at once as
`GonkaError` subclasses with the command line's messages and hints.

A non-streamed answer is read whole before it is handed back (so a connection cut inside
it is retried); a streamed one (``text/event-stream``) is handed back as soon as its first
bytes arrive and then streams through live. Once bytes were handed back it is never
retried: a cut, or an end before ``data: [DONE]``, is raised as a `NetworkError`.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

import httpx2

from gonka_cli.endpoints import (
    Endpoint,
    EndpointPool,
    discover,
    fetch_identity,
    normalize_base_url,
    parse_endpoint,
    usable_endpoints,
)
from gonka_cli.errors import ConfigError, GonkaError, NetworkError, UsageError
from gonka_cli.keys import SigningKey, parse_address
from gonka_cli.limits import DEFAULT_MAX_RESPONSE_BYTES, MAX_DOCUMENT_BYTES, MAX_ERROR_BODY_BYTES
from gonka_cli.redact import redact
from gonka_cli.settings import RetryPolicy, Timeouts
from gonka_cli.signing import CLOCK, NanoClock, Scheme, parse_scheme, sign, signature_headers
from gonka_cli.transport import (
    async_client,
    error_message,
    json_body,
    network_error,
    too_large,
    undecodable,
)
from gonka_cli.verdicts import WARN_SKEW_NS, Verdict, date_offset_ns, judge, measure_offset_ns

if TYPE_CHECKING:
    import asyncio

# asyncio (as much as httpx2 to import) is loaded only by the async transport and by the
# rare reads of the sync one (discovery, identity, clock), so `GonkaTransport` stays light.

log = logging.getLogger("gonka_cli")


EndpointSpec = str | tuple[str, str] | Endpoint
_T = TypeVar("_T")
# Never forwarded: the signature replaces any Authorization (the OpenAI SDK sends its
# api_key), Host and the length are the new request's own, and X-Transfer-Address must
# never be sent (docs/protocol.md section 2).
_DROPPED = frozenset(
    {
        "host",
        "authorization",
        "content-length",
        "transfer-encoding",
        "x-requester-address",
        "x-timestamp",
        "x-transfer-address",
    }
)
_V1 = re.compile(r"/v1(?=/|\?|$)")
_DONE = re.compile(rb"[\r\n]data: ?\[DONE\][\r\n]")
_CUT = " (the answer is cut off; not retried, as part of it was already delivered)"


# --- What both transports share (no I/O) -------------------------------------------------------


def _endpoint(spec: EndpointSpec) -> Endpoint:
    if isinstance(spec, Endpoint):
        return spec
    if isinstance(spec, tuple):
        url, address = spec
        return Endpoint(normalize_base_url(url), parse_address(address) if address else "")
    return parse_endpoint(spec)


def _tail(url: httpx2.URL) -> str:
    """The path (and query) after ``/v1``; the whole path when there is no ``/v1``."""
    raw = url.raw_path.decode("ascii")
    found = _V1.search(raw.split("?", 1)[0])
    return raw[found.end() :] if found else raw


def _timeouts(request: httpx2.Request, default: Timeouts) -> Timeouts:
    """The caller's time-outs for this request, for the error messages that name them."""
    given = request.extensions.get("timeout")
    if not isinstance(given, dict):
        return default
    connect, read = given.get("connect"), given.get("read")
    return Timeouts(
        connect=float("inf") if connect is None else float(connect),
        read=float("inf") if read is None else float(read),
    )


@dataclass
class _Run:
    """One request's progress through its attempts."""

    candidates: list[Endpoint]
    endpoint: Endpoint
    timeouts: Timeouts
    attempts: int = 0
    failures: int = 0
    skew_retried: bool = False


class _Router:
    """Endpoints, the signing clock, and the decisions between attempts, as `Sender` makes them."""

    def __init__(
        self,
        key: SigningKey,
        endpoints: Iterable[EndpointSpec] | str | None,
        source_url: str | None,
        scheme: Scheme | str,
        retry: RetryPolicy,
        timeouts: Timeouts,
        rng: random.Random | None,
        max_bytes: int,
    ) -> None:
        if not isinstance(key, SigningKey):
            raise ConfigError("the transport needs a gonka_cli.SigningKey (see load_key)")
        self.key = key
        self.scheme = parse_scheme(scheme)
        if isinstance(endpoints, str):  # "url;address,url;address", as GONKA_ENDPOINTS
            endpoints = [item for item in endpoints.split(",") if item.strip()]
        self.static = [_endpoint(spec) for spec in endpoints or ()]
        self.source_url = normalize_base_url(source_url) if source_url else None
        if not self.static and self.source_url is None:
            raise UsageError("no endpoints: pass endpoints=['URL;ADDRESS', ...] or source_url=URL")
        self.retry = retry
        self.timeouts = timeouts
        self.max_bytes = max_bytes
        self.rng = rng or random.Random()  # noqa: S311  # jitter and load spreading only
        self.pool: EndpointPool | None = None
        self.addresses: dict[str, str] = {}
        self.clock = CLOCK
        self.skew_noticed = False

    def make_pool(self, discovered: list[Endpoint]) -> EndpointPool:
        if self.source_url is not None and not discovered:
            raise ConfigError(
                f"discovery at {self.source_url} found no usable transfer agent",
                hint="see `gonka endpoints --source-url URL` for why",
            )
        if discovered:
            log.info("%d endpoints from %s", len(discovered), self.source_url)
        self.pool = EndpointPool(self.static + discovered, rng=self.rng)
        return self.pool

    def start(self, pool: EndpointPool, request: httpx2.Request, body: bytes) -> _Run:
        model = json_body(body).get("model") if body else None
        candidates = pool.serving(model if isinstance(model, str) else None)
        return _Run(candidates, pool.start(candidates), _timeouts(request, self.timeouts))

    def outgoing(
        self, request: httpx2.Request, body: bytes, endpoint: Endpoint, transfer: str
    ) -> httpx2.Request:
        """The request for this attempt: the TA's URL, signed now for its address."""
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _DROPPED]
        outgoing = httpx2.Request(
            request.method,
            endpoint.url + _tail(request.url),
            headers=headers,
            content=body,
            extensions=request.extensions,
        )
        stamp = self.clock.now_ns()
        signature = sign(self.key, body, stamp, transfer, self.scheme)
        outgoing.headers.update(signature_headers(signature, self.key.address, stamp))
        return outgoing

    def refused(self, response: httpx2.Response, body: bytes, url: str) -> Verdict:
        message = error_message(body, response.status_code)
        text = body.decode("utf-8", "replace")[:2000]
        return judge(
            response.status_code, message, response.headers, url=url, bearer=False, body=text
        )

    def unusable(self, request: httpx2.Request, response: httpx2.Response, body: bytes) -> bool:
        """A 2xx answer to a chat POST whose (decoded) body is not JSON: `Sender` retries it."""
        return request.method == "POST" and not json_body(body)

    def not_json(self, url: str, status: int) -> Verdict:
        error = NetworkError(f"{url} answered {status} with a body that is not JSON")
        return Verdict(error, retry=True, failover=True)

    def too_large(self, url: str) -> Verdict:
        """An answer over the size limit: not retried (the same server would send it again)."""
        return Verdict(too_large(url, self.max_bytes))

    def broken(self, exc: httpx2.TransportError, url: str, run: _Run) -> Verdict:
        return Verdict(network_error(exc, url, run.timeouts), retry=True, failover=True)

    def observe(self, headers: httpx2.Headers) -> None:
        """Adopt a node clock 10 s or more from ours (its ``Date``) before it refuses us."""
        offset = date_offset_ns(headers)
        if offset is not None:
            self.observe_offset(offset)

    def observe_offset(self, offset_ns: int) -> None:
        """Adopt a measured node clock far from the one we sign with."""
        if abs(offset_ns - self.clock.offset_ns) >= WARN_SKEW_NS:
            self.adopt(offset_ns)

    def adopt(self, offset_ns: int) -> None:
        self.clock = NanoClock(offset_ns=offset_ns)
        if not self.skew_noticed:
            self.skew_noticed = True
            log.warning(
                "the node's clock is %.1f s %s this machine's; signing with the node's time",
                abs(offset_ns) / 1e9,
                "ahead of" if offset_ns > 0 else "behind",
            )

    def may_correct_skew(self, verdict: Verdict, run: _Run) -> bool:
        if not verdict.skew or run.skew_retried:
            return False
        run.skew_retried = True
        return True

    def next_step(self, verdict: Verdict, run: _Run, pool: EndpointPool) -> float:
        """Raise the final error, or move `run` to its next endpoint; return the wait."""
        run.failures += 1
        if not verdict.retry or run.failures >= self.retry.max_retries + 1:
            raise _final(verdict, run)
        delay = verdict.wait
        if delay is not None and delay > self.retry.max_retry_after:
            raise _final(verdict, run, f"the server asked to wait {delay:g} s")
        if delay is None:
            delay = self.retry.backoff(run.failures, self.rng.random())
        pool.cool_down(run.endpoint, delay)
        failed = run.endpoint
        if verdict.failover:
            run.endpoint, wait = pool.after(run.candidates, failed)
        else:
            wait = delay
        log.info(
            "%s; retrying%s%s",
            redact(verdict.error.message),
            f" on {run.endpoint.url}" if run.endpoint != failed else "",
            f" in {wait:.1f} s" if wait > 0 else "",
        )
        return wait


def _final(verdict: Verdict, run: _Run, reason: str = "") -> GonkaError:
    error = verdict.error
    notes = [reason] if reason else []
    if run.attempts > 1:
        notes.append(f"after {run.attempts} attempts")
    if notes:
        error.message += f" ({', '.join(notes)})"
    return _clean(error)


def _clean(error: GonkaError) -> GonkaError:
    """`error` with its message and hint redacted as the CLI prints them: a caller's
    traceback or log must not carry a server's terminal escapes, URL user-info or a
    key-shaped string it echoed."""
    error.message = redact(error.message)
    error.hint = redact(error.hint) if error.hint else error.hint
    error.args = (error.message,)
    return error


class _DoneWatch:
    """Whether an event stream has carried ``data: [DONE]`` (across chunk boundaries)."""

    def __init__(self) -> None:
        self.done = False
        self._tail = b"\n"

    def feed(self, chunk: bytes) -> None:
        if self.done:
            return
        window = self._tail + chunk
        self.done = b"[DONE]" in window and _DONE.search(window + b"\n") is not None
        self._tail = window[-16:]


def _ended_early(url: str) -> NetworkError:
    error = _clean(NetworkError(f"the stream from {url} ended before [DONE]" + _CUT))
    assert isinstance(error, NetworkError)
    return error


def _cut_off(exc: httpx2.TransportError, url: str, timeouts: Timeouts) -> NetworkError:
    error = network_error(exc, url, timeouts)
    error.message += _CUT
    _clean(error)
    return error


def _is_stream(response: httpx2.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "")


def _rebuilt(
    response: httpx2.Response,
    stream: httpx2.SyncByteStream | httpx2.AsyncByteStream,
    *,
    decoded: bool = False,
) -> httpx2.Response:
    headers = response.headers
    if decoded:  # the body was decoded here: its encoding and length no longer apply
        dropped = ("content-encoding", "content-length")
        headers = httpx2.Headers(
            [(k, v) for k, v in headers.multi_items() if k.lower() not in dropped]
        )
    return httpx2.Response(
        response.status_code,
        headers=headers,
        stream=stream,
        extensions=response.extensions,
    )


# --- The synchronous transport -----------------------------------------------------------------


class _LiveStream(httpx2.SyncByteStream):
    """A streamed answer passed through as it arrives; a break becomes a `NetworkError`."""

    def __init__(
        self,
        first: bytes,
        rest: Iterator[bytes],
        upstream: httpx2.SyncByteStream,
        url: str,
        timeouts: Timeouts,
    ) -> None:
        self._first, self._rest, self._upstream = first, rest, upstream
        self._url, self._timeouts = url, timeouts
        self._watch = _DoneWatch()

    def __iter__(self) -> Iterator[bytes]:
        # Callers may iterate again to drain what is left (the OpenAI SDK does after
        # [DONE]), so where the stream stands is kept on the object.
        if self._first:
            first, self._first = self._first, b""
            self._watch.feed(first)
            yield first
        try:
            for chunk in self._rest:
                self._watch.feed(chunk)
                yield chunk
        except httpx2.TransportError as exc:
            raise _cut_off(exc, self._url, self._timeouts) from exc
        if not self._watch.done:
            raise _ended_early(self._url)

    def close(self) -> None:
        self._upstream.close()


class GonkaTransport(httpx2.BaseTransport):
    """An httpx2 transport that signs each request for a Gonka transfer agent and fails over.

    `endpoints`: ``"URL;ADDRESS"`` strings, ``(url, address)`` pairs or bare URLs (the
    address is then read from ``/v1/identity``), or one comma-separated string as in
    ``GONKA_ENDPOINTS``; `source_url`: a node whose participants are discovered (both may
    be given). `max_retries`, `base_delay`, `max_delay` and
    `max_retry_after` are ``gonka send-request``'s retry policy; `connect_timeout` limits
    discovery and identity reads; `transport` is the transport underneath (default: a
    plain ``httpx2.HTTPTransport``); a non-streamed answer over `max_response_bytes` (64 MiB)
    is refused with a `NetworkError` (a streamed one is the caller's to read).
    """

    def __init__(
        self,
        key: SigningKey,
        *,
        endpoints: Iterable[EndpointSpec] | str | None = None,
        source_url: str | None = None,
        scheme: Scheme | str = Scheme.HASH,
        max_retries: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 10.0,
        max_retry_after: float = 120.0,
        connect_timeout: float = 10.0,
        transport: httpx2.BaseTransport | None = None,
        rng: random.Random | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        retry = RetryPolicy(max_retries, base_delay, max_delay, max_retry_after)
        timeouts = Timeouts(connect=connect_timeout, read=max(connect_timeout, 30.0))
        self._router = _Router(
            key, endpoints, source_url, scheme, retry, timeouts, rng, max_response_bytes
        )
        self._inner = transport or httpx2.HTTPTransport()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` to a transfer agent, retrying and failing over until it is answered."""
        body = request.read()
        pool = self._pool()
        run = self._router.start(pool, request, body)
        while True:
            run.attempts += 1
            outcome = self._attempt(request, body, run)
            if isinstance(outcome, httpx2.Response):
                return outcome
            if self._router.may_correct_skew(outcome, run) and self._correct_skew(outcome, run):
                continue
            wait = self._router.next_step(outcome, run, pool)
            if wait > 0:
                time.sleep(wait)

    def _attempt(
        self, request: httpx2.Request, body: bytes, run: _Run
    ) -> httpx2.Response | Verdict:
        url = run.endpoint.url + _tail(request.url)
        try:
            transfer = self._transfer_for(run.endpoint)
            outgoing = self._router.outgoing(request, body, run.endpoint, transfer)
            response = self._inner.handle_request(outgoing)
        except httpx2.TransportError as exc:
            return self._router.broken(exc, url, run)
        self._router.observe(response.headers)
        stream = cast(httpx2.SyncByteStream, response.stream)
        try:
            if not 200 <= response.status_code < 300:
                error_body, _ = _read(response, MAX_ERROR_BODY_BYTES)
                return self._router.refused(response, error_body, url)
            if _is_stream(response):
                return self._live(response, stream, url, run)
            content, over = _read(response, self._router.max_bytes)
        except httpx2.TransportError as exc:
            return self._router.broken(exc, url, run)
        except httpx2.DecodingError as exc:
            return Verdict(undecodable(exc, url))
        if over:
            return self._router.too_large(url)
        if self._router.unusable(request, response, content):
            return self._router.not_json(url, response.status_code)
        return _rebuilt(response, httpx2.ByteStream(content), decoded=True)

    def _live(
        self, response: httpx2.Response, stream: httpx2.SyncByteStream, url: str, run: _Run
    ) -> httpx2.Response | Verdict:
        chunks = iter(stream)
        try:
            first = next(chunks, b"")
            while not first:  # an empty chunk is no answer yet
                first = next(chunks)
        except StopIteration:
            stream.close()
            return Verdict(NetworkError(f"the stream from {url} ended before [DONE]"), True, True)
        except BaseException:
            stream.close()
            raise
        return _rebuilt(response, _LiveStream(first, chunks, stream, url, run.timeouts))

    def _pool(self) -> EndpointPool:
        with self._lock:
            if self._router.pool is not None:
                return self._router.pool
            found = self._blocking(self._discover) if self._router.source_url else []
            return self._router.make_pool(found)

    async def _discover(self, client: httpx2.AsyncClient) -> list[Endpoint]:
        assert self._router.source_url is not None
        participants = await discover(client, self._router.source_url, self._router.timeouts)
        return usable_endpoints(participants, None)

    def _transfer_for(self, endpoint: Endpoint) -> str:
        if endpoint.transfer_address:
            return endpoint.transfer_address
        known = self._router.addresses.get(endpoint.url)
        if known is None:

            async def read(client: httpx2.AsyncClient) -> str:
                identity = await fetch_identity(client, endpoint.url, self._router.timeouts)
                if identity.time_ns is not None:
                    self._router.observe_offset(identity.time_ns - time.time_ns())
                return identity.address

            known = self._router.addresses[endpoint.url] = self._blocking(read)
        return known

    def _correct_skew(self, verdict: Verdict, run: _Run) -> bool:
        async def measure(client: httpx2.AsyncClient) -> int | None:
            return await measure_offset_ns(
                client, run.endpoint, verdict.headers, self._router.timeouts
            )

        offset = self._blocking(measure)
        if offset is None:
            return False
        self._router.adopt(offset)
        return True

    def _blocking(self, read: Callable[[httpx2.AsyncClient], Awaitable[_T]]) -> _T:
        """Run one of the package's async reads through the inner transport, and wait."""

        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        async def main() -> _T:
            async with async_client(self._router.timeouts, _Bridge(self._inner)) as client:
                return await read(client)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        with ThreadPoolExecutor(1) as worker:  # called from inside an event loop's thread
            return worker.submit(asyncio.run, main()).result()

    def close(self) -> None:
        """Close the transport underneath."""
        self._inner.close()


def _read(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether there was more (then it is not read on).

    Counted after its ``Content-Encoding`` is undone, chunk by chunk: counting the wire
    bytes let 64 MiB of gzip through, which the client then inflated a thousandfold (a
    gzip bomb took the process past 7 GB). `httpx2.DecodingError` when it does not decode.
    """
    parts: list[bytes] = []
    size = 0
    reader = _decoding(response)
    try:
        for chunk in reader.iter_bytes():
            size += len(chunk)
            if size > limit:
                return b"".join(parts), True
            parts.append(chunk)
        return b"".join(parts), False
    finally:
        reader.close()


def _decoding(response: httpx2.Response) -> httpx2.Response:
    """A response over the same unread wire stream, whose ``iter_bytes`` decodes it."""
    return httpx2.Response(response.status_code, headers=response.headers, stream=response.stream)


class _Bridge(httpx2.AsyncBaseTransport):
    """Lets the async reads (discovery, identity, clock) use a synchronous transport."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        response = self._inner.handle_request(request)
        content, _ = _read(response, MAX_DOCUMENT_BYTES + 1)  # decoded: no gzip bomb
        return _rebuilt(response, httpx2.ByteStream(content), decoded=True)

    async def aclose(self) -> None:
        """The inner transport belongs to the `GonkaTransport`."""


# --- The asynchronous transport ----------------------------------------------------------------


class _AsyncLiveStream(httpx2.AsyncByteStream):
    """`_LiveStream` for the async transport."""

    def __init__(
        self,
        first: bytes,
        rest: AsyncIterator[bytes],
        upstream: httpx2.AsyncByteStream,
        url: str,
        timeouts: Timeouts,
    ) -> None:
        self._first, self._rest, self._upstream = first, rest, upstream
        self._url, self._timeouts = url, timeouts
        self._watch = _DoneWatch()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Callers may iterate again to drain what is left (the OpenAI SDK does after
        # [DONE]), so where the stream stands is kept on the object.
        if self._first:
            first, self._first = self._first, b""
            self._watch.feed(first)
            yield first
        try:
            async for chunk in self._rest:
                self._watch.feed(chunk)
                yield chunk
        except httpx2.TransportError as exc:
            raise _cut_off(exc, self._url, self._timeouts) from exc
        if not self._watch.done:
            raise _ended_early(self._url)

    async def aclose(self) -> None:
        await self._upstream.aclose()


class AsyncGonkaTransport(httpx2.AsyncBaseTransport):
    """`GonkaTransport` for ``httpx2.AsyncClient`` (and so ``openai.AsyncOpenAI``)."""

    def __init__(
        self,
        key: SigningKey,
        *,
        endpoints: Iterable[EndpointSpec] | str | None = None,
        source_url: str | None = None,
        scheme: Scheme | str = Scheme.HASH,
        max_retries: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 10.0,
        max_retry_after: float = 120.0,
        connect_timeout: float = 10.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        retry = RetryPolicy(max_retries, base_delay, max_delay, max_retry_after)
        timeouts = Timeouts(connect=connect_timeout, read=max(connect_timeout, 30.0))
        self._router = _Router(
            key, endpoints, source_url, scheme, retry, timeouts, rng, max_response_bytes
        )
        self._inner = transport or httpx2.AsyncHTTPTransport()
        self._lock: asyncio.Lock | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` to a transfer agent, retrying and failing over until it is answered."""
        import asyncio  # here, not at the top: see the note there

        body = await request.aread()
        pool = await self._pool()
        run = self._router.start(pool, request, body)
        while True:
            run.attempts += 1
            outcome = await self._attempt(request, body, run)
            if isinstance(outcome, httpx2.Response):
                return outcome
            if self._router.may_correct_skew(outcome, run) and await self._correct_skew(
                outcome, run
            ):
                continue
            wait = self._router.next_step(outcome, run, pool)
            if wait > 0:
                await asyncio.sleep(wait)

    async def _attempt(
        self, request: httpx2.Request, body: bytes, run: _Run
    ) -> httpx2.Response | Verdict:
        url = run.endpoint.url + _tail(request.url)
        try:
            transfer = await self._transfer_for(run.endpoint)
            outgoing = self._router.outgoing(request, body, run.endpoint, transfer)
            response = await self._inner.handle_async_request(outgoing)
        except httpx2.TransportError as exc:
            return self._router.broken(exc, url, run)
        self._router.observe(response.headers)
        stream = cast(httpx2.AsyncByteStream, response.stream)
        try:
            if not 200 <= response.status_code < 300:
                error_body, _ = await _aread(response, MAX_ERROR_BODY_BYTES)
                return self._router.refused(response, error_body, url)
            if _is_stream(response):
                return await self._live(response, stream, url, run)
            content, over = await _aread(response, self._router.max_bytes)
        except httpx2.TransportError as exc:
            return self._router.broken(exc, url, run)
        except httpx2.DecodingError as exc:
            return Verdict(undecodable(exc, url))
        if over:
            return self._router.too_large(url)
        if self._router.unusable(request, response, content):
            return self._router.not_json(url, response.status_code)
        return _rebuilt(response, httpx2.ByteStream(content), decoded=True)

    async def _live(
        self, response: httpx2.Response, stream: httpx2.AsyncByteStream, url: str, run: _Run
    ) -> httpx2.Response | Verdict:
        chunks = aiter(stream)
        try:
            first = b""
            while not first:  # an empty chunk is no answer yet
                first = await anext(chunks)
        except StopAsyncIteration:
            await stream.aclose()
            return Verdict(NetworkError(f"the stream from {url} ended before [DONE]"), True, True)
        except BaseException:
            await stream.aclose()
            raise
        return _rebuilt(response, _AsyncLiveStream(first, chunks, stream, url, run.timeouts))

    async def _pool(self) -> EndpointPool:
        if self._router.pool is not None:
            return self._router.pool
        import asyncio

        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._router.pool is not None:
                return self._router.pool
            found: list[Endpoint] = []
            if self._router.source_url is not None:
                async with self._reads() as client:
                    source = self._router.source_url
                    participants = await discover(client, source, self._router.timeouts)
                found = usable_endpoints(participants, None)
            return self._router.make_pool(found)

    def _reads(self) -> httpx2.AsyncClient:
        return async_client(self._router.timeouts, _Shared(self._inner))

    async def _transfer_for(self, endpoint: Endpoint) -> str:
        if endpoint.transfer_address:
            return endpoint.transfer_address
        known = self._router.addresses.get(endpoint.url)
        if known is None:
            async with self._reads() as client:
                identity = await fetch_identity(client, endpoint.url, self._router.timeouts)
            if identity.time_ns is not None:
                self._router.observe_offset(identity.time_ns - time.time_ns())
            known = self._router.addresses[endpoint.url] = identity.address
        return known

    async def _correct_skew(self, verdict: Verdict, run: _Run) -> bool:
        async with self._reads() as client:
            offset = await measure_offset_ns(
                client, run.endpoint, verdict.headers, self._router.timeouts
            )
        if offset is None:
            return False
        self._router.adopt(offset)
        return True

    async def aclose(self) -> None:
        """Close the transport underneath."""
        await self._inner.aclose()


async def _aread(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    """`_read` for the async transport."""
    parts: list[bytes] = []
    size = 0
    reader = _decoding(response)
    try:
        async for chunk in reader.aiter_bytes():
            size += len(chunk)
            if size > limit:
                return b"".join(parts), True
            parts.append(chunk)
        return b"".join(parts), False
    finally:
        await reader.aclose()


class _Shared(httpx2.AsyncBaseTransport):
    """The inner transport, lent to a short-lived client that must not close it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """The inner transport belongs to the `AsyncGonkaTransport`."""


__all__ = ["AsyncGonkaTransport", "EndpointSpec", "GonkaTransport"]
