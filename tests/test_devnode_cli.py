"""``gonka node`` on the command line: start-up report, serving, clean stop, bad flags."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pytest
from typer.testing import CliRunner

from gonka_cli.cli import app
from tests.test_devnode_support import body_of, payload, post_signed

runner = CliRunner()


@contextmanager
def node_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`gonka node ARGS` in a subprocess, with the start-up lines it printed on stderr."""
    command = [sys.executable, "-m", "gonka_cli", "node", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        assert process.stderr is not None
        for _ in range(40):  # the banner is a dozen lines at most
            line = process.stderr.readline()
            lines.append(line)
            if not line or line.startswith("Press Ctrl-C"):
                break
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=15)


def stop(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    """Send a signal; return the exit code, stdout and the rest of stderr."""
    process.send_signal(sig)
    out, err = process.communicate(timeout=15)
    return process.returncode, out, err


def test_node_serves_three_tas_and_stops_cleanly_on_ctrl_c() -> None:
    """--participants 3: listed by discovery, each serves its own address; Ctrl-C exits 0."""
    with node_process("--participants", "3") as (process, banner):
        listed = [line.split() for line in banner if line.strip().startswith("participant ")]
        urls = [(fields[2], fields[3]) for fields in listed]
        assert len(urls) == 3
        with httpx2.Client(timeout=10) as client:
            discovery = client.get(urls[0][0] + "/v1/epochs/current/participants").json()
            entries = discovery["active_participants"]["participants"]
            assert [(e["inference_url"], e["index"]) for e in entries] == urls
            for url, address in urls:
                assert post_signed(client, url, payload(), address).status_code == 200
                assert post_signed(client, url, payload(), urls[0][1]).status_code == (
                    200 if address == urls[0][1] else 401
                )
        code, out, err = stop(process, signal.SIGINT)
    assert code == 0
    assert out == ""
    assert "[0] POST /v1/chat/completions -> 200" in err
    assert "gonka node: stopped" in err
    assert "Traceback" not in err


def test_gateway_mode_prints_a_working_api_key_and_stops_on_sigterm() -> None:
    """--mode gateway prints a generated key on stderr that the gateway accepts."""
    with node_process("--mode", "gateway", "--quiet") as (process, banner):
        key = next(line.split()[-1] for line in banner if "api key:" in line)
        url = next(line.split()[-1] for line in banner if "listening on" in line)
        body = body_of(model="echo", messages=[{"role": "user", "content": "hi"}])
        response = httpx2.post(
            url + "/v1/chat/completions",
            content=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert response.status_code == 200
        code, out, err = stop(process, signal.SIGTERM)
    assert (code, out) == (0, "")
    assert "POST" not in err  # --quiet
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "429,fire"], "unknown fault 'fire'"),
        (["--accounts", "/nonexistent/accounts.json"], "no such file"),
        (["--mode", "gateway", "--retired-to", "nowhere"], "is not an http(s) URL"),
    ],
)
def test_bad_flags_exit_2_with_a_message(args: list[str], message: str) -> None:
    """Impossible options end in exit 2 and one error line on stderr, before listening."""
    result = runner.invoke(app, ["node", "--port", "0", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_a_busy_port_is_a_usage_error() -> None:
    """A port already in use is reported with a hint, exit 2."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["node", "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_cli_import_does_not_load_the_server_libraries() -> None:
    """Importing the command line and the devnode package leaves uvicorn and starlette out."""
    code = (
        "import sys, gonka_cli.cli, gonka_cli.devnode;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('uvicorn', 'starlette')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert out.strip() == "[]"


def test_gateway_banner_does_not_repeat_keys_it_was_given() -> None:
    """Keys passed with --api-key are not printed back (only generated ones are shown)."""
    with node_process("--mode", "gateway", "--quiet", "--api-key", "sk-given-SECRET-1") as (
        process,
        banner,
    ):
        assert not any("sk-given-SECRET-1" in line for line in banner)
        assert any("the 1 given with --api-key" in line for line in banner)
        code, out, err = stop(process, signal.SIGINT)
    assert code == 0
    assert "sk-given-SECRET-1" not in out + err
