"""Streaming overhead: time to first token through gonka-cli against bare httpx2.

    python -m benchmarks.bench_stream

`gonka node` (in a process of its own) answers every request after a fixed latency,
then streams tokens at a fixed pace, so the first token arrives at a known time. The
same signed request (same body, a fresh signature each time) is sent by:

- bare httpx2: sign, POST with ``client.stream``, read SSE lines until the first line
  carrying text (the floor: no retries, no event parser, nothing shown);
- gonka-cli: `gonka_cli.client.Sender.send` with the terminal sink `gonka send-request`
  uses (writing into memory), timed when the first text has been written out.

Each starts with a new client (so a new connection) and is timed from the moment the
client is ready. Warm: both in this process, alternating. Cold: each as the first
request of a fresh process (`gonka send-request -o json` reports its own figure, timed
alike), where first-use costs (libraries imported on the first request) show.
Medians. Target: gonka-cli within 5 ms of bare httpx2.
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._bare import BODY, bare_httpx
from benchmarks._node import KEY, MODEL, Node, client_env, gonka, node_process
from benchmarks._util import machine, table
from gonka_cli.client import Sender
from gonka_cli.endpoints import Endpoint
from gonka_cli.keys import SigningKey
from gonka_cli.render import OutputMode, TerminalSink, make_consoles
from gonka_cli.settings import SendConfig, SignedAuth

LATENCY_MS = 50
TOKENS_PER_SECOND = 50
ROUNDS = 40
PROCESS_ROUNDS = 7
TARGET_MS = 5.0
COLD_BARE = (
    "import asyncio, sys\n"
    "from benchmarks._bare import bare_httpx\n"
    "print(asyncio.run(bare_httpx(sys.argv[1], sys.argv[2])))\n"
)


class _Timed(TerminalSink):
    """The terminal sink, noting when the first text has been written out."""

    def __init__(self, start: float) -> None:
        consoles = make_consoles(io.StringIO(), io.StringIO())
        super().__init__(consoles, OutputMode.text, hide_reasoning=False)
        self.start = start
        self.first: float | None = None

    def content(self, text: str) -> None:
        super().content(text)
        self._note()

    def reasoning(self, text: str) -> None:
        super().reasoning(text)
        self._note()

    def _note(self) -> None:
        if self.first is None and self.printed:
            self.first = time.perf_counter() - self.start


async def gonka_cli(node: Node) -> float:
    """Seconds from a ready Sender to the first text shown by the terminal sink."""
    key = SigningKey.from_secret(bytes.fromhex(KEY))
    config = SendConfig(SignedAuth(key), endpoints=(Endpoint(node.url + "/v1", node.address),))
    async with Sender(config) as sender:
        sink = _Timed(time.perf_counter())
        await sender.send(BODY, sink=sink, model=MODEL)
    if sink.first is None:
        raise RuntimeError("the stream carried no text")
    return sink.first


def cold_bare(node: Node) -> float:
    """`bare_httpx` as the first request of a fresh interpreter."""
    argv = [sys.executable, "-c", COLD_BARE, node.url, node.address]
    return float(subprocess.run(argv, capture_output=True, check=True).stdout)


def cold_gonka(node: Node, body: Path, env: dict[str, str]) -> float:
    """The first-token time a whole `gonka send-request` process reports (-o json)."""
    endpoint = f"{node.url};{node.address}"
    argv = gonka("send-request", "--endpoint", endpoint, "--file", str(body), "-o", "json")
    done = subprocess.run(argv, env=env, capture_output=True, check=True)
    return float(json.loads(done.stdout)["gonka"]["ttft_s"])


def main() -> None:
    """Alternate the two senders, warm ROUNDS times, then cold PROCESS_ROUNDS times."""
    pace = ("--latency-ms", str(LATENCY_MS), "--tokens-per-second", str(TOKENS_PER_SECOND))
    warm: dict[str, list[float]] = {"bare httpx2": [], "gonka-cli": []}
    cold: dict[str, list[float]] = {"bare httpx2": [], "gonka-cli": []}
    with tempfile.TemporaryDirectory() as tmp, node_process(*pace) as node:
        body = Path(tmp) / "body.json"
        body.write_bytes(BODY)
        env = client_env(str(Path(tmp) / "home"))
        for _ in range(3):  # imports, caches
            asyncio.run(bare_httpx(node.url, node.address))
            asyncio.run(gonka_cli(node))
        for _ in range(ROUNDS):
            warm["bare httpx2"].append(asyncio.run(bare_httpx(node.url, node.address)))
            warm["gonka-cli"].append(asyncio.run(gonka_cli(node)))
        for _ in range(PROCESS_ROUNDS):
            cold["bare httpx2"].append(cold_bare(node))
            cold["gonka-cli"].append(cold_gonka(node, body, env))
    _report(warm, cold)


def _report(warm: dict[str, list[float]], cold: dict[str, list[float]]) -> None:
    names = {
        ("warm", "bare httpx2"): "bare httpx2, warm",
        ("warm", "gonka-cli"): "gonka-cli `Sender` + terminal sink, warm",
        ("cold", "bare httpx2"): "bare httpx2, first request of a fresh process",
        ("cold", "gonka-cli"): "`gonka send-request` process, as it reports (-o json)",
    }
    overheads = {}
    rows = []
    for kind, runs in (("warm", warm), ("cold", cold)):
        medians = {name: statistics.median(values) * 1000 for name, values in runs.items()}
        base = medians["bare httpx2"]
        overheads[kind] = medians["gonka-cli"] - base
        rows += [[names[kind, name], f"{ms:.1f} ms", f"{ms - base:+.1f} ms"]
                 for name, ms in medians.items()]  # fmt: skip
    due = LATENCY_MS + 1000 / TOKENS_PER_SECOND
    print(f"Time to first token, node latency {LATENCY_MS} ms + {TOKENS_PER_SECOND} tokens/s "
          f"(first text due at {due:.0f} ms), medians of {ROUNDS} warm and {PROCESS_ROUNDS} "
          f"cold runs, {machine()}")  # fmt: skip
    print(table(["client", "time to first token", "vs bare httpx2 alike"], rows))
    for kind, overhead in overheads.items():
        verdict = "met" if overhead <= TARGET_MS else "MISSED"
        print(f"target gonka-cli within {TARGET_MS:.0f} ms of bare httpx2 ({kind}): "
              f"{verdict} ({overhead:+.1f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
