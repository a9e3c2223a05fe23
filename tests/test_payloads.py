"""Chat request bodies: validation before sending, and overrides that re-encode compactly."""

from __future__ import annotations

import json

import pytest

from gonka_cli.errors import PayloadError, UsageError
from gonka_cli.payloads import Overrides, RawInput, encode_compact, parse_set, prepare_chat_body

BODY = b'{\n  "model": "m",\n  "messages": [{"role": "user", "content": "Hi"}]\n}\n'


def raw(data: bytes, source: str = "body.json") -> RawInput:
    return RawInput(data, source)


def test_untouched_body_keeps_its_exact_bytes() -> None:
    """Without overrides the bytes to sign are the file's bytes, newline and spaces included."""
    body = prepare_chat_body(raw(BODY))
    assert body.data == BODY
    assert (body.model, body.stream, body.changed) == ("m", False, False)


def test_parse_error_names_file_line_and_column() -> None:
    """Broken JSON is reported as file:line:column with the parser's reason."""
    with pytest.raises(PayloadError) as caught:
        prepare_chat_body(raw(b'{\n  "model": "m",\n  "messages": [}\n'))
    assert caught.value.message.startswith("body.json:3:16: not valid JSON: Expecting value")
    assert caught.value.exit_code == 2


def test_non_utf8_is_a_clear_error() -> None:
    """Bytes that are not UTF-8 are refused with the offending byte named."""
    with pytest.raises(PayloadError, match=r"not UTF-8 text \(byte 0xff at offset 12\)"):
        prepare_chat_body(raw(b'{"model": "m\xff"}'))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "must be a JSON object, not an array"),
        (b'{"messages": [{"role": "user"}]}', "has no model"),
        (b'{"model": "m"}', 'needs a non-empty "messages" list'),
        (b'{"model": "m", "messages": []}', 'needs a non-empty "messages" list'),
        (b'{"model": "m", "messages": ["hi"]}', "messages[0] must be an object, not a string"),
    ],
)
def test_bodies_that_may_not_be_sent(data: bytes, message: str) -> None:
    """Each malformed body is refused with a message saying what is missing."""
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        prepare_chat_body(raw(data))


def test_overrides_reencode_compactly() -> None:
    """--model, --stream, --max-tokens and --set produce compact JSON, and those bytes are kept."""
    overrides = Overrides(
        model="other", stream=True, max_tokens=9, sets=("temperature=0.5", 'a.b="x"')
    )
    body = prepare_chat_body(raw(BODY), overrides)
    expected = {
        "model": "other",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "max_tokens": 9,
        "temperature": 0.5,
        "a": {"b": "x"},
    }
    assert body.data == encode_compact(expected)
    assert b" " not in body.data.replace(b'"Hi"', b"")
    assert (body.model, body.stream, body.changed) == ("other", True, True)


def test_default_model_fills_only_a_missing_model() -> None:
    """GONKA_MODEL-style defaults never replace the body's own model."""
    missing = prepare_chat_body(
        raw(b'{"messages": [{"role": "user", "content": "x"}]}'), Overrides(default_model="d")
    )
    present = prepare_chat_body(raw(BODY), Overrides(default_model="d"))
    assert json.loads(missing.data)["model"] == "d"
    assert present.data == BODY


def test_override_that_changes_nothing_keeps_bytes() -> None:
    """Setting a value the body already has does not re-encode it."""
    assert prepare_chat_body(raw(BODY), Overrides(model="m")).data == BODY


def test_non_ascii_survives_reencoding() -> None:
    """Re-encoded bodies keep UTF-8 text as is (no \\u escapes)."""
    data = '{"model": "m", "messages": [{"role": "user", "content": "café"}]}'.encode()
    body = prepare_chat_body(raw(data), Overrides(max_tokens=5))
    assert "café".encode() in body.data


@pytest.mark.parametrize("bad", ["novalue", "=1", "k=not json"])
def test_bad_set_assignments(bad: str) -> None:
    """--set needs KEY=JSON."""
    with pytest.raises(UsageError):
        parse_set(bad)
