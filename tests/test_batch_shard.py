"""`--shard K/N` and `--shard auto`: shards cover the input exactly once, and auto reads
each CI engine's own variables, refusing none, half a pair, bad values and disagreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gonka_cli.batch.inputs import Shard, iter_dir, select
from gonka_cli.batch.shard import detect, resolve_shard
from gonka_cli.cli import app
from gonka_cli.errors import UsageError

ENGINE_VARS = (
    "JOB_COMPLETION_INDEX",
    "GONKA_SHARD_COUNT",
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "CIRCLE_NODE_INDEX",
    "CIRCLE_NODE_TOTAL",
    "BUILDKITE_PARALLEL_JOB",
    "BUILDKITE_PARALLEL_JOB_COUNT",
)


@pytest.fixture
def requests_dir(tmp_path: Path) -> Path:
    """61 request files, a few of them in a subdirectory."""
    for i in range(61):
        where = tmp_path / ("sub" if i % 10 == 0 else "") / f"r{i:03d}.json"
        where.parent.mkdir(exist_ok=True)
        where.write_text(
            json.dumps({"model": "echo", "messages": [{"role": "user", "content": i}]})
        )
    return tmp_path


@pytest.mark.parametrize("count", range(1, 8))
def test_shards_are_disjoint_and_cover_the_whole_input(requests_dir: Path, count: int) -> None:
    """For N = 1..7 the N shards of a directory are disjoint and their union is all of it."""
    everything = [i.custom_id for i in iter_dir(requests_dir, recursive=True)]
    assert len(everything) == 61
    shards = [
        [i.custom_id for i in select(iter_dir(requests_dir, recursive=True), shard=Shard(k, count))]
        for k in range(1, count + 1)
    ]
    union = [custom_id for shard in shards for custom_id in shard]
    assert sorted(union) == sorted(everything)
    assert len(set(union)) == len(union)
    if count > 1:
        assert all(0 < len(shard) < 61 for shard in shards)  # a split, not all in one


@pytest.mark.parametrize(
    ("environ", "index", "engine"),
    [
        ({"JOB_COMPLETION_INDEX": "0", "GONKA_SHARD_COUNT": "3"}, 1, "Kubernetes"),
        ({"JOB_COMPLETION_INDEX": "2", "GONKA_SHARD_COUNT": "3"}, 3, "Kubernetes"),
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}, 1, "GitLab"),
        ({"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}, 3, "GitLab"),
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "3"}, 1, "CircleCI"),
        ({"CIRCLE_NODE_INDEX": "2", "CIRCLE_NODE_TOTAL": "3"}, 3, "CircleCI"),
        ({"BUILDKITE_PARALLEL_JOB": "0", "BUILDKITE_PARALLEL_JOB_COUNT": "3"}, 1, "Buildkite"),
        ({"BUILDKITE_PARALLEL_JOB": "2", "BUILDKITE_PARALLEL_JOB_COUNT": "3"}, 3, "Buildkite"),
    ],
)
def test_auto_reads_each_engines_index_with_its_base(
    environ: dict[str, str], index: int, engine: str
) -> None:
    """Each engine's index is turned into K of N (GitLab's is 1-based, the others 0-based),
    and the line for stderr names the engine and its variables."""
    shard, said = resolve_shard("auto", None, {**environ, "PATH": "/bin"})
    assert shard == Shard(index, 3)
    assert said is not None
    assert engine in said
    assert f"shard {index}/3" in said
    for name, value in environ.items():
        assert f"{name}={value}" in said or name == "GONKA_SHARD_COUNT"


def test_auto_kubernetes_count_from_the_flag_beats_nothing() -> None:
    """Kubernetes gives only the index: --shard-count supplies N."""
    assert resolve_shard("auto", 4, {"JOB_COMPLETION_INDEX": "3"})[0] == Shard(4, 4)


def test_two_engines_that_agree_are_accepted() -> None:
    """GitLab 2/4 and CircleCI index 1 of 4 name the same shard: no conflict."""
    environ = {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "4"}
    environ |= {"CIRCLE_NODE_INDEX": "1", "CIRCLE_NODE_TOTAL": "4"}
    assert detect(environ).shard == Shard(2, 4)


@pytest.mark.parametrize(
    ("environ", "count", "words"),
    [
        ({}, None, "no CI shard index"),
        ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "4", "CIRCLE_NODE_INDEX": "2",
          "CIRCLE_NODE_TOTAL": "4"}, None, "but shard 3/4 from CircleCI"),
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "4", "BUILDKITE_PARALLEL_JOB": "0",
          "BUILDKITE_PARALLEL_JOB_COUNT": "2"}, None, "Buildkite"),
        ({"JOB_COMPLETION_INDEX": "1"}, None, "number of shards is not"),
        ({"CI_NODE_INDEX": "1"}, None, "CI_NODE_TOTAL not"),
        ({"CIRCLE_NODE_TOTAL": "3"}, None, "CIRCLE_NODE_INDEX not"),
        ({"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "4"}, None, "outside 1..4"),
        ({"CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "4"}, None, "outside 1..4"),
        ({"CIRCLE_NODE_INDEX": "4", "CIRCLE_NODE_TOTAL": "4"}, None, "outside 0..3"),
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "0"}, None, "outside"),
        ({"CI_NODE_INDEX": "-1", "CI_NODE_TOTAL": "4"}, None, "not a whole number"),
        ({"CI_NODE_INDEX": "two", "CI_NODE_TOTAL": "4"}, None, "not a whole number"),
        ({"JOB_COMPLETION_INDEX": "4", "GONKA_SHARD_COUNT": "4"}, None, "outside 0..3"),
        ({"JOB_COMPLETION_INDEX": "0", "GONKA_SHARD_COUNT": "0"}, None, "at least 1"),
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "4"}, 3, "count given is 3"),
    ],
)  # fmt: skip
def test_auto_refuses_what_it_cannot_trust(
    environ: dict[str, str], count: int | None, words: str
) -> None:
    """None found, engines that disagree, half a pair, a bad number or an index out of
    range: a usage error naming the variable."""
    with pytest.raises(UsageError) as caught:
        resolve_shard("auto", count, environ)
    assert words in caught.value.message


def test_shard_count_needs_shard_auto() -> None:
    """--shard-count with --shard K/N, or alone, is refused."""
    with pytest.raises(UsageError, match="goes with --shard auto"):
        resolve_shard("1/2", 2, {})
    with pytest.raises(UsageError, match="goes with --shard auto"):
        resolve_shard(None, 2, {})
    assert resolve_shard("2/5", None, {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "4"}) == (
        Shard(2, 5),
        None,
    )


@pytest.mark.parametrize(
    "environ",
    [{}, {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2", "CIRCLE_NODE_INDEX": "1",
          "CIRCLE_NODE_TOTAL": "2"}],
)  # fmt: skip
def test_send_request_shard_auto_refusal_is_exit_2_and_sends_nothing(
    requests_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    """From the command line: one error line, exit 2, no results file, before any node
    (an unreachable one here) is contacted."""
    for name in ENGINE_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app,
        ["send-request", "--dir", str(requests_dir), "--shard", "auto", "--output-file", str(out),
         "--node-address", "http://127.0.0.1:9", "--private-key-file", "/nonexistent"],
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: --shard auto: ")
    assert len(result.stderr.strip().splitlines()) == 2  # the error and its hint
    assert not out.exists()
    assert result.stdout == ""
