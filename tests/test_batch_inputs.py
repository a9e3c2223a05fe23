"""Batch inputs: directories, files, JSONL lines, loading, and --shard."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from gonka_cli.batch.inputs import (
    Item,
    Shard,
    check_unique_files,
    count,
    iter_dir,
    iter_files,
    iter_jsonl,
    load,
    parse_shard,
    select,
    shard_slot,
)
from gonka_cli.errors import UsageError
from gonka_cli.payloads import Overrides
from tests.batch_fakes import body


def _tree(root: Path) -> None:
    for relative in ["b.json", "a.json", "c.txt", ".hidden.json", "sub/z.json", "sub/deep/y.json"]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body(relative))


def test_dir_lists_json_files_sorted_and_names_them_relative(tmp_path: Path) -> None:
    """--dir yields the *.json files at the top, sorted, named by relative path, unread."""
    _tree(tmp_path)
    items = list(iter_dir(tmp_path))
    assert [i.custom_id for i in items] == ["a.json", "b.json"]
    assert items[0] == Item("a.json", path=tmp_path / "a.json")


def test_dir_recursive_walks_subdirectories_in_sorted_order(tmp_path: Path) -> None:
    """--recursive descends, each directory in sorted order, ids with forward slashes."""
    _tree(tmp_path)
    ids = [i.custom_id for i in iter_dir(tmp_path, recursive=True)]
    assert ids == ["a.json", "b.json", "sub/deep/y.json", "sub/z.json"]


def test_dir_glob_matches_the_relative_path_from_the_right(tmp_path: Path) -> None:
    """--glob 'deep/*.json' keeps only the files in a directory named deep."""
    _tree(tmp_path)
    ids = [i.custom_id for i in iter_dir(tmp_path, recursive=True, pattern="deep/*.json")]
    assert ids == ["sub/deep/y.json"]
    assert [i.custom_id for i in iter_dir(tmp_path, pattern="*.txt")] == ["c.txt"]


@pytest.mark.parametrize(
    "pattern",
    ["*.json", "*.txt", "deep/*.json", "sub/*/*.json", "sub/", "*", "?.json", "/a.json", "a//b"],
)
def test_dir_glob_matches_as_pathlib_does(tmp_path: Path, pattern: str) -> None:
    """--glob keeps exactly the files whose relative path PurePosixPath.match accepts."""
    _tree(tmp_path)
    everything = [i.custom_id for i in iter_dir(tmp_path, recursive=True, pattern="*")]
    expected = [name for name in everything if PurePosixPath(name).match(pattern)]
    ids = [i.custom_id for i in iter_dir(tmp_path, recursive=True, pattern=pattern)]
    assert ids == expected


@pytest.mark.parametrize("pattern", ["", "."])
def test_dir_empty_glob_is_a_usage_error(tmp_path: Path, pattern: str) -> None:
    """--glob '' names no files: a usage error, not a traceback."""
    _tree(tmp_path)
    with pytest.raises(UsageError, match="--glob needs a pattern"):
        list(iter_dir(tmp_path, pattern=pattern))


def test_dir_that_is_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    """--dir on a missing path fails with a usage error, before anything is sent."""
    with pytest.raises(UsageError, match="not a directory"):
        list(iter_dir(tmp_path / "missing"))


def test_dir_listing_is_lazy(tmp_path: Path) -> None:
    """Items of a directory are produced one at a time, files unread until loaded."""
    _tree(tmp_path)
    walk = iter_dir(tmp_path, recursive=True)
    first = next(walk)
    (tmp_path / "b.json").unlink()  # removed after the walk started: seen by the listing only
    assert first.body is None
    assert load(next(walk)).error is not None


def test_files_are_named_as_given_and_duplicates_refused() -> None:
    """Repeated --file keeps order and the path as the id; the same path twice is refused."""
    assert [i.custom_id for i in iter_files(["x/a.json", "b.json"])] == ["x/a.json", "b.json"]
    with pytest.raises(UsageError, match="given twice"):
        check_unique_files(["a.json", "b.json", "a.json"])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty request body"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"messages": [{"role": "user"}]}', "the request has no model"),
        (b'{"model": "m", "messages": []}', 'non-empty "messages" list'),
    ],
)
def test_load_turns_a_bad_file_into_an_error_item(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    """A file that cannot be a request body becomes an item with an error naming the file."""
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    loaded = load(Item("bad.json", path=path))
    assert loaded.body is None
    assert loaded.error is not None
    assert problem in loaded.error
    assert str(path) in loaded.error


def test_load_keeps_the_exact_bytes_and_reports_missing_files(tmp_path: Path) -> None:
    """A good file's bytes are kept exactly (spacing and all); a missing one is an error."""
    path = tmp_path / "ok.json"
    path.write_bytes(b'{ "model" : "m",\n "messages": [{"role": "user"}] }\n')
    assert load(Item("ok.json", path=path)).body == path.read_bytes()
    assert "cannot read" in (load(Item("gone", path=tmp_path / "gone.json")).error or "")


def test_jsonl_reads_batch_lines_and_bare_bodies() -> None:
    """Batch lines keep their custom_id; bare bodies are named by their line number."""
    batch = {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body": {"a": 1}}
    stream = io.BytesIO(b"\n".join([json.dumps(batch).encode(), b"", b'{"model":"m"}']) + b"\n")
    items = list(iter_jsonl(stream, "in.jsonl"))
    assert items == [Item("q1", body=b'{"a":1}'), Item("3", body=b'{"model":"m"}')]


@pytest.mark.parametrize(
    ("line", "custom_id", "problem"),
    [
        (b"{oops", "1", "in.jsonl line 1: not valid JSON"),
        (b"[1]", "1", "expected a JSON object"),
        (b'{"custom_id": 7, "body": {}}', "1", "custom_id must be a non-empty string"),
        (b'{"custom_id": "x", "body": "hi"}', "x", "body must be a JSON object"),
        (b'{"custom_id": "x", "method": "GET", "body": {}}', "x", "method must be POST"),
        (b'{"custom_id": "x", "url": "/v1/embeddings", "body": {}}', "x", "not supported"),
    ],
)
def test_jsonl_malformed_line_is_an_error_item(line: bytes, custom_id: str, problem: str) -> None:
    """A JSONL line that cannot be sent becomes an error item, never an exception."""
    (item,) = iter_jsonl(io.BytesIO(line + b"\n"), "in.jsonl")
    assert item.custom_id == custom_id
    assert item.body is None
    assert problem in (item.error or "")


def test_jsonl_is_read_one_line_at_a_time() -> None:
    """The JSONL reader does not read ahead of the item it yields."""
    stream = io.BytesIO(b'{"a":1}\n{"a":2}\n{"a":3}\n')
    lines = iter_jsonl(stream, "s")
    next(lines)
    assert stream.tell() == len(b'{"a":1}\n')


def test_parse_shard_accepts_k_of_n_and_refuses_the_rest() -> None:
    """--shard takes K/N with 1 <= K <= N."""
    assert parse_shard("2/4") == Shard(2, 4)
    for bad in ["0/3", "4/3", "1", "a/b", "1/0", "-1/2"]:
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_shard_slot_is_a_fixed_function_of_the_id() -> None:
    """The slot is sha256(id)'s first 8 bytes mod N: the same on every runner, every run."""
    # sha256("a") = ca978112ca1bbdca..., a published constant
    assert shard_slot("a", 1000) == 0xCA978112CA1BBDCA % 1000
    assert shard_slot("a", 1) == 0


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_cover_every_input_exactly_once(n: int) -> None:
    """Across K = 1..N, every custom_id lands in exactly one shard, and shards are not empty."""
    ids = [f"req-{i}.json" for i in range(200)]
    items = [Item(i) for i in ids]
    picked = [[i.custom_id for i in select(items, shard=Shard(k, n))] for k in range(1, n + 1)]
    assert sorted(x for shard in picked for x in shard) == sorted(ids)
    assert all(shard for shard in picked)


def test_select_skips_done_ids_and_count_counts_names_only(tmp_path: Path) -> None:
    """select() drops what `skip` rules out; count() counts without reading the files."""
    items = [Item("a", path=tmp_path / "nope-a"), Item("b", path=tmp_path / "nope-b")]
    assert [i.custom_id for i in select(items, skip={"a"}.__contains__)] == ["b"]
    assert count(select(items)) == 2


def test_load_applies_the_command_line_overrides(tmp_path: Path) -> None:
    """--model, --max-tokens and --set apply to every input, re-encoding it compactly."""
    path = tmp_path / "a.json"
    path.write_bytes(body("hi"))
    overrides = Overrides(model="echo", max_tokens=7, sets=("temperature=0.5",))
    loaded = json.loads(load(Item("a.json", path=path), overrides).body or b"")
    assert (loaded["model"], loaded["max_tokens"], loaded["temperature"]) == ("echo", 7, 0.5)
    jsonl_item = Item("1", body=b'{"messages": [{"role": "user", "content": "x"}]}')
    assert load(jsonl_item, Overrides(default_model="dflt")).body == (
        b'{"messages":[{"role":"user","content":"x"}],"model":"dflt"}'
    )


def test_an_unlistable_subdirectory_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--recursive: a subdirectory that cannot be listed becomes one failed input ("sub/"),
    whatever the glob, and the rest of the tree is still sent; an unlistable --dir itself
    is a usage error."""
    _tree(tmp_path)
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if Path(path).name in ("sub", "root"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr("gonka_cli.batch.inputs.os.scandir", scandir)
    items = list(iter_dir(tmp_path, recursive=True))
    assert [i.custom_id for i in items] == ["a.json", "b.json", "sub/"]
    assert items[-1].error == f"{tmp_path / 'sub'}: cannot list (Permission denied)"
    (tmp_path / "root").mkdir()
    with pytest.raises(UsageError, match="cannot list"):
        list(iter_dir(tmp_path / "root"))


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    """An input larger than 10 MiB (a sparse file here) fails from its size, never read."""
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    loaded = load(Item("huge.json", path=huge))
    assert loaded.body is None
    assert "over 10 MiB (67,108,864 bytes)" in (loaded.error or "")
