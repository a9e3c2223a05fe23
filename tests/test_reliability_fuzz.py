"""Fuzzing: the parsers of everything that comes from outside raise only our own errors.

Arbitrary bytes and text (and JSON shaped like what each parser expects, with values of
the wrong kinds) go into SSE assembly, payload loading, key, mnemonic, path, address and
signature parsing, JSONL batch lines, URLs, settings, key files and the network's answers
(discovery, identity times, error bodies, headers). Each may raise only a
`gonka_cli.errors.GonkaError` (or the documented `SignatureProblem` and `StreamError`),
never a `TypeError`, `RecursionError` or `UnicodeEncodeError` that would reach the user as
a traceback; where a parser succeeds, its result is checked to be usable.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import bech32
import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gonka_cli.batch.inputs import iter_jsonl, load, parse_jsonl_line, parse_shard
from gonka_cli.endpoints import (
    normalize_base_url,
    parse_allowlist,
    parse_endpoint,
    parse_participants,
    parse_time_ns,
    usable_endpoints,
)
from gonka_cli.errors import GonkaError
from gonka_cli.keys import (
    SigningKey,
    hd,
    keystore,
    parse_address,
    parse_private_key_hex,
    parse_public_key,
)
from gonka_cli.payloads import Overrides, RawInput, parse_set, prepare_chat_body, read_input
from gonka_cli.settings import SETTINGS, Profile, resolve, retry_from, timeouts_from
from gonka_cli.signing import SignatureProblem, decode_signature
from gonka_cli.stream import CompletionAssembler, StreamError, error_text, message_parts
from gonka_cli.transport import error_message, json_body, retry_after, server_time_ns
from gonka_cli.verdicts import judge

T = TypeVar("T")
OURS = (GonkaError, SignatureProblem, StreamError)
fuzz = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
# A small value of any JSON kind: what a server or a file puts where something else belongs.
small = leaves | st.lists(leaves, max_size=3) | st.dictionaries(st.text(max_size=4), leaves)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def shaped(keys: tuple[str, ...], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Objects with some of the `keys` a parser looks for, holding `values`."""
    return st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))


# SSE chunks: choices, deltas and tool calls with the right keys and values of any kind.
tool_calls = shaped(
    ("index", "id", "type", "function"), small | shaped(("name", "arguments"), small)
)
deltas = shaped(
    ("role", "content", "reasoning", "reasoning_content", "tool_calls"),
    small | st.lists(tool_calls | small, max_size=2),
)
choices = shaped(("index", "delta", "finish_reason", "message"), small | deltas)
chunks = shaped(
    ("id", "created", "model", "choices", "usage", "error", "message"),
    small | st.lists(choices | small, max_size=3),
)
# Chat request bodies, Batch lines and key files, the same way.
messages = st.lists(shaped(("role", "content"), small) | small, max_size=3)
bodies = shaped(("model", "messages", "stream", "max_tokens"), small | messages | st.just("echo"))
batch_lines = shaped(
    ("custom_id", "method", "url", "body"),
    small | bodies | st.sampled_from(["POST", "GET", "/v1/chat/completions", "/chat/completions"]),
)
key_files = shaped(
    ("format", "version", "address", "pubkey", "crypto", "hd_path", "created"),
    small
    | st.sampled_from(["gonka-keystore", "gonka1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnrql8a"])
    | shaped(
        ("kdf", "cipher", "kdfparams", "nonce", "ciphertext", "plaintext"),
        small | shaped(("n", "r", "p", "salt", "private_key", "mnemonic"), small),
    ),
)
# Discovery documents.
participant = shaped(("index", "inference_url", "models", "weight"), small)
documents = shaped(
    ("active_participants", "excluded_participants", "params"),
    small
    | shaped(("participants",), small | st.lists(participant | small, max_size=3))
    | st.lists(shaped(("address", "reason"), small) | small, max_size=3)
    | shaped(
        ("transfer_agent_access_params",), small | shaped(("allowed_transfer_addresses",), small)
    ),
)
any_bytes = st.binary(max_size=300) | st.text(max_size=200).map(str.encode)
texts = st.text(max_size=200)
# What argv and the environment hold: bytes that were not UTF-8 come as lone surrogates.
argv_texts = texts | st.text(st.characters(categories=["Cs", "L", "N", "P"]), max_size=20)


def error_of(call: Callable[[], object]) -> GonkaError | None:
    """The GonkaError `call` raised, or None when it returned."""
    try:
        call()
    except GonkaError as exc:
        return exc
    return None


def ours(call: Callable[[], T]) -> T | None:
    """The result of `call`, or None when it raised one of our own errors (and only those)."""
    try:
        return call()
    except OURS:
        return None


# --- SSE assembly ------------------------------------------------------------------------


@fuzz
@given(st.lists(texts | chunks.map(json.dumps), max_size=6), st.sampled_from(["", "error"]))
def test_sse_assembly_takes_any_event_data(events: list[str], kind: str) -> None:
    """Any event data (text, or JSON of any shape): each event adds text or raises
    StreamError; the completion so far is always a JSON-serialisable chat.completion."""
    assembler = CompletionAssembler()
    for data in events:
        delta = ours(partial(assembler.feed, data, kind))
        assert delta is None or isinstance(delta.content + delta.reasoning, str)
    completion = assembler.completion()
    assert completion["object"] == "chat.completion"
    json.dumps(completion)
    assert isinstance(message_parts(completion).content, str)


@fuzz
@given(chunks | json_values)
def test_error_and_message_text_of_any_json(value: Any) -> None:
    """error_text and message_parts read any JSON a server may send without failing."""
    assert isinstance(error_text(value), str)
    if isinstance(value, dict):
        assert isinstance(message_parts(value).reasoning, str)


@fuzz
@given(st.lists(st.text(max_size=20), max_size=8), st.lists(st.text(max_size=10), max_size=3))
def test_streamed_pieces_assemble_to_their_concatenation(
    pieces: list[str], thoughts: list[str]
) -> None:
    """Content and reasoning split over any chunks come back whole, in order."""
    assembler = CompletionAssembler()
    for thought in thoughts:
        assembler.feed(json.dumps({"choices": [{"index": 0, "delta": {"reasoning": thought}}]}))
    for piece in pieces:
        delta = assembler.feed(json.dumps({"choices": [{"delta": {"content": piece}}]}))
        assert delta.content == piece
    assembler.feed("[DONE]")
    message = assembler.completion()["choices"][0]["message"] if pieces or thoughts else None
    if message is not None:
        assert message["content"] == "".join(pieces)
        assert message.get("reasoning_content", "") == "".join(t for t in thoughts if t)
    assert assembler.done


# --- request bodies and overrides -------------------------------------------------------------


@fuzz
@given(any_bytes | (bodies | json_values).map(lambda value: json.dumps(value).encode()))
def test_payload_loading_takes_any_bytes(data: bytes) -> None:
    """Any input bytes: a checked chat body (JSON object, model named, messages objects)
    or a PayloadError; a body that passes is sent byte for byte."""
    chat = ours(lambda: prepare_chat_body(RawInput(data, "in.json")))
    if chat is not None:
        assert chat.data == data
        assert isinstance(chat.parsed["model"], str)
        assert all(isinstance(m, dict) for m in chat.parsed["messages"])


@fuzz
@given(bodies, st.lists(argv_texts, max_size=3), st.none() | argv_texts, st.none() | st.booleans())
def test_overrides_on_any_body(
    body: dict[str, Any], sets: list[str], model: str | None, stream: bool | None
) -> None:
    """--set, --model and --stream on any JSON object: a body that re-parses to what was
    asked, or a usage error (including text that is not UTF-8 from the command line)."""
    raw = RawInput(json.dumps(body).encode(), "in.json")
    chat = ours(lambda: prepare_chat_body(raw, Overrides(model, None, stream, None, tuple(sets))))
    if chat is not None:
        sent = json.loads(chat.data)
        assert sent["model"] == chat.model
        if model is not None:
            assert sent["model"] == model
        if stream is not None:
            assert sent["stream"] is stream


@fuzz
@given(argv_texts)
def test_text_arguments_of_any_text(text: str) -> None:
    """Any TEXT argument, even one that was not UTF-8: its bytes, checked as a chat body
    (naming the bad byte) or refused, never an encoding error."""
    raw = ours(lambda: read_input(text, None))
    if raw is not None:
        ours(lambda: prepare_chat_body(raw))


@fuzz
@given(argv_texts)
def test_set_assignments_of_any_text(text: str) -> None:
    """Any --set text: a key and a JSON value, or a usage error."""
    parsed = ours(lambda: parse_set(text))
    assert parsed is None or parsed[0] == parsed[0].strip() != ""


# --- keys, mnemonics, paths, addresses, signatures ------------------------------------------


@fuzz
@given(texts | st.text(alphabet="0123456789abcdefABCDEFx \n", max_size=70))
def test_private_key_text_of_any_kind(text: str) -> None:
    """Any key text: 32 bytes that make a key, or a ConfigError that never repeats the text."""
    secret = ours(lambda: parse_private_key_hex(text))
    if secret is not None:
        assert SigningKey.from_secret(secret).address.startswith("gonka1")
    error = error_of(lambda: SigningKey.from_hex(text))
    if error is not None:
        assert len(text.strip()) < 16 or text.strip() not in error.message


@fuzz
@given(texts)
def test_public_keys_of_any_text(text: str) -> None:
    """Any public key text: 33 compressed bytes, or a UsageError."""
    key = ours(lambda: parse_public_key(text))
    assert key is None or (len(key) == 33 and key[0] in (2, 3))


@fuzz
@given(texts | st.lists(st.sampled_from(hd._english().wordlist), max_size=25).map(" ".join))
def test_mnemonics_of_any_text(text: str) -> None:
    """Any text, or words from the list in any number: a normalised valid mnemonic, or a
    UsageError that quotes none of the words (no two of them in a row)."""
    words = ours(lambda: hd.check_mnemonic(text))
    if words is None:
        error = error_of(lambda: hd.check_mnemonic(text))
        assert error is not None
        given_words = text.lower().split()
        # Pairs of list words only: ordinary text ("the mnemonic") may match the message's
        # own wording by chance, and that is not an echo of the user's words.
        listed = set(hd._english().wordlist)
        pairs = {
            f"{first} {second}"
            for first, second in itertools.pairwise(given_words)
            if first in listed and second in listed
        }
        assert not any(pair in " ".join(error.message.lower().split()) for pair in pairs)
    else:
        assert hd._english().check(words)


@fuzz
@given(texts | st.from_regex(r"\Am(/[0-9]{1,11}['hH]?){0,6}\Z"))
def test_hd_paths_of_any_text(text: str) -> None:
    """Any HD path text: child indexes below 2^32, or a UsageError."""
    steps = ours(lambda: hd.parse_path(text))
    assert steps is None or all(0 <= step < 2**32 for step in steps)


@fuzz
@given(st.binary(min_size=20, max_size=20), st.data())
def test_addresses_round_trip_and_one_changed_character_is_refused(
    account: bytes, data: st.DataObject
) -> None:
    """An encoded account parses back; changing any one character of it is refused."""
    address = bech32.bech32_encode("gonka", bech32.convertbits(account, 8, 5) or [])
    assert parse_address(address) == address
    position = data.draw(st.integers(min_value=6, max_value=len(address) - 1))
    other = data.draw(st.sampled_from("qpzry9x8gf2tvdw0s3jn54khce6mua7l"))
    changed = address[:position] + other + address[position + 1 :]
    if changed != address:
        assert ours(lambda: parse_address(changed)) is None


@fuzz
@given(texts | st.text(alphabet="qpzry9x8gf2tvdw0s3jn54khce6mua7lgonka1", max_size=50))
def test_addresses_of_any_text(text: str) -> None:
    """Any address text: a valid lower-case gonka1 address, or a UsageError."""
    address = ours(lambda: parse_address(text))
    assert address is None or (address.startswith("gonka1") and address == address.lower())


@fuzz
@given(texts | st.binary(max_size=70).map(lambda raw: __import__("base64").b64encode(raw).decode()))
def test_signatures_of_any_text(text: str) -> None:
    """Any signature text: 64 low-S bytes, or a SignatureProblem saying why not."""
    decoded = ours(lambda: decode_signature(text))
    assert decoded is None or len(decoded[2]) == 64


# --- batch inputs -----------------------------------------------------------------------------


@fuzz
@given(any_bytes | (batch_lines | bodies).map(lambda value: json.dumps(value).encode()))
def test_jsonl_lines_of_any_bytes_never_raise(line: bytes) -> None:
    """Any JSONL line becomes an item with either a body or the reason it cannot be sent;
    loading it checks the body the same way, and never raises either."""
    item = parse_jsonl_line(line, 7, "in.jsonl")
    assert (item.body is None) != (item.error is None)
    loaded = load(item)
    assert (loaded.body is None) != (loaded.error is None)
    if loaded.error is not None:
        assert loaded.error.strip()


@fuzz
@given(st.binary(max_size=600))
def test_jsonl_streams_of_any_bytes_never_raise(data: bytes) -> None:
    """A whole JSONL file of any bytes: one item per non-blank line, never an exception."""
    items = list(iter_jsonl(io.BytesIO(data), "in.jsonl"))
    assert len(items) == sum(1 for line in data.split(b"\n") if line.strip())


@fuzz
@given(texts | st.from_regex(r"\A-?[0-9]{0,3}/-?[0-9]{0,3}\Z"))
def test_shards_of_any_text(text: str) -> None:
    """Any --shard text: K/N with 1 <= K <= N, or a UsageError."""
    shard = ours(lambda: parse_shard(text))
    assert shard is None or 1 <= shard.index <= shard.count


# --- URLs, settings, key files ----------------------------------------------------------------

url_like = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
    st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
    st.text(max_size=12) | st.sampled_from(["[::1", "[::1]", "::1", "", "xn--", "a b", "h"]),
    st.sampled_from(["", ":", ":0", ":80", ":99999", ":abc", ": 80"]),
    st.text(max_size=8),
)


@fuzz
@given(texts | url_like)
def test_base_urls_of_any_text(text: str) -> None:
    """Any URL text: a base URL ending in /v1 that httpx can send to, or a UsageError."""
    url = ours(lambda: normalize_base_url(text))
    if url is not None:
        assert url.endswith("/v1")
        assert httpx2.URL(url + "/chat/completions").host
    ours(lambda: parse_endpoint(text + ";gonka1"))


ENVIRONMENT = ("MAX_RETRIES", "TIMEOUT", "READ_TIMEOUT", "FOLLOW_MOVED", "ENDPOINTS", "AUTH")
profiles = shaped((*(setting.name for setting in SETTINGS), "bogus"), small)
environments = st.dictionaries(st.sampled_from([f"GONKA_{n}" for n in ENVIRONMENT]), texts)


@fuzz
@given(profiles, environments)
def test_settings_from_any_profile_and_environment(
    profile: dict[str, Any], env: dict[str, str]
) -> None:
    """Any profile table and environment text: settings, retries and positive time-outs,
    or a ConfigError naming the bad one."""
    settings_ = ours(lambda: resolve({}, env, Profile(profile, "'fuzz' (config.toml)")))
    if settings_ is not None:
        timeouts = ours(lambda: timeouts_from(settings_))
        assert timeouts is None or min(timeouts.connect, timeouts.read) > 0
        ours(lambda: retry_from(settings_))


@fuzz
@given(any_bytes | key_files.map(lambda value: json.dumps(value).encode()))
def test_key_files_of_any_content(data: bytes) -> None:
    """Any key file content: a stored key whose secret opens or is refused, or a
    ConfigError naming the file as corrupt."""
    path = Path("/nonexistent/keys/fuzz.json")
    stored = ours(lambda: keystore.parse_document(data, path))
    if stored is not None:
        ours(lambda: keystore.open_key(stored, keystore.Passphrase("pw", "a test")))


# --- what the network answers -----------------------------------------------------------------


@fuzz
@given(documents)
def test_discovery_documents_of_any_shape(document: dict[str, Any]) -> None:
    """Any participants and params documents: participants and an allowlist, and endpoints
    only for participants whose URL can be sent to."""
    participants = parse_participants(document, parse_allowlist(document))
    for endpoint in usable_endpoints(participants, None):
        assert endpoint.url.endswith("/v1")


@fuzz
@given(small | st.datetimes().map(str) | st.sampled_from([float("inf"), float("nan"), 10**30]))
def test_times_of_any_kind(value: Any) -> None:
    """Any identity timestamp (numbers of any size, infinities, text): ns or None."""
    stamp = parse_time_ns(value)
    assert stamp is None or isinstance(stamp, int)


@fuzz
@given(any_bytes, st.integers(min_value=100, max_value=599), texts, st.booleans())
def test_error_answers_of_any_kind(body: bytes, status: int, header: str, bearer: bool) -> None:
    """Any error body, status and header text: a message, a verdict carrying our error."""
    assert isinstance(json_body(body), dict)
    message = error_message(body, status)
    headers = {"retry-after": header, "date": header, "content-type": header}
    retry_after(headers)
    server_time_ns(headers)
    verdict = judge(status, message, headers, url="http://n/v1/chat/completions", bearer=bearer)
    assert isinstance(verdict.error, GonkaError)
