"""SSE chunks folded into one chat.completion, as a non-streamed call would return it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gonka_cli.stream import CompletionAssembler, Delta, StreamError, error_text, message_parts


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    head = {"id": "sig", "object": "chat.completion.chunk", "created": 7, "model": "m"}
    return json.dumps({**head, "choices": choices, **extra})


def test_assembles_content_reasoning_usage_and_finish() -> None:
    """Deltas concatenate; reasoning_content and reasoning both count; usage comes last."""
    assembler = CompletionAssembler()
    deltas = [
        assembler.feed(chunk({"role": "assistant", "content": ""})),
        assembler.feed(chunk({"reasoning_content": "think "})),
        assembler.feed(chunk({"reasoning": "more"})),
        assembler.feed(chunk({"content": "Hel"})),
        assembler.feed(chunk({"content": "lo"}, finish="stop")),
        assembler.feed(chunk(None, usage={"prompt_tokens": 1, "completion_tokens": 2})),
        assembler.feed("[DONE]"),
    ]
    assert [d for d in deltas if d] == [
        Delta(reasoning="think "),
        Delta(reasoning="more"),
        Delta(content="Hel"),
        Delta(content="lo"),
    ]
    assert assembler.done
    assert assembler.completion() == {
        "id": "sig",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "reasoning_content": "think more",
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }


def test_tool_calls_merge_by_index() -> None:
    """Tool-call ids and names arrive once, arguments in fragments; content stays null."""
    assembler = CompletionAssembler()
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    assembler.feed(chunk({"tool_calls": [call]}))
    assembler.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}))
    assembler.feed(
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "tool_calls")
    )
    message = assembler.completion()["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]


@pytest.mark.parametrize(
    ("data", "event", "message"),
    [
        ('{"error": "Inference node response with an error"}', "", "Inference node response"),
        ('{"error": {"message": "upstream died", "type": "server_error"}}', "", "upstream died"),
        ('{"message": "bad"}', "error", "bad"),
        ("not json", "", "not JSON"),
    ],
)
def test_error_events_raise(data: str, event: str, message: str) -> None:
    """An error payload of either shape (or an `error` event) mid-stream is a StreamError."""
    with pytest.raises(StreamError, match=message):
        CompletionAssembler().feed(data, event)


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"error": "messages is required"}, "messages is required"),
        ({"error": {"message": "Invalid API key", "code": 401}}, "Invalid API key"),
        ({"error": "deprecated", "message": "use devshard"}, "deprecated: use devshard"),
        ({"status": 308, "message": "moved"}, "moved"),
    ],
)
def test_error_text_of_every_shape(payload: dict[str, Any], text: str) -> None:
    """TA, OpenAI, retired-node and 308 bodies all yield their message."""
    assert error_text(payload) == text


def test_message_parts_of_a_plain_completion() -> None:
    """A non-streamed completion yields its content and reasoning (either key)."""
    completion = {"choices": [{"message": {"content": "A", "reasoning": "R"}}]}
    assert message_parts(completion) == Delta("A", "R")
