"""Batch inputs: request bodies streamed from a directory, files or a JSONL file.

Every input becomes an :class:`Item` named by its ``custom_id``. Inputs are produced
lazily, one at a time: a directory's names are listed (sorted, one directory at a
time) but a file is read only when its item is about to be sent, so a batch of
100,000 files runs in bounded memory. An input that cannot be sent (unreadable, not a
valid chat request, a malformed JSONL line) becomes an item carrying an ``error``,
which the runner records as a failed result; it never stops the batch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import IO, Any

from gonka_cli.errors import UsageError
from gonka_cli.jsontext import loads
from gonka_cli.payloads import Overrides, RawInput, prepare_chat_body, read_bounded

DEFAULT_GLOB = "*.json"
CHAT_URL = "/v1/chat/completions"
NO_OVERRIDES = Overrides()


@dataclass(frozen=True)
class Item:
    """One input of a batch: its ``custom_id`` and either its bytes, its file, or an error.

    `source` names where the bytes came from in messages ("in.jsonl line 7") when that is
    not the file `path`.
    """

    custom_id: str
    body: bytes | None = None
    path: Path | None = None
    error: str | None = None
    source: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Shard:
    """``--shard K/N``: keep the inputs whose stable hash of ``custom_id`` falls in slot K."""

    index: int
    count: int

    def keeps(self, custom_id: str) -> bool:
        """Whether this shard owns `custom_id` (every id lands in exactly one of the N)."""
        return shard_slot(custom_id, self.count) == self.index - 1


def shard_slot(custom_id: str, count: int) -> int:
    """A slot in 0..count-1 for `custom_id`, the same on every machine and Python run."""
    digest = hashlib.sha256(custom_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """``K/N`` with 1 <= K <= N, as ``--shard`` takes it."""
    k, sep, n = text.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise UsageError(f"--shard {text!r}: expected K/N, for example 2/4")
    shard = Shard(int(k), int(n))
    if not 1 <= shard.index <= shard.count:
        raise UsageError(f"--shard {text!r}: K must be between 1 and N")
    return shard


# --- directories and files -------------------------------------------------------------


def iter_dir(root: Path, *, recursive: bool = False, pattern: str = DEFAULT_GLOB) -> Iterator[Item]:
    """Every file under `root` matching `pattern`, sorted, named by its path relative to root.

    `pattern` is matched against the relative path from the right (``*.json`` matches
    at any depth, ``sub/*.json`` only in ``sub``). Hidden entries (a leading dot) are
    skipped; directory symlinks are not followed, so a loop cannot hang the walk.
    """
    if not root.is_dir():
        raise UsageError(
            f"{root}: not a directory", hint="--dir takes a directory of request files"
        )
    matches = _matcher(pattern)
    for relative, problem in _walk(root, "", recursive=recursive):
        # A subdirectory that cannot be listed ("sub/") fails alone, whatever the pattern.
        if relative.endswith("/") or matches(relative):
            # Built from one string, so that pathlib interns a copy of the name that dies
            # with the item, not the listing's own string (held for the whole batch).
            path = Path(os.path.join(root, relative))
            error = None if problem is None else f"{path}: {problem}"
            yield Item(custom_id=relative, path=path, error=error)


def _matcher(pattern: str) -> Callable[[str], bool]:
    """``PurePosixPath(relative).match(pattern)`` for a relative path given as text.

    Matched on text because pathlib interns every name it parses: 100,000 file names
    would stay in the interpreter's table of interned strings for the whole batch.
    """
    parsed = PurePosixPath(pattern)
    if not parsed.parts:
        raise UsageError("--glob needs a pattern, for example '*.json'")
    if parsed.is_absolute():
        return lambda relative: False  # a relative path never matches an absolute pattern
    wanted = parsed.parts[::-1]

    def matches(relative: str) -> bool:
        parts = relative.split("/")[::-1]
        return len(parts) >= len(wanted) and all(map(fnmatchcase, parts, wanted))

    return matches


def _walk(root: Path, prefix: str, *, recursive: bool) -> Iterator[tuple[str, str | None]]:
    """Paths of the files below `root` relative to it (``sub/a.json``), each with why it
    cannot be sent (None for a regular file); `prefix` is the directory being listed
    (``""`` or ``sub/``). A subdirectory that cannot be listed comes as ``sub/`` itself."""
    try:
        names, kinds = _sorted_entries(root / prefix)
    except OSError as exc:
        if not prefix:
            raise UsageError(f"{root}: cannot list ({exc.strerror})") from None
        yield prefix, f"cannot list ({exc.strerror})"
        return
    for name in names:
        kind = kinds.get(name, "file")
        if kind == "dir":
            if recursive:
                yield from _walk(root, f"{prefix}{name}/", recursive=True)
        else:
            # A FIFO or device would block the batch on its first read: it fails alone.
            yield prefix + name, None if kind == "file" else "not a regular file"


def _sorted_entries(directory: Path) -> tuple[list[str], dict[str, str]]:
    """The names in `directory` (hidden ones left out), sorted, and the kind of each entry
    that is not a regular file: a directory of 100,000 files costs one list of names.
    Raises OSError when `directory` cannot be listed."""
    names: list[str] = []
    kinds: dict[str, str] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith("."):
                names.append(entry.name)
                kind = _kind(entry)
                if kind != "file":
                    kinds[entry.name] = kind
    names.sort()
    return names, kinds


def _kind(entry: os.DirEntry[str]) -> str:
    """dir (not through a symlink), file (a regular file, through symlinks), or other."""
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    try:
        return "file" if entry.is_file() else "other"
    except OSError:
        return "file"  # let the read say what is wrong with it


def iter_files(paths: Iterable[str]) -> Iterator[Item]:
    """One item per ``--file PATH``, named by the path as given."""
    for path in paths:
        yield Item(custom_id=path, path=Path(path))


def check_unique_files(paths: list[str]) -> None:
    """Refuse a ``--file`` given twice: its ``custom_id`` would appear twice."""
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise UsageError(f"--file {path} is given twice")
        seen.add(path)


def load(item: Item, overrides: Overrides = NO_OVERRIDES) -> Item:
    """The item with its bytes read, checked as a chat request and overridden, or with
    the reason it cannot be sent (the same checks and overrides as a single request)."""
    if item.error is not None:
        return item
    if item.body is None:
        if item.path is None:
            return replace(item, error="no request body")
        try:
            data = read_bounded(item.path)  # one over the size limit is refused unread
        except UsageError as exc:
            return replace(item, error=exc.message)
        except OSError as exc:
            return replace(item, error=f"{item.path}: cannot read ({exc.strerror or exc})")
    else:
        data = item.body
    return _checked(item, data, overrides)


def _checked(item: Item, data: bytes, overrides: Overrides) -> Item:
    source = item.source or (str(item.path) if item.path is not None else item.custom_id)
    if not data.strip():
        return replace(item, body=None, error=f"{source}: empty request body")
    try:
        chat = prepare_chat_body(RawInput(data, source), overrides)
    except UsageError as exc:
        return replace(item, body=None, error=exc.message)
    return replace(item, body=chat.data)


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


# --- JSONL -----------------------------------------------------------------------------


def iter_jsonl(stream: IO[bytes], source: str) -> Iterator[Item]:
    """One item per non-blank line of `stream`: an OpenAI Batch input line or a bare body.

    A Batch line ``{"custom_id", "method", "url", "body"}`` keeps its ``custom_id``; a
    bare request body gets its 1-based line number. A line that cannot be sent keeps
    whichever name it has and carries the reason.
    """
    for number, raw in enumerate(stream, start=1):
        line = raw.strip()
        if line:
            yield parse_jsonl_line(line, number, source)


def parse_jsonl_line(line: bytes, number: int, source: str) -> Item:
    """The item one JSONL line stands for (see :func:`iter_jsonl`)."""
    where = f"{source} line {number}"
    try:
        value = loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        return Item(custom_id=str(number), error=f"{where}: not valid JSON ({message})")
    if not isinstance(value, dict):
        return Item(str(number), error=f"{where}: expected a JSON object, not {_json_kind(value)}")
    if "custom_id" not in value:
        return Item(custom_id=str(number), body=line, source=where)
    return _batch_line(value, number, where)


def _batch_line(value: dict[str, Any], number: int, where: str) -> Item:
    custom_id = value["custom_id"]
    if not isinstance(custom_id, str) or not custom_id:
        return Item(str(number), error=f"{where}: custom_id must be a non-empty string")
    problem = _batch_line_problem(value)
    if problem:
        return Item(custom_id, error=f"{where} ({custom_id}): {problem}")
    body = json.dumps(value["body"], ensure_ascii=False, separators=(",", ":"))
    return Item(custom_id, body=body.encode(), source=f"{where} ({custom_id})")


def _batch_line_problem(value: dict[str, Any]) -> str | None:
    method, url = value.get("method", "POST"), value.get("url", CHAT_URL)
    if not isinstance(method, str) or method.upper() != "POST":
        return f"method must be POST, not {method!r}"
    if url not in (CHAT_URL, CHAT_URL.removeprefix("/v1")):
        return f"url {url!r} is not supported (only {CHAT_URL})"
    if not isinstance(value.get("body"), dict):
        return "body must be a JSON object"
    return None


# --- selection -------------------------------------------------------------------------


def select(
    items: Iterable[Item], *, shard: Shard | None = None, skip: Callable[[str], bool] | None = None
) -> Iterator[Item]:
    """The items of this shard that `skip` does not rule out (already done, say)."""
    for item in items:
        if shard is not None and not shard.keeps(item.custom_id):
            continue
        if skip is not None and skip(item.custom_id):
            continue
        yield item


def count(items: Iterable[Item]) -> int:
    """How many items an iterator yields (names only: files are not read)."""
    return sum(1 for _ in items)
