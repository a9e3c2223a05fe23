"""`gonka results merge`: shard files into one checked file; every input exactly once, in
input order; overlapping, missing, duplicated, torn, stray and superseded lines."""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gonka_cli.batch.results import read_results
from gonka_cli.cli import app


def record(custom_id: str, tag: str, *, ok: bool = True) -> dict[str, Any]:
    """A results line; `tag` marks which part and run it came from (its ``id``)."""
    return {
        "id": f"batch_req_{tag}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": tag, "body": {"n": tag}} if ok else None,
        "error": None if ok else {"code": "http_503", "message": "busy"},
        "x_gonka": {"endpoint": "http://ta/v1", "attempts": 1, "latency_s": 0.01, "ttft_s": None},
    }


def write_part(path: Path, records: list[dict[str, Any]], tail: bytes = b"") -> Path:
    """A part file with these records, one per line, then `tail` as it is."""
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    path.write_bytes(body + tail)
    return path


def inputs(tmp_path: Path, *names: str) -> Path:
    """A --dir of request files with these names."""
    directory = tmp_path / "requests"
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_text('{"model": "echo", "messages": []}')
    return directory


def merge(*args: str) -> Result:
    return CliRunner().invoke(app, ["results", "merge", *args])


def tags(path: Path) -> list[tuple[str, str]]:
    """(custom_id, id tag) of every line of `path`, in order."""
    return [(r["custom_id"], r["id"].removeprefix("batch_req_")) for r in read_results(path)]


def test_overlapping_parts_merge_complete_in_input_order(tmp_path: Path) -> None:
    """Two parts sharing a success: each input once, its first success kept, sorted as the
    inputs are, exit 0, OUT mode 0600."""
    directory = inputs(tmp_path, "a.json", "b.json", "c.json")
    p1 = write_part(tmp_path / "p1.jsonl", [record("c.json", "1c"), record("b.json", "1b")])
    p2 = write_part(tmp_path / "p2.jsonl", [record("b.json", "2b"), record("a.json", "2a")])
    out = tmp_path / "all.jsonl"
    result = merge(str(out), str(p1), str(p2), "--dir", str(directory))
    assert result.exit_code == 0, result.stderr
    assert tags(out) == [("a.json", "2a"), ("b.json", "1b"), ("c.json", "1c")]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "1 duplicate line(s) dropped" in result.stderr
    assert "merge: complete" in result.stderr
    assert result.stdout == ""


def test_missing_inputs_are_named_with_a_command_that_sends_only_them(tmp_path: Path) -> None:
    """Missing inputs: OUT still written with what there is, exit 8, each missing id named,
    and a send-request --resume command on OUT."""
    directory = inputs(tmp_path, "a.json", "b.json", "c.json", "d.json")
    part = write_part(tmp_path / "p.jsonl", [record("a.json", "a"), record("c.json", "c")])
    out = tmp_path / "all.jsonl"
    result = merge(str(out), str(part), "--dir", str(directory), "--glob", "*.json")
    assert result.exit_code == 8
    assert tags(out) == [("a.json", "a"), ("c.json", "c")]
    assert "  missing: b.json\n  missing: d.json\n" in result.stderr
    assert "error: results merge: incomplete (2 missing) of 4 input(s)" in result.stderr
    hint = result.stderr.split("hint: send only those: ", 1)[1].strip()
    assert shlex.split(hint) == [
        "gonka", "send-request", "--dir", str(directory), "--output-file", str(out), "--resume",
    ]  # fmt: skip


def test_a_failure_is_superseded_by_a_later_line_but_never_replaces_a_success(
    tmp_path: Path,
) -> None:
    """Failure then success: the success. Success then failure: the success. Failure then
    failure: the later one, and the input counts as failed (exit 8)."""
    directory = inputs(tmp_path, "a.json", "b.json", "c.json")
    first = [record("a.json", "1a", ok=False), record("b.json", "1b")]
    first.append(record("c.json", "1c", ok=False))
    retry = [record("a.json", "2a"), record("b.json", "2b", ok=False)]
    retry.append(record("c.json", "2c", ok=False))
    p1 = write_part(tmp_path / "run1.jsonl", first)
    p2 = write_part(tmp_path / "run2.jsonl", retry)
    out = tmp_path / "all.jsonl"
    result = merge(str(out), str(p1), str(p2), "--dir", str(directory), "-o", "json")
    assert result.exit_code == 8
    assert tags(out) == [("a.json", "2a"), ("b.json", "1b"), ("c.json", "2c")]
    summary = json.loads(result.stdout)
    assert summary["failed"] == ["c.json"]
    assert summary["missing"] == []
    assert summary["failures_superseded"] == 2
    assert summary["duplicates_dropped"] == 1
    assert summary["send_again"].endswith("--resume")


def test_torn_last_lines_are_repaired_or_dropped(tmp_path: Path) -> None:
    """A last line cut inside its record is dropped (its input is missing); one that lost
    only its newline is kept and written whole."""
    directory = inputs(tmp_path, "a.json", "b.json", "c.json")
    cut = json.dumps(record("c.json", "cut")).encode()[:40]
    p1 = write_part(tmp_path / "p1.jsonl", [record("a.json", "a")], tail=cut)
    whole = json.dumps(record("b.json", "b")).encode()  # no newline
    p2 = write_part(tmp_path / "p2.jsonl", [], tail=whole)
    out = tmp_path / "all.jsonl"
    result = merge(str(out), str(p1), str(p2), "--dir", str(directory), "-o", "json")
    assert result.exit_code == 8
    summary = json.loads(result.stdout)
    assert summary["missing"] == ["c.json"]
    assert summary["torn_lines_repaired"] == 1
    assert summary["torn_lines_dropped"] == 1
    assert out.read_bytes().endswith(b"\n")
    assert tags(out) == [("a.json", "a"), ("b.json", "b")]


def test_stray_ids_unreadable_lines_and_repeated_jsonl_inputs(tmp_path: Path) -> None:
    """Lines for ids that are no input are left out and make the merge incomplete, as do
    JSONL inputs that repeat a custom_id; unreadable lines are counted and skipped."""
    source = tmp_path / "in.jsonl"
    lines = [{"custom_id": c, "body": {"model": "m", "messages": []}} for c in ("x", "y", "x")]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    part = write_part(
        tmp_path / "p.jsonl", [record("x", "x"), record("zzz", "z"), record("y", "y")]
    )
    with part.open("ab") as handle:
        handle.write(b"garbage\n")
    out = tmp_path / "all.jsonl"
    result = merge(str(out), str(part), "--jsonl", str(source), "-o", "json")
    assert result.exit_code == 8
    summary = json.loads(result.stdout)
    assert summary["stray"] == ["zzz"]
    assert summary["repeated_inputs"] == ["x"]
    assert summary["unreadable_lines"] == 1
    assert summary["send_again"] is None
    assert tags(out) == [("x", "x"), ("y", "y")]


def test_out_may_be_one_of_the_parts(tmp_path: Path) -> None:
    """Merging a retry run into the merged file itself: read whole, then replaced."""
    directory = inputs(tmp_path, "a.json", "b.json")
    out = write_part(
        tmp_path / "all.jsonl", [record("a.json", "a"), record("b.json", "b0", ok=False)]
    )
    retry = write_part(tmp_path / "retry.jsonl", [record("b.json", "b1")])
    result = merge(str(out), str(out), str(retry), "--dir", str(directory))
    assert result.exit_code == 0, result.stderr
    assert tags(out) == [("a.json", "a"), ("b.json", "b1")]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_merge_checks_one_shard_of_the_inputs(tmp_path: Path) -> None:
    """With --shard K/N the inputs are that shard's only: the other shards' ids are stray."""
    names = [f"r{i}.json" for i in range(12)]
    directory = inputs(tmp_path, *names)
    listing = CliRunner().invoke(
        app, ["results", "merge", str(tmp_path / "o.jsonl"), str(write_part(tmp_path / "e", [])),
              "--dir", str(directory), "--shard", "1/3", "-o", "json"],
    )  # fmt: skip
    mine = json.loads(listing.stdout)["missing"]
    assert 0 < len(mine) < 12
    part = write_part(tmp_path / "p.jsonl", [record(name, name) for name in mine])
    result = merge(
        str(tmp_path / "out.jsonl"), str(part), "--dir", str(directory), "--shard", "1/3"
    )
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("bad", ["missing-part", "no-inputs", "two-sources", "bad-shard"])
def test_bad_arguments_are_exit_2_and_write_nothing(tmp_path: Path, bad: str) -> None:
    """An unreadable part, no inputs, two kinds of input or a bad --shard: exit 2, one
    error line, OUT untouched."""
    directory = inputs(tmp_path, "a.json")
    part = write_part(tmp_path / "p.jsonl", [record("a.json", "a")])
    out = tmp_path / "all.jsonl"
    args = {
        "missing-part": [
            str(out),
            str(part),
            str(tmp_path / "nope.jsonl"),
            "--dir",
            str(directory),
        ],
        "no-inputs": [str(out), str(part)],
        "two-sources": [str(out), str(part), "--dir", str(directory), "--jsonl", str(part)],
        "bad-shard": [str(out), str(part), "--dir", str(directory), "--shard", "3/2"],
    }[bad]
    result = merge(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert not out.exists()
    assert result.stdout == ""


def test_json_summary_survives_a_custom_id_that_is_not_utf8(tmp_path: Path) -> None:
    """A JSONL custom_id holding a lone surrogate is listed exactly, as a JSON escape."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "\\ud800", "body": {"model": "m", "messages": []}}\n')
    part = write_part(tmp_path / "p.jsonl", [])
    result = merge(str(tmp_path / "o.jsonl"), str(part), "--jsonl", str(source), "-o", "json")
    assert result.exit_code == 8
    assert '"\\ud800"' in result.stdout
    assert json.loads(result.stdout)["missing"] == ["\ud800"]


def test_the_suggested_command_completes_the_merge(tmp_path: Path) -> None:
    """Run the hint's command (against a dev node): it sends only the missing and failed
    inputs, and merging OUT alone is then complete."""
    directory = tmp_path / "requests"
    directory.mkdir()
    for i in range(6):
        body = {"model": "echo", "messages": [{"role": "user", "content": f"q{i}"}]}
        (directory / f"r{i}.json").write_text(json.dumps(body))
    part = write_part(
        tmp_path / "p.jsonl",
        [record("r0.json", "0"), record("r1.json", "1", ok=False), record("r3.json", "3")],
    )
    out = tmp_path / "all.jsonl"
    first = merge(str(out), str(part), "--dir", str(directory))
    assert first.exit_code == 8
    command = shlex.split(first.stderr.split("hint: send only those: ", 1)[1].strip())
    assert command[:2] == ["gonka", "send-request"]
    sent = CliRunner().invoke(app, [*command[1:], "--dev", "--quiet"])
    assert sent.exit_code == 0, sent.stderr
    assert "resume: 2 input(s) already done" in sent.stderr
    assert "batch: 4 requests finished" in sent.stderr
    again = merge(str(out), str(out), "--dir", str(directory))
    assert again.exit_code == 0, again.stderr
    assert [r["custom_id"] for r in read_results(out)] == [f"r{i}.json" for i in range(6)]
    assert tags(out)[0] == ("r0.json", "0")
