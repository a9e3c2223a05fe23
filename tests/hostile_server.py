"""A misbehaving HTTP server for the tests: a real asyncio server on 127.0.0.1, in a thread.

It listens on two ports (two origins). The first path segment picks the misbehaviour,
so one server serves every case: ``http://127.0.0.1:PORT/<case>/v1/chat/completions``.

- ``endless200`` / ``endless500``: a body that never ends (until the client hangs up)
- ``gzipbomb``: a gzip body that never ends and inflates about a thousandfold;
  ``badgzip``: a gzip body that stops decoding
- ``sseline``: one SSE ``data:`` line that never ends
- ``ssedeltas``: valid content deltas without end, never ``[DONE]``
- ``hugeidentity``: a signed chat whose ``/v1/identity`` never ends
- ``echo401``: 401 saying ``Incorrect API key provided: <the Authorization header>``
- ``moved``: 308 with ``new_url`` on the other port; ``location``: 308 with ``Location``
- ``escapes``: 400 whose message holds terminal escapes, a URL with user-info and a
  64-hex key
- ``landing``: a normal answer (where the moves point)

Every request is recorded (port, method, path, headers). Endless bodies stop after
`MAX_SENT` bytes or `MAX_SECONDS`, so no test loop is unbounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_SENT = 3 * 1024 * 1024 * 1024
MAX_SECONDS = 60.0
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x9b2J\x07"
HEX_KEY = "ab" * 32
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "echo",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "landed"}}],
}


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    port: int
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class HostileServer:
    """The running server: its two ports and what it has seen."""

    port: int = 0
    other_port: int = 0
    seen: list[Seen] = field(default_factory=list)

    def url(self, case: str, *, other: bool = False) -> str:
        """The base URL (ending in /v1) for a misbehaviour, on the first or the other port."""
        return f"http://127.0.0.1:{self.other_port if other else self.port}/{case}/v1"

    def origin(self, *, other: bool = False) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.other_port if other else self.port}"

    def on_other_port(self) -> list[Seen]:
        """The requests that reached the second origin."""
        return [s for s in self.seen if s.port == self.other_port]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length:
        await reader.readexactly(length)
    return method, path, headers


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}Connection: close\r\n\r\n"
    ).encode()


def _whole(status: str, document: object, extra: str = "") -> bytes:
    body = json.dumps(document).encode()
    return _head(status, "application/json", f"{extra}Content-Length: {len(body)}\r\n") + body


async def _endless(writer: asyncio.StreamWriter, first: bytes, chunk: bytes) -> None:
    """Send `first`, then `chunk` again and again until the client leaves (or the bounds)."""
    writer.write(first)
    sent, started = 0, time.monotonic()
    while sent < MAX_SENT and time.monotonic() - started < MAX_SECONDS:
        writer.write(chunk)
        await writer.drain()
        sent += len(chunk)


async def _gzip_bomb(writer: asyncio.StreamWriter, *, broken: bool = False) -> None:
    """A gzip body that inflates about a thousandfold without end (or, `broken`, one whose
    second member is cut into pieces that do not decode)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"0" * (4 * 1024 * 1024)
    first = packer.compress(zeros) + packer.flush(zlib.Z_SYNC_FLUSH)
    extra = "Content-Encoding: gzip\r\n"
    if broken:
        await _endless(writer, _head("200 OK", "application/json", extra) + first, b"\xff" * 64)
        return
    writer.write(_head("200 OK", "application/json", extra) + first)
    started = time.monotonic()
    for _ in range(100_000):
        if time.monotonic() - started > MAX_SECONDS:
            break
        writer.write(packer.compress(zeros) + packer.flush(zlib.Z_SYNC_FLUSH))
        await writer.drain()


_DELTA = (
    b'data: {"id":"c","object":"chat.completion.chunk","model":"echo",'
    b'"choices":[{"index":0,"delta":{"content":"' + b"x" * 200 + b'"}}]}\n\n'
)


class _Handler:
    def __init__(self, server: HostileServer) -> None:
        self.server = server

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
                method, path, headers = await _read_request(reader)
                port = writer.get_extra_info("sockname")[1]
                self.server.seen.append(Seen(port, method, path, headers))
                await self._answer(writer, path, headers)
                writer.close()
                await writer.wait_closed()
        finally:
            if not writer.is_closing():
                writer.transport.abort()

    async def _answer(
        self, writer: asyncio.StreamWriter, path: str, headers: dict[str, str]
    ) -> None:
        case = path.strip("/").split("/")[0]
        big = b" " * 65536
        if case == "endless200":
            await _endless(writer, _head("200 OK", "application/json") + b'{"a":"', big)
        elif case in ("gzipbomb", "badgzip"):
            await _gzip_bomb(writer, broken=case == "badgzip")
        elif case == "endless500":
            await _endless(writer, _head("500 Oops", "text/plain"), b"z" * 65536)
        elif case == "sseline":
            await _endless(writer, _head("200 OK", "text/event-stream") + b"data: ", b"x" * 65536)
        elif case == "ssedeltas":
            await _endless(writer, _head("200 OK", "text/event-stream"), _DELTA * 100)
        elif case == "hugeidentity" and path.endswith("/identity"):
            await _endless(writer, _head("200 OK", "application/json") + b'{"data":"', big)
        elif case == "echo401":
            message = f"Incorrect API key provided: {headers.get('authorization', '')}"
            writer.write(_whole("401 Unauthorized", {"error": {"message": message}}))
        elif case in ("moved", "location"):
            target = self.server.url("landing", other=True)
            if case == "moved":
                document = {"status": 308, "message": "moved", "new_url": target}
                writer.write(_whole("308 Permanent Redirect", document))
            else:
                extra = f"Location: {target}/chat/completions\r\n"
                writer.write(_whole("308 Permanent Redirect", {"message": "moved"}, extra))
        elif case == "escapes":
            message = f"bad {ESCAPES} see http://alice:pw@10.0.0.1/x key {HEX_KEY}"
            writer.write(_whole("400 Bad Request", {"error": message}))
        else:
            writer.write(_whole("200 OK", ANSWER))
        await writer.drain()


@contextlib.contextmanager
def hostile_server() -> Iterator[HostileServer]:
    """Start the server on two free ports of 127.0.0.1; stop it on exit."""
    state = HostileServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[asyncio.Server] = []

    async def start() -> None:
        for _ in range(2):
            servers.append(await asyncio.start_server(_Handler(state), "127.0.0.1", 0))
        state.port, state.other_port = (s.sockets[0].getsockname()[1] for s in servers)
        ready.set()

    def run() -> None:
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield state
    finally:

        async def stop() -> None:
            for server in servers:
                server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for server in servers:
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
