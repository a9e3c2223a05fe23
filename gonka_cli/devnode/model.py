"""The built-in deterministic `echo` model: answers, completions and stream chunks (pure).

The answer depends only on the prompt and the model name: "Echo: <last user message>",
preceded for reasoning-style models (QwQ, DeepSeek, R1...) by a short `reasoning_content`.
A "token" is a run of non-blank characters with the blanks before it, so joining the
streamed deltas gives back the whole text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\s*\S+")
_REASONING_MARKS = ("qwq", "deepseek", "reason", "think")


def is_reasoning_model(model: str) -> bool:
    """Whether a model answers with `reasoning_content` (QwQ, DeepSeek, R1 and the like)."""
    name = model.lower()
    parts = re.split(r"[/_\s.:-]+", name)
    return any(mark in name for mark in _REASONING_MARKS) or "r1" in parts


def tokens(text: str) -> list[str]:
    """Split text into tokens that concatenate back to it (less trailing blanks)."""
    return _TOKEN.findall(text)


def content_text(content: Any) -> str:
    """The text of a message's `content`: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, dict)]
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def prompt_of(messages: Sequence[Any]) -> str:
    """The question being answered: the last user message, else the last message."""
    dicts = [message for message in messages if isinstance(message, dict)]
    users = [message for message in dicts if message.get("role") == "user"]
    chosen = users[-1] if users else (dicts[-1] if dicts else {})
    return content_text(chosen.get("content")).strip()


def prompt_chars(messages: Sequence[Any]) -> int:
    """Characters of every message's text, as the network prices a prompt."""
    return sum(
        len(content_text(message.get("content")))
        for message in messages
        if isinstance(message, dict)
    )


@dataclass(frozen=True)
class Answer:
    """What the model says to one request, already cut to `max_tokens`."""

    reasoning: tuple[str, ...]
    content: tuple[str, ...]
    prompt_tokens: int
    finish_reason: str

    @property
    def completion_tokens(self) -> int:
        """Tokens generated, reasoning included."""
        return len(self.reasoning) + len(self.content)

    def usage(self) -> dict[str, Any]:
        """The OpenAI `usage` object."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": len(self.reasoning)}
        return usage


def token_limit(chat: Mapping[str, Any]) -> int | None:
    """`max_completion_tokens` or `max_tokens` when it is a positive integer."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = chat.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def echo_answer(chat: Mapping[str, Any], model: str) -> Answer:
    """The deterministic answer of the echo model to a chat request."""
    messages = chat.get("messages") or []
    prompt = prompt_of(messages)
    content = tokens(f"Echo: {prompt}")
    reasoning: list[str] = []
    if is_reasoning_model(model):
        reasoning = tokens(f'The user asked: "{prompt}". The echo model repeats the question.')
    limit = token_limit(chat)
    generated = reasoning + content
    finish = "stop"
    if limit is not None and len(generated) > limit:
        finish = "length"
        content = content[: max(0, limit - len(reasoning))]
        reasoning = reasoning[:limit]
    prompt_tokens = sum(
        len(tokens(content_text(m.get("content")))) for m in messages if isinstance(m, dict)
    )
    return Answer(tuple(reasoning), tuple(content), prompt_tokens, finish)


def completion(answer: Answer, completion_id: str, model: str, created: int) -> dict[str, Any]:
    """The non-streaming OpenAI chat completion."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(answer.content)}
    if answer.reasoning:
        message["reasoning_content"] = "".join(answer.reasoning)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": answer.usage(),
    }


def chunks(answer: Answer, completion_id: str, model: str, created: int) -> list[dict[str, Any]]:
    """Every streamed chunk: role, reasoning and content deltas, finish, then usage."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"reasoning_content": token}) for token in answer.reasoning]
    out += [chunk({"content": token}) for token in answer.content]
    out.append(chunk({}, answer.finish_reason))
    usage_chunk = chunk({})
    usage_chunk["choices"] = []
    usage_chunk["usage"] = answer.usage()
    out.append(usage_chunk)
    return out


def sse_event(data: Mapping[str, Any] | str) -> bytes:
    """One server-sent event: ``data: ...`` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


DONE_EVENT = sse_event("[DONE]")


def stream_events(answer: Answer, completion_id: str, model: str, created: int) -> list[bytes]:
    """The whole event stream of one answer, ending with ``data: [DONE]``."""
    return [sse_event(c) for c in chunks(answer, completion_id, model, created)] + [DONE_EVENT]
