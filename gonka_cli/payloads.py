"""Request bodies: read exactly as given, from a file, standard input or text; checked chat
requests, and the command-line overrides that re-encode them."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gonka_cli.errors import PayloadError, UsageError
from gonka_cli.jsontext import loads

_SURROGATE = r"[\ud800-\udfff]"  # compiled on first use (re's cache), not at start-up
# The transfer agents' limit on a request body (they answer 413 above it): a
# larger input is refused from its size, before a byte of it is read.
MAX_INPUT_BYTES = 10 * 1024 * 1024
# JSON text may not begin with a byte order mark (RFC 8259 section 8.1), but editors on
# Windows write one; a chat body drops it before parsing, and the bytes sent (and signed)
# are those after it.
UTF8_BOM = b"\xef\xbb\xbf"
PROMPT_SOURCE = "<prompt>"


@dataclass(frozen=True)
class RawInput:
    """The exact bytes of one input and a name for it in messages ("<stdin>", a path)."""

    data: bytes
    source: str


def read_input(text: str | None, file: str | None, *, what: str = "request body") -> RawInput:
    """The bytes of TEXT or of ``--file PATH|-``: exactly one of them, not empty."""
    if text is not None and file is not None:
        raise UsageError(f"give the {what} either as TEXT or with --file, not both")
    if text is not None:
        data, source = _text_bytes(text), "<text>"
    elif file == "-":
        data, source = _read_stdin(), "<stdin>"
    elif file is not None:
        data, source = read_file(Path(file)), file
    else:
        raise UsageError(f"no {what}: pass TEXT, --file PATH, or --file - for standard input")
    if not data:
        raise UsageError(f"{source}: the {what} is empty")
    return RawInput(data, source)


def _text_bytes(text: str) -> bytes:
    """The bytes of a TEXT argument: argv bytes that were not UTF-8 come back as they were
    (Python holds them as surrogate escapes), so the JSON check can name the bad byte."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise UsageError("<text>: the request body is not valid text") from None


def read_file(path: Path) -> bytes:
    """A file's bytes, with OS errors turned into one clear line."""
    try:
        return read_bounded(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def read_bounded(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A file's bytes, refused (`UsageError`) from its size before reading when over `limit`
    (a pipe or device, whose size is unknown, is read up to the limit and no further)."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise _too_large(str(path), size)
        # read(n) sets n bytes aside before it reads: ask for what the file holds (and one
        # byte more, to see one that grew), never for the whole limit at once
        parts = [handle.read(size + 1)]
        total = len(parts[0])
        while total <= limit and parts[-1]:
            parts.append(handle.read(min(1 << 16, limit + 1 - total)))
            total += len(parts[-1])
    if total > limit:
        raise _too_large(str(path), None)
    return b"".join(parts)


def _too_large(source: str, size: int | None) -> UsageError:
    size_text = f" ({size:,} bytes)" if size is not None else ""
    return UsageError(
        f"{source}: over 10 MiB{size_text}, the most a transfer agent takes; not read",
    )


def _read_stdin() -> bytes:
    try:
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"<stdin>: cannot read standard input ({exc})") from None
    if len(data) > MAX_INPUT_BYTES:
        raise _too_large("<stdin>", None)
    return data


# --- Chat request bodies: validation before anything is sent, and overrides -------------


@dataclass(frozen=True)
class Overrides:
    """Changes asked for on the command line; any of them re-encodes the body compactly.

    ``model`` replaces the body's model; ``default_model`` (from ``GONKA_MODEL`` or a
    profile, as ``default_model_origin`` says) fills it in only when the body has none.
    """

    model: str | None = None
    default_model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    sets: tuple[str, ...] = ()
    default_model_origin: str = "GONKA_MODEL"


@dataclass(frozen=True)
class ChatBody:
    """A checked chat request: the exact bytes to sign and send, and what they say."""

    data: bytes
    source: str
    model: str
    stream: bool
    changed: bool

    @property
    def parsed(self) -> dict[str, Any]:
        """The body as a JSON object (parsed again: the bytes are the truth)."""
        value: dict[str, Any] = json.loads(self.data)
        return value


def prepare_chat_body(raw: RawInput, overrides: Overrides = Overrides()) -> ChatBody:
    """Check a chat request body and apply overrides; raise `PayloadError` if it can't be sent.

    The bytes are untouched unless an override changes the body, in which case the
    whole object is re-encoded compactly (those exact bytes are then signed and sent).
    """
    if raw.data.startswith(UTF8_BOM):
        raw = RawInput(raw.data[len(UTF8_BOM) :], raw.source)
    parsed = parse_json_object(raw)
    changed = _apply(parsed, overrides, raw.source)
    data = encode_compact(parsed) if changed else raw.data
    model = parsed.get("model")
    if not isinstance(model, str) or not model.strip():
        raise PayloadError(
            f"{raw.source}: the request has no model",
            hint='add "model": "..." to the body, pass --model, or set GONKA_MODEL',
        )
    _check_messages(parsed.get("messages"), raw.source)
    return ChatBody(data, raw.source, model, parsed.get("stream") is True, changed)


def parse_json_object(raw: RawInput) -> dict[str, Any]:
    """The input as a JSON object, or a `PayloadError` naming file, line and column."""
    try:
        text = raw.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            f"{raw.source}: not UTF-8 text "
            f"(byte 0x{raw.data[exc.start]:02x} at offset {exc.start})",
            hint="JSON request bodies must be UTF-8; re-save the file as UTF-8",
        ) from None
    try:
        value = loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"{raw.source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise PayloadError(
            f"{raw.source}: the request must be a JSON object, not {_json_kind(value)}"
        )
    return value


def encode_compact(value: object) -> bytes:
    """Compact JSON (no spaces, UTF-8 kept as is): the re-encoding of an overridden body.

    A body whose JSON escapes hold a lone surrogate (``"\\ud800"``: valid JSON, not valid
    Unicode) cannot be written as UTF-8; it is written with every non-ASCII character
    escaped instead, which says the same thing.
    """
    try:
        return _compact_text(value).encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def _apply(body: dict[str, Any], overrides: Overrides, source: str) -> bool:
    """Apply overrides in place; True when the body changed."""
    before = _compact_text(body)
    for name, given in (
        ("--model", overrides.model),
        (overrides.default_model_origin, overrides.default_model),
    ):
        _refuse_undecodable(name, given)
        _refuse_secret_like(name, given)
    if overrides.model is not None:
        body["model"] = overrides.model
    elif overrides.default_model and not body.get("model"):
        body["model"] = overrides.default_model
    if overrides.stream is not None:
        body["stream"] = overrides.stream
    if overrides.max_tokens is not None:
        body["max_tokens"] = overrides.max_tokens
    for assignment in overrides.sets:
        key, value = parse_set(assignment)
        if key == "model" and isinstance(value, str):
            _refuse_secret_like("--set model", value)
        _assign(body, key, value, source)
    return _compact_text(body) != before


def _refuse_undecodable(name: str, value: str | None) -> None:
    """Command-line and environment text that was not UTF-8 (Python keeps such bytes as
    lone surrogates, which no request body can carry)."""
    if value is not None and re.search(_SURROGATE, value):
        raise UsageError(f"{name}: the value is not valid UTF-8 text")


def _refuse_secret_like(name: str, value: str | None) -> None:
    """A model name that looks like a private key or a mnemonic is a secret in the wrong
    place: it is refused (not echoed) before anything is sent."""
    from gonka_cli.redact import looks_secret

    if value is not None and looks_secret(value):
        raise UsageError(
            f"{name}: that model name looks like a private key or a mnemonic; nothing was sent",
            hint="pass the model's name, for example Qwen/QwQ-32B",
        )


def _compact_text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_set(assignment: str) -> tuple[str, Any]:
    """``KEY=JSON`` (KEY may be dotted, ``a.b``) into the key and the decoded value."""
    _refuse_undecodable("--set", assignment)
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--set {assignment!r}: expected KEY=JSON, for example temperature=0.2")
    try:
        return key.strip(), loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--set {key}: the value is not JSON ({exc.msg} at column {exc.colno})",
            hint=f"""quote strings as JSON, for example --set '{key}="text"'""",
        ) from None


def _assign(body: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    *parents, leaf = dotted.split(".")
    target = body
    for part in parents:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"--set {dotted}: {source} has a non-object at {part!r}")
        target = child
    target[leaf] = value


def _check_messages(messages: object, source: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise PayloadError(
            f'{source}: the request needs a non-empty "messages" list',
            hint='for example "messages": [{"role": "user", "content": "Hello"}]',
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise PayloadError(
                f"{source}: messages[{index}] must be an object, not {_json_kind(message)}"
            )


def _json_kind(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# --- A prompt instead of a body ----------------------------------------------------------


def is_json_object_text(text: str) -> bool:
    """Whether TEXT is meant as a JSON request body (it starts with ``{``), as `inferenced`
    takes it; anything else given as TEXT is a prompt."""
    return text.lstrip(" \t\r\n\ufeff").startswith("{")


def prompt_text(text: str) -> str:
    """The prompt of ``--prompt TEXT`` or ``--prompt -`` (standard input, one trailing
    newline dropped), checked to be text a request can carry."""
    if text == "-":
        data = _read_stdin().removeprefix(UTF8_BOM)
        try:
            text = data.decode("utf-8").removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"<stdin>: the prompt is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                f"at offset {exc.start})"
            ) from None
    _refuse_undecodable("the prompt", text)
    if not text.strip():
        raise UsageError("the prompt is empty")
    return text


def prompt_body(text: str, model: str, system: str | None = None) -> RawInput:
    """``{"model": M, "messages": [system?, user]}`` for a prompt, compactly encoded."""
    _refuse_undecodable("--system", system)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return RawInput(encode_compact({"model": model, "messages": messages}), PROMPT_SOURCE)
