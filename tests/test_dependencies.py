"""httpx2 only: the installed package neither imports nor requires httpx, httpcore, httpx-sse."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

from tests import vectors as v

REPO = Path(__file__).resolve().parent.parent
REQUEST = str(REPO / "inference-requests" / "request_payload.json")
RETIRED = {"httpx", "httpcore", "httpx-sse", "httpx_sse"}

# Runs the installed console entry point in this interpreter, then writes out which
# modules the run imported, whatever the command's exit status.
WRAPPER = """
import json, sys
from gonka_cli.cli import main
report, sys.argv = sys.argv[1], ["gonka", *sys.argv[2:]]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
with open(report, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def test_send_request_dev_imports_neither_httpx_nor_httpx_sse(tmp_path: Path) -> None:
    """A whole `gonka send-request --dev` (node, signing, HTTP, answer) loads no httpx."""
    report = tmp_path / "modules.json"
    env = {k: val for k, val in os.environ.items() if not k.startswith("GONKA_")}
    env |= {"GONKA_HOME": str(tmp_path / "home"), "GONKA_PRIVATE_KEY": v.PRIVATE_KEY_HEX}
    argv = [sys.executable, "-c", WRAPPER, str(report), "send-request", "--dev", "--file", REQUEST]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    result = json.loads(report.read_text())
    assert result["code"] == 0, done.stderr
    assert "capital city of France" in done.stdout
    modules = set(result["modules"])
    assert "httpx2" in modules  # the request did go through the HTTP client
    loaded = sorted(m for m in modules if m.split(".")[0] in RETIRED)
    assert loaded == []


def _name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def test_installed_metadata_requires_no_httpx_httpcore_or_httpx_sse() -> None:
    """gonka-cli's installed runtime requirements name httpx2, and none of the retired ones.

    (The `test` extra lists httpx for the official gonka-openai SDK alone, which imports
    it without declaring it; nothing of gonka-cli does, as the test above shows.)
    """
    listed = requires("gonka-cli") or []
    runtime = {_name(r) for r in listed if "extra ==" not in r.replace('"', "'")}
    assert "httpx2" in runtime
    assert runtime.isdisjoint({"httpx", "httpcore", "httpx-sse"})
    extras = {_name(r) for r in listed if "extra == 'bench'" in r.replace('"', "'")}
    assert extras == {"aiohttp"}  # the benchmarks' extra adds no HTTP client but aiohttp
