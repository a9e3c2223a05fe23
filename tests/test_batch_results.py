"""The batch results file: line format, whole-line writes, fsync cadence, resume, body files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from gonka_cli.batch import results as batch_results
from gonka_cli.batch.results import (
    FileSink,
    Result,
    ResultsFile,
    ResultsWriter,
    StreamSink,
    body_file_name,
    body_name_clash,
    encode_line,
    prepare_resume,
    read_results,
    result_record,
    write_body_file,
)
from gonka_cli.errors import OutputError, ResultsBusy, UsageError

OK = Result(
    custom_id="a.json",
    status_code=200,
    request_id="req-1",
    body={"object": "chat.completion", "choices": [{"message": {"content": "a\nb"}}]},
    endpoint="http://127.0.0.1:1/v1",
    transfer_address="gonka1abc",
    inference_id="sig",
    attempts=2,
    latency_s=0.1234567891,
    ttft_s=None,
)
FAILED = Result(custom_id="b.json", error_code="http_400", error_message="bad", status_code=400)


def _line(custom_id: str, *, ok: bool = True) -> bytes:
    result = (
        Result(custom_id, status_code=200, body={}) if ok else Result(custom_id, error_code="x")
    )
    return encode_line(result_record(result))


def test_success_line_has_the_openai_batch_shape_plus_x_gonka() -> None:
    """A success: id, custom_id, response{status_code, request_id, body}, error null, x_gonka."""
    record = json.loads(encode_line(result_record(OK)))
    assert record["id"].startswith("batch_req_")
    assert record["custom_id"] == "a.json"
    assert record["response"] == {"status_code": 200, "request_id": "req-1", "body": OK.body}
    assert record["error"] is None
    assert record["x_gonka"] == {
        "endpoint": "http://127.0.0.1:1/v1",
        "transfer_address": "gonka1abc",
        "inference_id": "sig",
        "attempts": 2,
        "latency_s": 0.123457,
        "ttft_s": None,
    }


def test_failure_line_carries_the_error_and_any_http_answer() -> None:
    """A failure has error{code, message}; response is kept only when there was an HTTP answer."""
    record = result_record(FAILED)
    assert record["error"] == {"code": "http_400", "message": "bad"}
    assert record["response"]["status_code"] == 400
    assert result_record(Result("c", error_code="network_error"))["response"] is None


def test_a_line_is_one_line_whatever_the_content() -> None:
    """Newlines inside the answer are escaped: each record is exactly one newline-ended line."""
    line = encode_line(result_record(OK))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1


def test_file_sink_writes_each_line_with_one_os_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every line goes to the kernel in a single write call, never split."""
    calls: list[int] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(batch_results.os, "write", spy)
    sink = FileSink(tmp_path / "r.jsonl")
    lines = [_line("a"), _line("b" * 10_000)]
    for line in lines:
        sink.write_line(line)
    sink.close()
    assert calls == [len(line) for line in lines]
    assert (tmp_path / "r.jsonl").read_bytes() == b"".join(lines)


class _CountingSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.syncs = 0
        self.closed = False

    def write_line(self, line: bytes) -> None:
        self.lines.append(line)

    def sync(self) -> None:
        self.syncs += 1

    def close(self) -> None:
        self.closed = True


def test_writer_syncs_every_n_lines_and_every_t_seconds() -> None:
    """fsync happens after `every_lines` lines, or once `every_s` seconds have passed."""
    now = [0.0]
    sink = _CountingSink()
    writer = ResultsWriter(sink, every_lines=3, every_s=10.0, clock=lambda: now[0])
    for _ in range(7):
        writer.write(OK)
    assert sink.syncs == 2
    now[0] = 11.0
    writer.write(OK)
    assert sink.syncs == 3
    writer.close()
    assert sink.closed
    assert writer.lines == 8


def test_stream_sink_flushes_each_line_and_tolerates_no_fsync() -> None:
    """Results on a pipe (no fsync) are flushed line by line and closing does not fail."""
    stream = io.BytesIO()
    sink = StreamSink(stream)
    line = _line("a")
    sink.write_line(line)
    sink.close()
    assert stream.getvalue() == line


def test_resume_on_a_missing_file_starts_fresh(tmp_path: Path) -> None:
    """No results file yet: nothing is done."""
    assert prepare_resume(tmp_path / "none.jsonl").done == frozenset()


def test_resume_truncates_a_torn_last_line(tmp_path: Path) -> None:
    """A half-written last line is cut away so the next line appends cleanly."""
    path = tmp_path / "r.jsonl"
    good = _line("a") + _line("b")
    path.write_bytes(good + _line("c")[:20])
    state = prepare_resume(path)
    assert state.done == {"a", "b"}
    assert state.dropped_torn
    assert path.read_bytes() == good


def test_resume_drops_failed_and_duplicate_lines(tmp_path: Path) -> None:
    """Failed lines go (to be re-sent), a success is kept once, a torn tail is cut."""
    path = tmp_path / "r.jsonl"
    path.write_bytes(_line("a") + _line("b", ok=False) + _line("a") + _line("c") + _line("d")[:9])
    path.chmod(0o640)
    state = prepare_resume(path)
    assert state.done == {"a", "c"}
    assert (state.dropped_failed, state.dropped_torn) == (2, True)
    assert [r["custom_id"] for r in read_results(path)] == ["a", "c"]
    assert path.read_bytes().endswith(b"\n")
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    "content",
    [
        b'{"a": 1}\n{"b": 2}\n{"c": 3}\n',
        b"garbage\n",
        b'{"custom_id": "q", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n',
        b'{"custom_id": "q", "response": null, "error": null}\n',
        b"\n",
        b'{"custom_id": "one line, no newline"}',
    ],
)
def test_resume_refuses_a_file_that_is_not_a_results_file(tmp_path: Path, content: bytes) -> None:
    """Unrelated JSON lines, a Batch input file, a success without a response, a blank line
    or another file's unterminated last line: refused, the file byte for byte as it was."""
    path = tmp_path / "r.jsonl"
    original = _line("a") + content
    path.write_bytes(original)
    before = path.stat()
    with pytest.raises(UsageError, match="line 2: not a results line"):
        prepare_resume(path)
    assert path.read_bytes() == original
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_resume_leaves_a_clean_file_untouched(tmp_path: Path) -> None:
    """A file of whole successful lines is not rewritten (same inode, same bytes)."""
    path = tmp_path / "r.jsonl"
    content = _line("a") + _line("b")
    path.write_bytes(content)
    inode = path.stat().st_ino
    assert prepare_resume(path).done == {"a", "b"}
    assert path.stat().st_ino == inode
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("custom_id", "name"),
    [
        ("a.json", "a.json"),
        ("sub/dir/a.json", "sub%2Fdir%2Fa.json"),
        ("..\\x", "..%5Cx.json"),
        ("7", "7.json"),
        ("..", "%2E%2E.json"),
        ("a b?", "a%20b%3F.json"),
    ],
)
def test_body_file_names_stay_inside_the_directory(custom_id: str, name: str) -> None:
    """Separators and unsafe characters are percent-encoded; the name ends in .json."""
    assert body_file_name(custom_id) == name


def test_body_file_name_of_a_long_id_is_short_and_distinct() -> None:
    """Very long ids are cut to a prefix plus a hash, so two of them never collide."""
    first, second = body_file_name("x" * 300 + "1"), body_file_name("x" * 300 + "2")
    assert len(first) <= 200
    assert first != second


def test_write_body_file_writes_json_atomically(tmp_path: Path) -> None:
    """The body lands as JSON under its safe name, with no temporary file left."""
    target = write_body_file(tmp_path, "sub/a.json", {"k": "ü"})
    assert target == tmp_path / "sub%2Fa.json"
    assert json.loads(target.read_text(encoding="utf-8")) == {"k": "ü"}
    assert [p.name for p in tmp_path.iterdir()] == ["sub%2Fa.json"]


def test_a_results_file_has_one_writer(tmp_path: Path) -> None:
    """A second open of a locked results file is refused, naming this process; once the
    first is closed the file opens again. A new file is created 0600."""
    path = tmp_path / "r.jsonl"
    first = ResultsFile.open(path)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ResultsBusy, match=f"being written by process {os.getpid()}") as busy:
        ResultsFile.open(path)
    assert busy.value.exit_code == 75
    first.close(remove_if_empty=True)
    assert not path.exists()  # created by this run and never written: gone again
    ResultsFile.open(path).close()
    assert path.exists()


def test_a_failed_write_is_cut_back_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way (the disk fills) leaves no torn line: the part written
    is cut away and the error names the file and the reason."""
    path = tmp_path / "r.jsonl"
    sink = FileSink(path)
    sink.write_line(_line("a"))
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        if len(data) > 10:
            return real_write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch_results.os, "write", half_then_full)
    with pytest.raises(OutputError, match=f"cannot write {path}: No space left on device"):
        sink.write_line(_line("b"))
    monkeypatch.undo()
    sink.close()
    assert [r["custom_id"] for r in read_results(path)] == ["a"]
    assert path.read_bytes().endswith(b"\n")


def test_body_name_clashes_are_found() -> None:
    """`a` and `a.json` share a.json; distinct names do not clash."""
    assert body_name_clash(["x", "a", "b", "a.json"]) == ("a", "a.json", "a.json")
    assert body_name_clash(["a", "b.json", "a/b"]) is None


def test_a_body_file_never_replaces_a_symlink(tmp_path: Path) -> None:
    """A symlink at a body file's name is left alone (OSError), its target untouched, and
    no temporary file is left behind."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.json").symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        write_body_file(tmp_path / "out", "a.json", {"k": 1})
    assert victim.read_text() == "precious"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.json"]


def test_a_resume_rewrite_that_fails_keeps_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rewrite's copy cannot be made durable (the disk is full): OutputError, and the
    original stays byte for byte, with no temporary file left beside it."""
    path = tmp_path / "r.jsonl"
    original = _line("a") + _line("b", ok=False)
    path.write_bytes(original)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch_results.os, "fsync", full)
    with pytest.raises(OutputError, match=r"No space left on device \(the file is as it was\)"):
        prepare_resume(path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]
