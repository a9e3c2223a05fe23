"""Streamed answers: SSE event data -> chunks -> one assembled ``chat.completion`` (pure).

The network side (reading events with httpx2's SSE parser) lives in `gonka_cli.client`; this module
only sees the ``data`` text of each event, so it is tested with plain strings.
docs/protocol.md section 6: chunks carry ``choices[].delta`` (``content``,
``reasoning_content`` or ``reasoning``, ``tool_calls``), a last chunk with empty
``choices`` carries ``usage``, and ``data: [DONE]`` ends the stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gonka_cli.jsontext import loads

DONE = "[DONE]"
REASONING_KEYS = ("reasoning_content", "reasoning")


class StreamError(Exception):
    """The stream carried an error event, or a chunk that is not JSON."""


@dataclass(frozen=True)
class Delta:
    """The text one chunk adds: answer content and reasoning."""

    content: str = ""
    reasoning: str = ""

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning)


@dataclass
class _Choice:
    index: int
    role: str = "assistant"
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": self.role,
            "content": "".join(self.content) if self.content or not self.tool_calls else None,
        }
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return message


class CompletionAssembler:
    """Folds the chunks of one stream into the ``chat.completion`` a non-streamed call returns."""

    def __init__(self) -> None:
        self.done = False
        self.chunks = 0
        self.usage: dict[str, Any] | None = None
        self._head: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}

    def feed(self, data: str, event: str = "") -> Delta:
        """Take one SSE event's data; return the text it adds (raise `StreamError` on errors)."""
        if data.strip() == DONE:
            self.done = True
            return Delta()
        try:
            chunk = loads(data)
        except json.JSONDecodeError:
            raise StreamError(f"the stream sent data that is not JSON: {data[:200]!r}") from None
        if event == "error" or (isinstance(chunk, dict) and "error" in chunk):
            raise StreamError(error_text(chunk))
        if not isinstance(chunk, dict):
            raise StreamError(f"the stream sent a chunk that is not an object: {data[:200]!r}")
        return self.feed_chunk(chunk)

    def feed_chunk(self, chunk: Mapping[str, Any]) -> Delta:
        """Merge one parsed chunk."""
        self.chunks += 1
        for key in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(key) is not None:
                self._head.setdefault(key, chunk[key])
        if isinstance(chunk.get("usage"), dict):
            self.usage = dict(chunk["usage"])
        content, reasoning = [], []
        for raw in _list(chunk.get("choices")):
            if isinstance(raw, dict):
                delta = self._merge_choice(raw)
                content.append(delta.content)
                reasoning.append(delta.reasoning)
        return Delta("".join(content), "".join(reasoning))

    def _merge_choice(self, raw: Mapping[str, Any]) -> Delta:
        index = _index(raw.get("index"), 0)
        choice = self._choices.setdefault(index, _Choice(index))
        delta = raw.get("delta") or {}
        if raw.get("finish_reason") is not None:
            choice.finish_reason = raw["finish_reason"]
        if not isinstance(delta, dict):
            return Delta()
        if delta.get("role"):
            choice.role = str(delta["role"])
        content = delta.get("content") or ""
        reasoning = next((delta[k] for k in REASONING_KEYS if delta.get(k)), "")
        if content:
            choice.content.append(str(content))
        if reasoning:
            choice.reasoning.append(str(reasoning))
        for call in _list(delta.get("tool_calls")):
            if isinstance(call, dict):
                _merge_tool_call(choice.tool_calls, call)
        return Delta(str(content), str(reasoning))

    def completion(self) -> dict[str, Any]:
        """Everything so far, as one ``chat.completion`` object."""
        result: dict[str, Any] = {
            "id": self._head.get("id", ""),
            "object": "chat.completion",
            "created": self._head.get("created", 0),
            "model": self._head.get("model", ""),
            "choices": [
                {
                    "index": choice.index,
                    "message": choice.message(),
                    "logprobs": None,
                    "finish_reason": choice.finish_reason,
                }
                for _, choice in sorted(self._choices.items())
            ],
        }
        if "system_fingerprint" in self._head:
            result["system_fingerprint"] = self._head["system_fingerprint"]
        if self.usage is not None:
            result["usage"] = self.usage
        return result


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: Mapping[str, Any]) -> None:
    """Tool calls stream in pieces: ids and names once, arguments in fragments."""
    index = _index(delta.get("index"), len(calls))
    call = calls.setdefault(index, {"id": "", "type": "function", "function": {}})
    for key in ("id", "type"):
        if delta.get(key):
            call[key] = delta[key]
    function = delta.get("function")
    if not isinstance(function, dict):
        function = {}
    target = call["function"]
    if function.get("name"):
        target["name"] = target.get("name", "") + str(function["name"])
    target["arguments"] = target.get("arguments", "") + str(function.get("arguments") or "")


def _list(value: object) -> list[Any]:
    """A JSON array as a list; anything else (a server's mistake) as no items."""
    return value if isinstance(value, list) else []


def _index(value: object, default: int) -> int:
    """A choice's or tool call's ``index``: an integer, else `default`."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def error_text(payload: object) -> str:
    """The message inside an error payload of either shape, TA's or OpenAI's."""
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or error)
        if isinstance(payload.get("message"), str) and payload["message"]:
            return f"{error}: {payload['message']}" if error else str(payload["message"])
        return str(error)
    return str(payload)


def message_parts(completion: Mapping[str, Any]) -> Delta:
    """The answer text and reasoning of a non-streamed completion (choices joined)."""
    content, reasoning = [], []
    for choice in _list(completion.get("choices")):
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            content.append(str(message.get("content") or ""))
            reasoning.append(str(next((message[k] for k in REASONING_KEYS if message.get(k)), "")))
    return Delta("\n".join(c for c in content if c), "\n".join(r for r in reasoning if r))
