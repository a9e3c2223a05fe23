"""Nothing lost, ever: batch results against a second writer, signals, full disks and traps.

Real `gonka send-request` processes against a dev node whose answers take 150 ms (so a
run can be caught in the middle), each scenario checked against the node's own
``accepted`` counter: every answer the node accepted is in the results file exactly
once, and every line of the file parses. The scenarios: two runs on one file and a
``--resume`` racing a run; SIGTERM and SIGHUP at seeded points, ``timeout -s TERM``, a
terminal that hangs up, and ``nohup``; a disk filling up (``RLIMIT_FSIZE``: writes past
the limit fail with EFBIG, no root or FUSE needed); ``/dev/full``; a closed, full or
broken stdout; planted symlinks; ids whose body files would collide; a results file
inside ``--dir``; a 2 GB input.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import random
import resource
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gonka_cli.devnode import NodeConfig, start_node
from tests.test_batch_devnode import KEY, check_one_correct_line_each, write_bodies

LATENCY_MS = 150
SIGNAL_SEED = 20_261_130


@pytest.fixture(scope="module")
def node() -> Iterator[Any]:
    """One TA whose answers take 150 ms: slow enough to stop a run in the middle."""
    with start_node(NodeConfig(latency_ms=LATENCY_MS)) as running:
        yield running


def gonka(node: Any, *args: str) -> list[str]:
    """A `gonka send-request` command line against `node`, quiet."""
    head = [sys.executable, "-m", "gonka_cli", "send-request", "--node-address", node.url]
    return [*head, "-q", *args]


def env(tmp_path: Path) -> dict[str, str]:
    """The test's environment without GONKA_* leaking in, plus a signing key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GONKA_")}
    home = str(tmp_path / "home")
    return {
        **clean,
        "GONKA_HOME": home,
        "GONKA_PRIVATE_KEY": KEY.to_hex(),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def start(command: list[str], tmp_path: Path, **kw: Any) -> subprocess.Popen[bytes]:
    """Start `command` with stderr (and by default stdout) captured."""
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(command, env=env(tmp_path), stderr=subprocess.PIPE, **kw)


def run(command: list[str], tmp_path: Path, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    """Run `command` to the end (bounded), output captured."""
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        command, env=env(tmp_path), stderr=subprocess.PIPE, timeout=60, check=False, **kw
    )


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    """Wait (at most 20 s) for `ready`, while `process` still runs."""
    deadline = time.monotonic() + 20
    while not ready():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within 20 s"
        time.sleep(0.005)


def lines_at_least(out: Path, count: int) -> Callable[[], bool]:
    """A `wait_until` test: `out` holds `count` whole lines."""
    return lambda: out.exists() and out.read_bytes().count(b"\n") >= count


def records(out: Path) -> list[dict[str, Any]]:
    """Every line of `out`, each required to parse (no torn tail), ids all distinct."""
    data = out.read_bytes() if out.exists() else b""
    assert data == b"" or data.endswith(b"\n"), "the file ends in a torn line"
    parsed = [json.loads(line) for line in data.splitlines()]
    ids = [record["custom_id"] for record in parsed]
    assert len(ids) == len(set(ids)), "a custom_id appears twice"
    return parsed


def accepted(node: Any) -> int:
    """The node's count of answered (accepted, billed) requests, once it has settled."""
    time.sleep(LATENCY_MS / 1000 + 0.2)  # a cancelled request's handler may still finish
    return int(node.stats.accepted)


def successes(out: Path) -> int:
    """Successful lines in `out` (each checked to parse and be unique)."""
    return sum(record["error"] is None for record in records(out))


def error_lines(stderr: bytes) -> list[str]:
    """The ``error:`` lines of a run's stderr, after checking there is no traceback."""
    text = stderr.decode()
    assert "Traceback" not in text
    assert "Exception ignored" not in text
    return [line for line in text.splitlines() if line.startswith("error:")]


# --- one writer per results file -------------------------------------------------------


def test_a_second_run_and_a_racing_resume_are_refused_at_once(node: Any, tmp_path: Path) -> None:
    """While a run writes r.jsonl, a second run and a --resume on it exit 75 at once, naming
    the file and the first run's pid, sending nothing and leaving the file alone; the
    first run finishes with every input exactly once."""
    names = write_bodies(tmp_path / "in", 40)
    (tmp_path / "in" / "q-0000.json").write_text("not json")  # a failed line, written first
    out = tmp_path / "r.jsonl"
    args = ["--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "2"]
    before = node.stats.accepted
    first = start(gonka(node, *args), tmp_path)
    try:
        wait_until(lines_at_least(out, 3), first, "3 lines")
        inode = out.stat().st_ino
        racers = [start(gonka(node, *args, *extra), tmp_path) for extra in ([], ["--resume"])]
        for racer in racers:
            stdout, stderr = racer.communicate(timeout=30)
            assert racer.returncode == 75, stderr.decode()
            (line,) = error_lines(stderr)
            assert str(out) in line
            assert f"process {first.pid}" in line
            assert stdout == b""
        assert first.poll() is None  # refused while the first run was still sending
        assert out.stat().st_ino == inode  # a resume would have rewritten it
        _, stderr = first.communicate(timeout=60)
    finally:
        first.kill() if first.poll() is None else None
    assert first.returncode == 8, stderr.decode()
    check_one_correct_line_each_but_first(out, names)
    assert accepted(node) - before == 39 == successes(out)


def check_one_correct_line_each_but_first(out: Path, names: list[str]) -> None:
    """`names[0]` has its failed line; every other name one correct line."""
    by_id = {record["custom_id"]: record for record in records(out)}
    assert sorted(by_id) == names
    assert by_id.pop(names[0])["error"]["code"] == "invalid_input"
    rest = out.with_suffix(".rest")
    rest.write_text("".join(json.dumps(r) + "\n" for r in by_id.values()))
    check_one_correct_line_each(rest, names[1:])


# --- signals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "seed"),
    [("SIGTERM", 143, 1), ("SIGHUP", 129, 2)],
)
def test_sigterm_and_sighup_keep_every_accepted_answer(
    node: Any, tmp_path: Path, name: str, code: int, seed: int
) -> None:
    """SIGTERM or SIGHUP after a seeded number of lines: requests in flight finish, the
    summary prints, the exit is 143 or 129, and the file holds exactly the answers the
    node accepted; --resume then completes every input exactly once."""
    names = write_bodies(tmp_path / "in", 32)
    out = tmp_path / "r.jsonl"
    args = ["--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "4"]
    point = random.Random(SIGNAL_SEED + seed).randint(1, 20)  # noqa: S311  # not a secret
    before = node.stats.accepted
    process = start(gonka(node, *args), tmp_path)
    try:
        wait_until(lines_at_least(out, point), process, f"{point} lines")
        process.send_signal(getattr(signal, name))
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == code, stderr.decode()
    assert f"interrupted by {name}" in stderr.decode()
    assert "not done" in stderr.decode()
    assert point <= successes(out) == accepted(node) - before < 32
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)
    finish = run(gonka(node, *args, "--resume"), tmp_path)
    assert finish.returncode == 0, finish.stderr.decode()
    check_one_correct_line_each(out, names)
    assert accepted(node) - before == 32


def test_a_repeated_sigterm_still_lets_requests_in_flight_finish(
    node: Any, tmp_path: Path
) -> None:
    """`timeout` signals the process group as well as the child, so one stop arrives as two
    SIGTERMs: the second must not cancel the requests in flight (the node answers them and
    bills them, so their lines must be written)."""
    write_bodies(tmp_path / "in", 32)
    out = tmp_path / "r.jsonl"
    args = ["--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "4"]
    before = node.stats.accepted
    process = start(gonka(node, *args), tmp_path)
    try:
        wait_until(lines_at_least(out, 4), process, "4 lines")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.03)  # apart enough to be two signals, well inside the 150 ms answers
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == 143, stderr.decode()
    assert "were cancelled" not in stderr.decode()
    assert 4 <= successes(out) == accepted(node) - before < 32


def test_timeout_term_against_a_slow_node_prints_the_summary(node: Any, tmp_path: Path) -> None:
    """`timeout -s TERM 3 gonka send-request --dir ...`: the summary prints and the file
    holds exactly the answers the node accepted."""
    write_bodies(tmp_path / "in", 60)
    out = tmp_path / "r.jsonl"
    before = node.stats.accepted
    command = ["timeout", "-s", "TERM", "3"]
    command += gonka(node, "--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "2")
    result = run(command, tmp_path)
    assert result.returncode == 124, result.stderr.decode()  # timeout: "I had to stop it"
    assert "interrupted by SIGTERM" in result.stderr.decode()
    assert "succeeded" in result.stderr.decode()
    assert 0 < successes(out) == accepted(node) - before < 60


# --- write failures --------------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_filling_disk_is_an_error_and_resume_repairs_a_torn_tail_in_place(
    node: Any, tmp_path: Path
) -> None:
    """Files may not grow past 4 kB (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC): exit
    74 with one line and the summary, the file cut back to whole lines; a torn tail that
    fills the file to its limit is cut away by --resume in place, under the same limit;
    then, with room, --resume finishes every input exactly once."""
    limit = 4000
    names = write_bodies(tmp_path / "in", 16)
    out = tmp_path / "r.jsonl"
    args = ["--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "2"]
    before = node.stats.accepted
    full = run(gonka(node, *args), tmp_path, preexec_fn=_file_size_limit(limit))
    assert full.returncode == 74, full.stderr.decode()
    assert error_lines(full.stderr) == [f"error: cannot write {out}: File too large"]
    assert "succeeded" in full.stderr.decode()
    kept = successes(out)
    assert 0 < kept == out.read_bytes().count(b"\n")
    assert 0 <= accepted(node) - before - kept <= 2  # at most the requests in flight

    with out.open("ab") as handle:  # a torn line up to the very limit
        handle.write(b'{"id":"batch_req_' + b"x" * (limit - out.stat().st_size - 17))
    assert out.stat().st_size == limit
    repaired = run(gonka(node, *args, "--resume"), tmp_path, preexec_fn=_file_size_limit(limit))
    assert repaired.returncode == 74, repaired.stderr.decode()
    assert b"removed a torn last line" in repaired.stderr
    assert successes(out) == kept  # whole lines again, nothing lost

    finish = run(gonka(node, *args, "--resume"), tmp_path)
    assert finish.returncode == 0, finish.stderr.decode()
    check_one_correct_line_each(out, names)


def test_dev_full_as_output_file_or_stdout(node: Any, tmp_path: Path) -> None:
    """--output-file /dev/full, or stdout on /dev/full: one line naming it, exit 74."""
    write_bodies(tmp_path / "in", 3)
    result = run(gonka(node, "--dir", str(tmp_path / "in"), "--output-file", "/dev/full"), tmp_path)
    assert result.returncode == 74
    assert error_lines(result.stderr) == ["error: cannot write /dev/full: No space left on device"]
    with open("/dev/full", "wb") as full:
        result = run(gonka(node, "--dir", str(tmp_path / "in")), tmp_path, stdout=full)
    assert result.returncode == 74
    assert error_lines(result.stderr) == ["error: cannot write <stdout>: No space left on device"]


def test_a_closed_stdout_is_refused_before_anything_is_sent(node: Any, tmp_path: Path) -> None:
    """Standard output closed and no --output-file: exit 74 up front, nothing sent."""
    write_bodies(tmp_path / "in", 3)
    before = node.stats.received
    result = run(
        gonka(node, "--dir", str(tmp_path / "in")),
        tmp_path,
        stdout=None,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 74, result.stderr.decode()
    assert error_lines(result.stderr) == ["error: cannot write <stdout>: standard output is closed"]
    assert node.stats.received == before


def test_a_closed_pipe_like_head_c_10(node: Any, tmp_path: Path) -> None:
    """`| head -c 10`: the reader goes away; one line, exit 74, no traceback at exit."""
    write_bodies(tmp_path / "in", 60)  # far more than a pipe buffer holds in time
    process = start(gonka(node, "--dir", str(tmp_path / "in"), "-j", "2"), tmp_path)
    try:
        assert process.stdout is not None
        assert process.stdout.read(10) == b'{"id":"bat'
        process.stdout.close()
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == 74, stderr.decode()
    assert error_lines(stderr) == ["error: cannot write <stdout>: Broken pipe"]
    assert "succeeded" in stderr.decode()


# --- files in the way ------------------------------------------------------------------


def test_planted_symlinks_redirect_nothing(node: Any, tmp_path: Path) -> None:
    """Symlinks planted at the temporary names the resume rewrite and --output-dir used to
    use (NAME.<pid>.tmp), and at a body file's own name: every victim keeps its bytes, the
    body behind a symlink fails alone, the rewrite keeps the file's permissions."""
    names = write_bodies(tmp_path / "in", 4)
    (tmp_path / "in" / "q-0003.json").write_text("not json")  # a failed line to rewrite
    out, bodies = tmp_path / "r.jsonl", tmp_path / "bodies"
    args = ["--dir", str(tmp_path / "in"), "--output-file", str(out), "--output-dir", str(bodies)]
    assert run(gonka(node, *args), tmp_path).returncode == 8
    lost = (f'"{names[0]}"'.encode(), f'"{names[1]}"'.encode())  # in a crash: sent again
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(line for line in lines if not any(id in line for id in lost)))
    out.chmod(0o640)
    victims = {name: tmp_path / f"victim-{name}" for name in ("resume", "body", "final")}
    for victim in victims.values():
        victim.write_bytes(b"precious\n")
    (bodies / names[1]).unlink()
    (bodies / names[1]).symlink_to(victims["final"])

    def plant() -> None:  # in the child: its pid is the one the old names used
        pid = os.getpid()
        (tmp_path / f".r.jsonl.resume-{pid}.tmp").symlink_to(victims["resume"])
        (bodies / f".{names[0]}.{pid}.tmp").symlink_to(victims["body"])

    resumed = run(gonka(node, *args, "--resume"), tmp_path, preexec_fn=plant)
    assert resumed.returncode == 8, resumed.stderr.decode()
    assert b"removed 1 failed line(s)" in resumed.stderr  # the rewrite ran
    assert all(victim.read_bytes() == b"precious\n" for victim in victims.values())
    assert (bodies / names[1]).is_symlink()
    by_id = {record["custom_id"]: record for record in records(out)}
    assert by_id[names[1]]["error"]["code"] == "output_error"
    assert "symbolic link" in by_id[names[1]]["error"]["message"]
    assert by_id[names[0]]["error"] is None
    assert out.stat().st_mode & 0o777 == 0o640
    assert (bodies / names[0]).stat().st_mode & 0o777 == 0o600


def test_resume_through_a_symlinked_results_file_is_refused(node: Any, tmp_path: Path) -> None:
    """A results path that is a symlink, when --resume must rewrite: exit 2, nothing sent,
    the link and the file behind it as they were."""
    write_bodies(tmp_path / "in", 2)
    (tmp_path / "in" / "q-0009.json").write_text("not json")
    real, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    args = ["--dir", str(tmp_path / "in"), "--output-file"]
    assert run(gonka(node, *args, str(real)), tmp_path).returncode == 8
    link.symlink_to(real)
    content, received = real.read_bytes(), node.stats.received
    result = run(gonka(node, *args, str(link), "--resume"), tmp_path)
    assert result.returncode == 2
    assert "symbolic link" in error_lines(result.stderr)[0]
    assert link.is_symlink()
    assert real.read_bytes() == content
    assert node.stats.received == received


def test_resume_on_a_file_that_is_not_results_leaves_it_byte_for_byte(
    node: Any, tmp_path: Path
) -> None:
    """An OpenAI Batch input file given as --output-file with --resume: exit 2, the file
    exactly as it was, nothing sent."""
    batch_input = tmp_path / "batch_input.jsonl"
    line = {"custom_id": "t", "method": "POST", "url": "/v1/chat/completions", "body": {}}
    batch_input.write_text(json.dumps(line) + "\n" + json.dumps(line | {"custom_id": "u"}))
    write_bodies(tmp_path / "in", 2)
    content, mtime = batch_input.read_bytes(), batch_input.stat().st_mtime_ns
    received = node.stats.received
    args = ["--dir", str(tmp_path / "in"), "--output-file", str(batch_input), "--resume"]
    result = run(gonka(node, *args), tmp_path)
    assert result.returncode == 2
    assert "not a results line" in error_lines(result.stderr)[0]
    assert (batch_input.read_bytes(), batch_input.stat().st_mtime_ns) == (content, mtime)
    assert node.stats.received == received


def test_ids_sharing_a_body_file_are_refused_up_front(node: Any, tmp_path: Path) -> None:
    """custom_ids `a` and `a.json` would share --output-dir's a.json: refused before sending
    (exit 2); from standard input, which cannot be read twice, the second fails alone."""
    body = {"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    lines = [{"custom_id": cid, "body": body | {"messages": [{"role": "user", "content": cid}]}}
             for cid in ("a", "a.json")]  # fmt: skip
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    bodies, received = tmp_path / "bodies", node.stats.received
    args = ["--output-dir", str(bodies), "--output-file"]
    refused = run(gonka(node, "--jsonl", str(jsonl), *args, str(tmp_path / "r.jsonl")), tmp_path)
    assert refused.returncode == 2
    (line,) = error_lines(refused.stderr)
    assert "'a' and 'a.json'" in line
    assert node.stats.received == received
    assert not bodies.exists()
    assert not (tmp_path / "r.jsonl").exists()

    piped = run(
        gonka(node, "--jsonl", "-", *args, str(tmp_path / "s.jsonl")),
        tmp_path,
        input=jsonl.read_bytes(),
    )
    assert piped.returncode == 8
    by_id = {record["custom_id"]: record for record in records(tmp_path / "s.jsonl")}
    assert "already holds the answer of custom_id 'a'" in by_id["a.json"]["error"]["message"]
    answer = json.loads((bodies / "a.json").read_text())
    assert answer["choices"][0]["message"]["content"] == "Echo: a"


def test_a_results_file_inside_the_input_dir_is_not_an_input(node: Any, tmp_path: Path) -> None:
    """--output-file inside --dir (and matched by --glob): skipped with a note, run after
    run, so a resume of a finished batch exits 0 with nothing to send."""
    names = write_bodies(tmp_path / "in", 3)
    out = tmp_path / "in" / "results.json"
    args = ["--dir", str(tmp_path / "in"), "--glob", "*", "--output-file", str(out)]
    first = run(gonka(node, *args), tmp_path)
    assert first.returncode == 0, first.stderr.decode()
    again = run(gonka(node, *args, "--resume"), tmp_path)
    assert again.returncode == 0, again.stderr.decode()
    assert b"is an output of this batch: not sent" in again.stderr
    check_one_correct_line_each(out, names)


def test_a_two_gigabyte_input_is_refused_from_its_size(node: Any, tmp_path: Path) -> None:
    """A sparse 2 GB request file is refused from its size, unread: alone in a batch (a
    failed line) and as a single --file (exit 2), quickly and in little memory."""
    names = write_bodies(tmp_path / "in", 2)
    huge = tmp_path / "in" / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(2 * 1024**3)
    out = tmp_path / "r.jsonl"
    started = time.monotonic()
    batch = run(gonka(node, "--dir", str(tmp_path / "in"), "--output-file", str(out)), tmp_path)
    assert batch.returncode == 8
    by_id = {record["custom_id"]: record for record in records(out)}
    assert "over 10 MiB" in by_id["huge.json"]["error"]["message"]
    assert all(by_id[name]["error"] is None for name in names)
    single = run(gonka(node, "--file", str(huge)), tmp_path)
    assert single.returncode == 2
    assert "over 10 MiB" in error_lines(single.stderr)[0]
    assert time.monotonic() - started < 20
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kib < 400 * 1024


def test_the_terminal_going_away_is_a_clean_sighup(node: Any, tmp_path: Path) -> None:
    """The batch's controlling terminal (its stderr, with the live bar) hangs up: SIGHUP,
    then every write to the terminal fails (EIO). The run still stops cleanly, exit 129,
    the file holding exactly the answers the node accepted."""
    write_bodies(tmp_path / "in", 40)
    out = tmp_path / "r.jsonl"
    master, slave = pty.openpty()

    def controlling_terminal() -> None:  # in the child, a session leader: take the pty
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    before = node.stats.accepted
    command = gonka(node, "--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "2")
    command.remove("-q")  # the live bar, drawn on the terminal
    process = subprocess.Popen(
        command,
        env=env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    os.set_blocking(master, False)
    enough = lines_at_least(out, 4)

    def drained_and_enough() -> bool:  # read what the bar draws, so the pty never fills
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(master, 65536)
        return enough()

    try:
        wait_until(drained_and_enough, process, "4 lines")
        os.close(master)  # the terminal window is closed
        process.wait(timeout=30)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == 129
    assert 4 <= successes(out) == accepted(node) - before < 40


def test_nohup_still_means_no_hang_up(node: Any, tmp_path: Path) -> None:
    """Started with SIGHUP ignored (`nohup`), a batch keeps going through a SIGHUP and
    finishes every input."""
    names = write_bodies(tmp_path / "in", 12)
    out = tmp_path / "r.jsonl"
    command = gonka(node, "--dir", str(tmp_path / "in"), "--output-file", str(out), "-j", "2")
    process = start(
        command, tmp_path, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)
    )
    try:
        wait_until(lines_at_least(out, 2), process, "2 lines")
        process.send_signal(signal.SIGHUP)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == 0, stderr.decode()
    check_one_correct_line_each(out, names)
