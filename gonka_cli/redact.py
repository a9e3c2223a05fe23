"""The one redaction step for everything this tool prints or stores (pure, light imports).

`redact` is for messages: errors, warnings, notices, ``-v`` facts, the ``endpoint`` of
``-o json`` and results lines, and a failed answer's error body. It removes, in order:

- terminal control: ESC sequences (CSI, OSC, ...), BEL, the C1 range, other C0
  characters except tab and newline, and the Unicode bidi overrides;
- URL user-info (``http://alice:pw@host`` -> ``http://***@host``) and ``Bearer <token>``;
- the secrets in use (the API key, the signing key's hex), registered once by
  `gonka_cli.settings` where it resolves them: whole, or any piece of 8+ characters;
- anything key-shaped: a run of 40 or more hex digits, with or without ``0x``;
- anything mnemonic-shaped: 12 or more consecutive words of the BIP39 English list.

`scrub_data` is for answers (``-o json``, results bodies, ``--output-dir`` files): only
the registered secrets and C1 controls go, since an answer may rightly hold hashes or long
words (JSON itself escapes the other control characters).
`plain` strips control characters from streamed answer text shown on a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

MASK = "***"  # what a secret is replaced by
SHAPE = "<redacted>"
MIN_PIECE = 8  # a piece of a known secret this long or longer is a leak
MNEMONIC_WORDS = 12

# The patterns below are compiled on first use (`_rx`), not at import: `gonka sign` and
# `gonka --help` load this module and would pay milliseconds for patterns they never use.
_rx = cache(re.compile)

_ESCAPES = (
    r"\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC ... BEL or ST (window titles, links)
    r"|\x1b[P^_X][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, PM, APC, SOS ... ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI: colours, cursor moves, screen clears
    r"|\x1b[ -/]*[0-~]?"  # any other ESC sequence
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"  # 8-bit OSC
)
_CONTROLS = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
_C1 = r"[\x80-\x9f]"
_USERINFO = r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@"
_BEARER = r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}"  # the header's spelling
_HEX = r"(?:0[xX])?[0-9a-fA-F]{40,}"
_HEX_RUN = r"[0-9a-fA-F]{8,}"
_WORD = r"[A-Za-z]+"
# Twelve words of 3 to 8 letters in a row (every BIP39 English word is): only text with such
# a run can hold a mnemonic, so only then is the word list loaded.
_TWELVE = r"(?<![A-Za-z])(?:[A-Za-z]{3,8}[\s,]+){11}[A-Za-z]{3,8}(?![A-Za-z])"
_GAP = r"[\s,]+"

_secrets: dict[str, bool] = {}  # secret text -> compare ignoring case (hex)
_compiled: tuple[re.Pattern[str] | None, frozenset[str]] | None = None


def register(secret: str | None, *, ignore_case: bool = False) -> None:
    """Remember a secret in use so that every later `redact`/`scrub_data` removes it."""
    if secret and secret.strip():
        text = secret.strip()
        _secrets[text.lower() if ignore_case else text] = ignore_case
        global _compiled  # the pieces' patterns are built again on use
        _compiled = None


def register_hex_key(hex_key: str) -> None:
    """A private key's hex (any case, with or without 0x, is removed). The one kind of
    secret compared ignoring case."""
    register(hex_key.lower().removeprefix("0x"), ignore_case=True)


def forget_all() -> None:
    """Forget the registered secrets (tests; a process uses one set of keys)."""
    global _compiled
    _secrets.clear()
    _compiled = None


def plain(text: str, *, newlines: bool = True) -> str:
    """`text` without terminal escapes and control characters (tab and newline kept)."""
    if not _rx(_CONTROLS).search(text):  # every escape starts with a control character
        return text
    text = _rx(_CONTROLS).sub("", _rx(_ESCAPES).sub("", text))
    return text if newlines else text.replace("\n", " ").replace("\t", " ")


def redact(text: str) -> str:
    """A message safe to print or store: see the module docstring for what goes."""
    text = plain(text)
    text = _rx(_USERINFO).sub(rf"\1{MASK}@", text)
    text = _rx(_BEARER).sub(rf"\1{MASK}", text)
    text = _known(text)
    text = _rx(_HEX).sub(SHAPE, text)
    return _mnemonics(text)


def scrub_data(value: Any) -> Any:
    """A JSON value with the registered secrets and C1 controls removed from every string
    (JSON escapes the C0 ones, ESC included, but writes C1 ones such as the 8-bit CSI raw)."""
    if not isinstance(value, str):
        parts: list[str] = []
        _strings(value, parts)
        # One look at every string at once (NUL is in no secret, so no piece can match
        # across two strings): most answers need no change, and are returned as they are.
        text = "\x00".join(parts)
        if not _rx(_C1).search(text) and not (_secrets and _may_hold_a_secret(text)):
            return value
    return _map_strings(value, _data_text)


def _strings(value: Any, into: list[str]) -> None:
    """Every string in a JSON value, keys included, appended to `into`."""
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                into.append(key)
            _strings(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _strings(item, into)


def _data_text(text: str) -> str:
    if _rx(_C1).search(text):
        text = _rx(_C1).sub("", text)
    return _known(text) if _secrets else text


def redact_data(value: Any) -> Any:
    """A JSON value (an error body, facts) with `redact` applied to every string."""
    return _map_strings(value, redact)


def _map_strings(value: Any, change: Any) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {_map_strings(k, change): _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(item, change) for item in value]
    return value


def looks_secret(text: str) -> bool:
    """Whether `text` holds something key- or mnemonic-shaped (a secret in the wrong place)."""
    return bool(_rx(_HEX).search(text)) or _mnemonics(text) != text


# --- the known secrets ------------------------------------------------------------------


def _known(text: str) -> str:
    if len(text) < MIN_PIECE or not _may_hold_a_secret(text):
        return text
    spans: list[tuple[int, int]] = []
    lowered: str | None = None
    for secret, ignore_case in _secrets.items():
        haystack = text
        if ignore_case:
            lowered = text.lower() if lowered is None else lowered
            haystack = lowered
        spans += _occurrences(haystack, secret)
    return _cut(text, spans, MASK) if spans else text


def _pieces(secret: str) -> set[str]:
    """Every piece of `secret` that `_occurrences` looks for."""
    width = min(MIN_PIECE, len(secret))
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


def _patterns() -> tuple[re.Pattern[str] | None, frozenset[str]]:
    """One pattern for the pieces of the secrets compared exactly, and the set of the
    pieces of those compared ignoring case (hex keys), both made once per registration."""
    global _compiled
    if _compiled is None:
        exact: set[str] = set()
        folded: set[str] = set()
        for secret, ignore_case in _secrets.items():
            (folded if ignore_case else exact).update(_pieces(secret))
        pattern = re.compile("|".join(map(re.escape, sorted(exact)))) if exact else None
        _compiled = (pattern, frozenset(folded))
    return _compiled


def _may_hold_a_secret(text: str) -> bool:
    """False only when no piece of a registered secret can be in `text`: the fast path,
    since answers are scanned string by string on every results line. A hex key's piece
    needs a run of 8 or more hex digits, and those runs are rare in text."""
    exact, folded = _patterns()
    if exact is not None and exact.search(text):
        return True
    if folded:
        for run in _rx(_HEX_RUN).finditer(text):
            digits = run.group().lower()
            if any(digits[i : i + MIN_PIECE] in folded for i in range(len(digits) - 7)):
                return True
    return False


def _occurrences(text: str, secret: str) -> list[tuple[int, int]]:
    """Where `secret`, or any piece of it of `MIN_PIECE` or more characters, occurs."""
    width = min(MIN_PIECE, len(secret))
    found = []
    for piece in _pieces(secret):
        start = text.find(piece)
        while start != -1:
            found.append((start, start + width))
            start = text.find(piece, start + 1)
    return found


def _cut(text: str, spans: Iterable[tuple[int, int]], mark: str) -> str:
    """`text` with each merged run of (overlapping or touching) spans replaced by `mark`."""
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    out, position = [], 0
    for start, stop in merged:
        out += [text[position:start], mark]
        position = stop
    out.append(text[position:])
    return "".join(out)


# --- mnemonic-shaped text ------------------------------------------------------------------


def _mnemonics(text: str) -> str:
    """Runs of 12+ BIP39 words (separated by spaces or commas) replaced by `SHAPE`."""
    if not _rx(_TWELVE).search(text):
        return text  # the common case: the word list is never loaded
    words = _wordlist()
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []
    for match in _rx(_WORD).finditer(text):
        joined = bool(run) and _rx(_GAP).fullmatch(text, run[-1].end(), match.start()) is not None
        if match.group().lower() not in words:
            _close(run, spans)
            run = []
        elif joined:
            run.append(match)
        else:
            _close(run, spans)
            run = [match]
    _close(run, spans)
    return _cut(text, spans, SHAPE) if spans else text


def _close(run: list[re.Match[str]], spans: list[tuple[int, int]]) -> None:
    if len(run) >= MNEMONIC_WORDS:
        spans.append((run[0].start(), run[-1].end()))


@cache
def _wordlist() -> frozenset[str]:
    # Imported here: loading the word list costs time that `gonka sign` must not pay.
    from mnemonic import Mnemonic

    return frozenset(Mnemonic("english").wordlist)
