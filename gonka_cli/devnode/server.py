"""Running a dev node: uvicorn servers, one per participant, in one background event loop."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gonka_cli.devnode.app import build_app
from gonka_cli.devnode.config import NodeConfig, ServerLimits, participant_key, resolve_accounts
from gonka_cli.devnode.faults import FaultPlan
from gonka_cli.devnode.guard import (
    connection_cap,
    guarded_protocol,
    install_log,
    raise_fd_limit,
)
from gonka_cli.devnode.runtime import NodeRuntime, ParticipantState
from gonka_cli.devnode.state import NodeStats, Participant
from gonka_cli.errors import GonkaError, UsageError

START_TIMEOUT_S = 30.0
STOP_MARGIN_S = 10.0  # beyond the drain time, for the loop to wind down


def bind_sockets(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """Listening sockets for `count` participants: `port`, `port + 1`... (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for index in range(count):
            wanted = port + index if port else 0
            # IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted connections; without
            # it, a response's header and body wait on the client's delayed ACK (~40 ms).
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, wanted))
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise UsageError(
            f"cannot listen on {host}:{wanted}: {exc.strerror or exc}",
            hint="pick another --port (0 picks free ports) or stop what is using it",
        ) from exc
    return sockets


def url_for(host: str, port: int) -> str:
    """The URL clients use; a wildcard host is advertised as loopback."""
    advertised = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    if ":" in advertised:
        advertised = f"[{advertised}]"
    return f"http://{advertised}:{port}"


def _participants(config: NodeConfig, sockets: list[socket.socket]) -> list[ParticipantState]:
    states = []
    for index, sock in enumerate(sockets):
        key = participant_key(config.seed, index)
        info = Participant(
            index=index,
            url=url_for(config.host, sock.getsockname()[1]),
            address=key.address,
            public_key=key.public_key_b64,
            stats=NodeStats(),
        )
        enabled = config.fault_participants is None or index in config.fault_participants
        plan = FaultPlan(config.seed, index, config.fault_rate, config.faults, enabled=enabled)
        states.append(ParticipantState(info, key, plan))
    return states


def _api_keys(config: NodeConfig) -> tuple[str, ...]:
    if config.mode != "gateway" or config.api_keys:
        return tuple(config.api_keys)
    return ("gnk-dev-" + secrets.token_hex(16),)


class RunningNode:
    """A started dev node; a context manager that stops it on exit."""

    def __init__(
        self, config: NodeConfig, runtime: NodeRuntime, sockets: list[socket.socket]
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.participants = [state.info for state in runtime.participants]
        self.url = self.participants[0].url
        self.stats = runtime.stats
        self.api_keys = runtime.api_keys
        self._sockets = sockets
        self._servers: list[uvicorn.Server] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._fd_limit = raise_fd_limit()
        self._thread = threading.Thread(target=self._run, name="gonka-devnode", daemon=True)

    @property
    def base_url(self) -> str:
        """Participant 0's OpenAI-style base URL (``url + "/v1"``)."""
        return self.url + "/v1"

    def _start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self.stop()
            raise GonkaError("the dev node did not start in time")
        if self._error is not None:
            self.stop()
            raise GonkaError(f"the dev node failed to start: {self._error}") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the starting thread, never lost
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        log = install_log()
        self._loop.set_exception_handler(log.loop_exception_handler)
        if self.config.upstream is not None:
            import httpx2

            self.runtime.upstream = httpx2.AsyncClient(timeout=httpx2.Timeout(300.0, connect=10.0))
        try:
            limits = self.config.limits
            protocol = guarded_protocol(
                self.runtime.transports,
                limits.header_timeout_s,
                connection_cap(limits.limit_concurrency, self._fd_limit, len(self._sockets)),
                lambda line: log.report(line, None),
            )
            for state in self.runtime.participants:
                app = build_app(self.runtime, state)
                self._servers.append(uvicorn.Server(_uvicorn_config(app, protocol, limits)))
                self._servers[-1].should_exit = self._stopping
            tasks = [
                asyncio.create_task(server.serve(sockets=[sock]))
                for server, sock in zip(self._servers, self._sockets, strict=True)
            ]
            await self._wait_started(tasks)
            self._ready.set()
            await asyncio.gather(*tasks)
        finally:
            if self.runtime.upstream is not None:
                await self.runtime.upstream.aclose()

    async def _wait_started(self, tasks: list[asyncio.Task[None]]) -> None:
        while not all(server.started for server in self._servers):
            if any(task.done() for task in tasks):
                for server in self._servers:
                    server.should_exit = True
                await asyncio.gather(*tasks, return_exceptions=True)
                raise RuntimeError("a participant's server stopped during start-up")
            await asyncio.sleep(0.005)

    def is_running(self) -> bool:
        """Whether the servers are still up."""
        return self._thread.is_alive() and not self._stopping

    def stop(self) -> None:
        """Stop taking connections, let the requests in flight finish (up to the drain
        time), then stop every server and wait for the loop to end (idempotent)."""
        self._stopping = True
        self._tell_servers(force=False)
        if self._thread.is_alive():
            self._thread.join(self.config.limits.drain_s + STOP_MARGIN_S)
        for sock in self._sockets:
            sock.close()

    def force_stop(self) -> None:
        """Stop now, without waiting for requests in flight (a second Ctrl-C)."""
        self._stopping = True
        self._tell_servers(force=True)

    def _tell_servers(self, *, force: bool) -> None:
        def request_exit() -> None:
            for server in self._servers:
                server.should_exit = True
                server.force_exit = server.force_exit or force

        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may close meanwhile
                loop.call_soon_threadsafe(request_exit)

    def __enter__(self) -> RunningNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _uvicorn_config(app: Any, protocol: type[H11Protocol], limits: ServerLimits) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,  # the app sends Date from the node's clock (see NodeDateHeader)
        # uvicorn takes whole seconds; a fraction rounds up, never down to "no wait".
        timeout_graceful_shutdown=math.ceil(limits.drain_s),
        # Longer than clients' idle expiry (httpx: 5 s) by default, so that a client
        # never sends a request on a connection the server is closing at that moment.
        timeout_keep_alive=math.ceil(limits.keep_alive_s),
        limit_concurrency=limits.limit_concurrency,
        backlog=limits.backlog,
    )


def start_node(config: NodeConfig | None = None) -> RunningNode:
    """Start a dev node; return once every participant's socket is listening."""
    config = config or NodeConfig()
    accounts = resolve_accounts(config.accounts)
    sockets = bind_sockets(config.host, config.port, config.participants, config.limits.backlog)
    stats = NodeStats()
    runtime = NodeRuntime(
        config, accounts, stats, _participants(config, sockets), _api_keys(config)
    )
    node = RunningNode(config, runtime, sockets)
    node._start()
    return node
