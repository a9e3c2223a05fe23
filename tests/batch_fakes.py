"""Fakes for the batch tests: an outcome like the single-request client's, and fake senders."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gonka_cli.batch.runner import SendFn, SendHooks

TRANSFER = "gonka1jwrv4q8hpxc354pr87pt0pkulaep67e9s4z0ym"


@dataclass
class FakeOutcome:
    """The fields the batch runner reads from the single-request client's `Outcome`."""

    response: dict[str, Any]
    status_code: int = 200
    endpoint: str = "http://127.0.0.1:9/v1"
    transfer_address: str = TRANSFER
    inference_id: str = "c2lnbmF0dXJl"
    request_id: str = "req-1"
    attempts: int = 1
    latency_s: float = 0.01
    ttft_s: float | None = None
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    )


def echo_outcome(body: bytes, **overrides: Any) -> FakeOutcome:
    """A completion whose content echoes the request's last message."""
    request = json.loads(body)
    content = request["messages"][-1]["content"]
    answer = {
        "id": "c2lnbmF0dXJl",
        "object": "chat.completion",
        "model": request.get("model", "m"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    return FakeOutcome(response=answer, **overrides)


class EchoSender:
    """An async sender that echoes, records calls and tracks how many run at once."""

    def __init__(
        self, *, delay_s: float = 0.0, fail: Callable[[bytes], BaseException | None] | None = None
    ) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.bodies: list[bytes] = []
        self.started_at: list[float] = []
        self.running = 0
        self.max_running = 0

    async def __call__(self, body: bytes) -> FakeOutcome:
        self.bodies.append(body)
        self.started_at.append(asyncio.get_running_loop().time())
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delay_s)
            error = self.fail(body) if self.fail else None
            if error is not None:
                raise error
            return echo_outcome(body)
        finally:
            self.running -= 1


def sender_factory(send: SendFn) -> Callable[[SendHooks], Any]:
    """An `open_sender` for run_batch that hands out `send`."""

    @asynccontextmanager
    async def open_sender(hooks: SendHooks) -> AsyncIterator[SendFn]:
        yield send

    return open_sender


def body(content: str, model: str = "Qwen/QwQ-32B") -> bytes:
    """A small chat request body."""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]}).encode()


def write_requests(directory: Path, count: int) -> list[str]:
    """`count` request files req-000.json... in `directory`; their custom_ids."""
    directory.mkdir(parents=True, exist_ok=True)
    names = [f"req-{i:03d}.json" for i in range(count)]
    for name in names:
        (directory / name).write_bytes(body(f"content of {name}"))
    return names


def content_of(record: dict[str, Any]) -> str:
    """The assistant content in one results line."""
    return str(record["response"]["body"]["choices"][0]["message"]["content"])


Waiter = Callable[[], Awaitable[None]]
