"""What keeps a dev node standing: a header-read deadline per connection, a cap on open
connections below the file-descriptor limit, and error logging that cannot flood.

uvicorn's h11 protocol has a keep-alive timeout but no header-read timeout: a client
that sends half a request head and then trickles a byte now and then holds its
connection (and a file descriptor) forever. `guarded_protocol` closes a connection whose
request head is not complete `header_timeout_s` after the connection opened, or after
the first byte of a later request on it, as Go's ``http.Server.ReadHeaderTimeout`` does.

When descriptors run out anyway, asyncio's accept loop reports ``EMFILE`` once per
pending connection, with a traceback each time; `ThrottledLog` turns that (and uvicorn's
per-connection warnings) into at most one line per second per kind of message.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from gonka_cli.devnode.runtime import TransportKey

RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Descriptors kept free for everything that is not a client connection (listening
# sockets, the upstream client, log files, the interpreter's own).
RESERVED_FDS = 64
LOGGERS = ("uvicorn.error", "asyncio")


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):  # some systems refuse; the old limit still holds
            pass
    return soft


def connection_cap(limit_concurrency: int, fd_limit: int, participants: int) -> int:
    """Open connections one participant keeps at most: new ones beyond it are closed at
    once, before the process runs out of descriptors."""
    budget = max(1, (fd_limit - RESERVED_FDS) // max(1, participants))
    return max(1, min(limit_concurrency + RESERVED_FDS, budget))


def guarded_protocol(
    transports: dict[TransportKey, asyncio.Transport],
    header_timeout_s: float,
    max_connections: int,
    warn: Callable[[str], None],
) -> type[H11Protocol]:
    """An h11 protocol class with a header-read deadline and a connection cap, that also
    lets the app find (and close) its connection's transport."""

    class GuardedProtocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                warn(f"{max_connections} connections open: closing new ones at once")
                transport.abort()
                return
            transports[(self.server, self.client)] = transport
            self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_deadline()
            transports.pop((self.server, self.client), None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_head():
                self._arm_head_deadline()
            else:
                self._disarm_head_deadline()

        def _waiting_for_head(self) -> bool:
            return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

        def _arm_head_deadline(self) -> None:
            if self._head_deadline is None:
                self._head_deadline = self.loop.call_later(header_timeout_s, self._head_late)

        def _disarm_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_late(self) -> None:
            self._head_deadline = None
            if self._waiting_for_head():
                self.transport.abort()

    return GuardedProtocol


class ThrottledLog(logging.Handler):
    """One stderr line per kind of message per second at most, never a traceback for a
    resource error (``Too many open files`` and the like); the lines held back are
    counted in the next one."""

    def __init__(self, write: Callable[[str], None] | None = None, interval_s: float = 1.0) -> None:
        super().__init__(logging.WARNING)
        self._write = write or _write_stderr
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._mutex = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record as one line, unless one like it was written under a second ago."""
        exc = record.exc_info[1] if record.exc_info else None
        self.report(record.getMessage(), exc, record.levelno >= logging.ERROR)

    def report(self, message: str, exc: BaseException | None, traceback: bool = False) -> None:
        """Write `message` (with `exc` summarised on the same line), throttled."""
        message = message.strip()
        kind = f"{message}|{type(exc).__name__}"
        now = time.monotonic()
        with self._mutex:
            if now - self._last.get(kind, -self._interval_s) < self._interval_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        line = f"gonka node: {message}"
        if exc is not None:
            line += f": {_describe(exc)}"
        if held:
            line += f" ({held} more like it held back)"
        if traceback and exc is not None and not _expected(exc):
            line += "\n" + "".join(_format_exception(exc)).rstrip()
        self._write(line)

    def loop_exception_handler(
        self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]
    ) -> None:
        """An asyncio exception handler that reports through this log."""
        exc = context.get("exception")
        self.report(str(context.get("message", "event loop error")), exc, traceback=True)


class AnswerWhenCancelled:
    """ASGI middleware: a request still in progress when the drain time runs out (its
    task is cancelled) is answered 503 with `body`, instead of uvicorn's bare 500."""

    def __init__(self, app: Any, body: bytes) -> None:
        self.app = app
        self.body = body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if scope["type"] != "http" or started:
                raise
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": self.body})


def is_resource_error(exc: BaseException) -> bool:
    """Whether an exception is the system running out of descriptors, buffers or memory."""
    return isinstance(exc, MemoryError) or (
        isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS
    )


def _expected(exc: BaseException) -> bool:
    """Whether an error is part of normal operation under load or at stop (no traceback)."""
    return isinstance(exc, asyncio.CancelledError) or is_resource_error(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _format_exception(exc: BaseException) -> list[str]:
    import traceback

    return traceback.format_exception(exc)


def _write_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


_INSTALLED: ThrottledLog | None = None


def install_log() -> ThrottledLog:
    """Route uvicorn's and asyncio's log records through one `ThrottledLog` (once per
    process: every node started in it shares the handler)."""
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = ThrottledLog()
        for name in LOGGERS:
            logging.getLogger(name).addHandler(_INSTALLED)
    return _INSTALLED
