"""One client of `bench_clients`, run in a fresh interpreter of its own.

    python -m benchmarks._clients KIND URL ADDRESS DIR CONCURRENCY WARMUP_DIR

KIND is ``gonka`` (``gonka send-request --dir DIR -j C``, through the command line's own
entry point), ``httpx2`` or ``aiohttp`` (a bare async loop doing the same signed
requests: read the file, sign it, POST it, parse the JSON answer) or ``openai``
(``AsyncOpenAI``, Bearer, against a gateway-mode node; ADDRESS is then the API key).

Every client first runs once over WARMUP_DIR (imports, caches, the first connections),
then over DIR; it prints one JSON line: the CPU seconds (user + system, this process,
all threads) and wall seconds of the second run alone, so interpreter start-up and
imports are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from benchmarks._node import KEY
from gonka_cli.keys import SigningKey
from gonka_cli.signing import CLOCK, sign, signature_headers

Run = Callable[[str, str, Path, int], None]


def _files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


async def _workers(concurrency: int, files: list[Path], one: Callable[[Path], Awaitable[None]]):
    """`concurrency` tasks taking files from one shared iterator until none are left."""
    pending: Iterator[Path] = iter(files)

    async def worker() -> None:
        for path in pending:
            await one(path)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _signed(key: SigningKey, body: bytes, address: str) -> dict[str, str]:
    now = CLOCK.now_ns()
    signature = sign(key, body, now, address)
    return {"Content-Type": "application/json", **signature_headers(signature, key.address, now)}


async def bare_httpx2(url: str, address: str, directory: Path, concurrency: int) -> None:
    """The floor: httpx2's async client, signing each request, default pool limits."""
    import httpx2

    key = SigningKey.from_secret(bytes.fromhex(KEY))
    chat = url + "/v1/chat/completions"
    async with httpx2.AsyncClient() as client:

        async def one(path: Path) -> None:
            body = path.read_bytes()
            response = await client.post(chat, content=body, headers=_signed(key, body, address))
            response.raise_for_status()
            response.json()

        await _workers(concurrency, _files(directory), one)


async def bare_aiohttp(url: str, address: str, directory: Path, concurrency: int) -> None:
    """The same loop on aiohttp."""
    import aiohttp

    key = SigningKey.from_secret(bytes.fromhex(KEY))
    chat = url + "/v1/chat/completions"
    async with aiohttp.ClientSession() as session:

        async def one(path: Path) -> None:
            body = path.read_bytes()
            headers = _signed(key, body, address)
            async with session.post(chat, data=body, headers=headers) as response:
                response.raise_for_status()
                await response.json()

        await _workers(concurrency, _files(directory), one)


async def openai_sdk(url: str, api_key: str, directory: Path, concurrency: int) -> None:
    """OpenAI's async SDK (on httpx2), Bearer, against a gateway-mode node."""
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0) as client:

        async def one(path: Path) -> None:
            request = json.loads(path.read_bytes())
            await client.chat.completions.create(**request)

        await _workers(concurrency, _files(directory), one)


def gonka_batch(url: str, address: str, directory: Path, concurrency: int) -> None:
    """`gonka send-request --dir DIR -j C -q --output-file ...` through the CLI's entry point."""
    from gonka_cli.cli import app

    out = directory.parent / f"results-{directory.name}.jsonl"
    out.unlink(missing_ok=True)
    args = [
        "send-request", "--node-address", url, "--transfer-address", address,
        "--dir", str(directory), "--output-file", str(out), "-j", str(concurrency), "-q",
    ]  # fmt: skip
    summary = io.StringIO()
    with contextlib.redirect_stderr(summary):
        code = app(args, prog_name="gonka", standalone_mode=False)
    if code:
        raise RuntimeError(f"the batch exited {code}:\n{summary.getvalue()}")


def _sync(loop: Callable[[str, str, Path, int], Awaitable[None]]) -> Run:
    def run(url: str, address: str, directory: Path, concurrency: int) -> None:
        asyncio.run(loop(url, address, directory, concurrency))

    return run


RUNS: dict[str, Run] = {
    "gonka": gonka_batch,
    "httpx2": _sync(bare_httpx2),
    "aiohttp": _sync(bare_aiohttp),
    "openai": _sync(openai_sdk),
}


def main() -> None:
    """Warm up, then measure one run; print {"cpu_s", "wall_s"}."""
    kind, url, address, directory, concurrency, warmup = sys.argv[1:7]
    run = RUNS[kind]
    run(url, address, Path(warmup), int(concurrency))
    cpu, wall = time.process_time(), time.perf_counter()
    run(url, address, Path(directory), int(concurrency))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"cpu_s": cpu, "wall_s": wall}))


if __name__ == "__main__":
    main()
