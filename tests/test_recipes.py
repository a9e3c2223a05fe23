"""The CI recipes in examples/ run: each is parsed as YAML, and its own shell commands run
as N local processes with the environment its engine would set, against one dev node;
then its merge step, which must find every input exactly once, and its report.

What the test stands in for is only the engine: the install step (`pip install`: the
package under test is already on PATH), the artifact upload and download (all shards
share one working directory), the secrets and the node's address (a dev node here)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from gonka_cli.batch.results import read_results
from gonka_cli.devnode import NodeConfig, start_node
from gonka_cli.keys import SigningKey

EXAMPLES = Path(__file__).parent.parent / "examples"
KEY = SigningKey.from_secret(hashlib.sha256(b"gonka-cli recipe tests").digest())
TIMEOUT_S = 90


@dataclass(frozen=True)
class Run:
    """One shell script to run, and the variables its engine gives it."""

    shell: tuple[str, ...]
    script: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    """One dev node for every recipe (no latency, no faults)."""
    with start_node(NodeConfig()) as node:
        yield node.url


def base_env(tmp_path: Path, node_url: str) -> dict[str, str]:
    """A clean environment (none of this machine's CI variables): our gonka first on PATH,
    a key and a node where the recipe's secrets and variables would be."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "GONKA_HOME": str(tmp_path / "gonka-home"),
        "GONKA_SOURCE_URL": node_url,
        "GONKA_PRIVATE_KEY": KEY.to_hex(),
        "NO_COLOR": "1",
    }


def write_requests(directory: Path, count: int) -> list[str]:
    """`count` echo request files; every third streams."""
    directory.mkdir(parents=True)
    names = []
    for i in range(count):
        body = {
            "model": "echo",
            "messages": [{"role": "user", "content": f"question {i}"}],
            "max_tokens": 8,
            "stream": i % 3 == 0,
        }
        name = f"q-{i:04d}.json"
        (directory / name).write_text(json.dumps(body))
        names.append(name)
    return names


def without_installs(script: str) -> str:
    """The script less its `pip install` lines (the package under test is on PATH)."""
    kept = [line for line in script.splitlines() if not line.strip().startswith("pip install")]
    return "\n".join(kept) + "\n"


def run_all(runs: list[Run], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Start every run at once (the shards run side by side), then wait for all."""
    started = [
        subprocess.Popen(
            [*run.shell, without_installs(run.script)],
            cwd=cwd,
            env=run.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    done = []
    for process in started:
        try:
            out, err = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for other in started:
                other.kill()
            raise
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


class Numbers(HTMLParser):
    """The report page's numbers by their data-k name."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._key = dict(attrs).get("data-k")
        if self._key:
            self.values[self._key] = ""

    def handle_data(self, data: str) -> None:
        if self._key:
            self.values[self._key] += data


def check_merged(results: Path, report: Path, names: list[str]) -> None:
    """Every input exactly once, all succeeded; the report page counts them."""
    records = read_results(results)
    assert sorted(r["custom_id"] for r in records) == sorted(names)
    assert len(records) == len(names)
    assert all(r["error"] is None for r in records)
    page = Numbers()
    page.feed(report.read_text(encoding="utf-8"))
    assert page.values["lines"] == str(len(names))
    assert page.values["succeeded"] == str(len(names))


def check_processes(done: list[subprocess.CompletedProcess[str]]) -> None:
    for process in done:
        assert process.returncode == 0, process.stderr
        assert "Traceback" not in process.stderr


# --- GitHub Actions --------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def github_expand(script: str, context: dict[str, str]) -> str:
    """Replace ``${{ name }}`` by its value; an expression the test does not know fails."""

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in context, f"unexpected expression {match.group(0)}"
        return context[match.group(1)]

    return EXPRESSION.sub(value, script)


def step(job: dict[str, Any], name: str) -> str:
    return str(next(s["run"] for s in job["steps"] if s.get("name") == name))


def test_github_actions_matrix_recipe(tmp_path: Path, node_url: str) -> None:
    """The matrix's shards (--shard K/N from matrix.shard and strategy.job-total) as local
    processes, then the merge job's step: complete, and a report."""
    workflow = yaml.safe_load((EXAMPLES / "github-actions-matrix.yml").read_text())
    env = base_env(tmp_path, node_url)
    names = write_requests(tmp_path / workflow["env"]["REQUESTS_DIR"], 40)
    env["REQUESTS_DIR"] = workflow["env"]["REQUESTS_DIR"]
    send, merge = workflow["jobs"]["send"], workflow["jobs"]["merge"]
    shards = send["strategy"]["matrix"]["shard"]
    assert merge["needs"] == "send"
    assert len(shards) > 1
    bash = ("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c")  # GitHub's `run` shell
    runs = [
        Run(bash, github_expand(step(send, "send shard"), {
            "matrix.shard": str(k), "strategy.job-total": str(len(shards))}), env)
        for k in shards
    ]  # fmt: skip
    check_processes(run_all(runs, tmp_path))
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [
        f"part-{k}.jsonl" for k in shards
    ]
    (merged,) = run_all(
        [Run(bash, github_expand(step(merge, "merge and report"), {}), env)], tmp_path
    )
    check_processes([merged])
    assert "merge: complete" in merged.stderr
    check_merged(tmp_path / "results.jsonl", tmp_path / "report.html", names)


# --- GitLab CI -------------------------------------------------------------------------


def gitlab_script(job: dict[str, Any]) -> str:
    """A job's script lines, run in one shell as GitLab's runner does."""
    return "\n".join(job["script"])


@pytest.mark.parametrize("files", [200])
def test_gitlab_parallel_recipe(tmp_path: Path, node_url: str, files: int) -> None:
    """`parallel: N` as N processes with CI_NODE_INDEX=1..N and CI_NODE_TOTAL=N and
    --shard auto; each says which engine and index it used; the merge job finds every
    input exactly once."""
    pipeline = yaml.safe_load((EXAMPLES / "gitlab-parallel.yml").read_text())
    env = base_env(tmp_path, node_url) | pipeline["variables"]
    names = write_requests(tmp_path / pipeline["variables"]["REQUESTS_DIR"], files)
    send, merge = pipeline["send"], pipeline["merge"]
    total = int(send["parallel"])
    assert total > 1
    assert send["stage"] == "send"
    assert merge["stage"] == "merge"
    bash = ("bash", "-eo", "pipefail", "-c")
    runs = [
        Run(bash, gitlab_script(send), env | {"CI_NODE_INDEX": str(k), "CI_NODE_TOTAL": str(total)})
        for k in range(1, total + 1)
    ]
    done = run_all(runs, tmp_path)
    check_processes(done)
    for k, process in enumerate(done, start=1):
        assert f"shard {k}/{total} from GitLab CI (CI_NODE_INDEX={k}" in process.stderr
    (merged,) = run_all([Run(bash, gitlab_script(merge), env)], tmp_path)
    check_processes([merged])
    assert f"{files} written" in merged.stderr
    assert "merge: complete" in merged.stderr
    check_merged(tmp_path / "results.jsonl", tmp_path / "report.html", names)


# --- Kubernetes Indexed Job ------------------------------------------------------------


def container_env(job: dict[str, Any], data_dir: Path) -> dict[str, str]:
    """The container's plain `value` variables (secrets come from the test), with the
    volume's /data mapped to a local directory."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    plain = {e["name"]: str(e["value"]) for e in container["env"] if "value" in e}
    plain.pop("GONKA_SOURCE_URL", None)  # the cluster's node; the test's dev node instead
    return {k: v.replace("/data", str(data_dir)) for k, v in plain.items()}


def container_script(job: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return tuple(container["command"]), str(container["args"][0])


def test_kubernetes_indexed_job_recipe(tmp_path: Path, node_url: str) -> None:
    """The Indexed Job's pods as processes with JOB_COMPLETION_INDEX=0..N-1 (the count from
    GONKA_SHARD_COUNT, which must equal completions), then the merge Job."""
    send, merge = yaml.safe_load_all((EXAMPLES / "k8s-indexed-job.yaml").read_text())
    assert send["spec"]["completionMode"] == "Indexed"
    completions = int(send["spec"]["completions"])
    data = tmp_path / "data"
    names = write_requests(data / "requests", 40)
    env = base_env(tmp_path, node_url) | container_env(send, data)
    assert env["GONKA_SHARD_COUNT"] == str(completions)
    shell, script = container_script(send)
    runs = [Run(shell, script, env | {"JOB_COMPLETION_INDEX": str(i)}) for i in range(completions)]
    done = run_all(runs, tmp_path)
    check_processes(done)
    for i, process in enumerate(done):
        assert f"shard {i + 1}/{completions} from Kubernetes Indexed Job" in process.stderr
    merge_env = base_env(tmp_path, node_url) | container_env(merge, data)
    (merged,) = run_all([Run(*container_script(merge), merge_env)], tmp_path)
    check_processes([merged])
    check_merged(data / "results.jsonl", data / "report.html", names)
