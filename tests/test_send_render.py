"""What the terminal shows: live text, plain when piped, NO_COLOR, tables, curl commands."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from gonka_cli.cli.send import run_async
from gonka_cli.dryrun import as_curl, as_http
from gonka_cli.endpoints import parse_time_ns
from gonka_cli.errors import Interrupted
from gonka_cli.render import Consoles, OutputMode, TerminalSink, plain_table, usage_text


def consoles(*, terminal: bool) -> tuple[Consoles, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    made = Consoles(
        Console(file=out, force_terminal=terminal, highlight=False),
        Console(file=err, force_terminal=terminal, highlight=False),
    )
    return made, out, err


def feed(sink: TerminalSink) -> None:
    sink.reasoning("thinking [bold]")
    sink.content("Par")
    sink.content("is [red]x[/red]")
    sink.raw("data: {}\n\n")
    sink.finish()


def test_piped_output_is_plain_and_ends_with_a_newline() -> None:
    """Piped: content exactly as sent (no markup), reasoning on stderr, lines closed."""
    made, out, err = consoles(terminal=False)
    feed(TerminalSink(made, hide_reasoning=False))
    assert out.getvalue() == "Paris [red]x[/red]\n"
    assert err.getvalue() == "thinking [bold]\n"


def test_terminal_dims_reasoning_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal reasoning is dimmed; NO_COLOR removes every escape code."""
    made, out, err = consoles(terminal=True)
    feed(TerminalSink(made, hide_reasoning=False))
    assert "\x1b[2m" in err.getvalue()
    assert out.getvalue() == "Paris [red]x[/red]\n"
    monkeypatch.setenv("NO_COLOR", "1")
    made, out, err = consoles(terminal=True)
    feed(TerminalSink(made, hide_reasoning=False))
    assert "\x1b[" not in err.getvalue() + out.getvalue()


def test_hidden_reasoning_and_other_modes() -> None:
    """--hide-reasoning prints none; raw mode prints only raw text; json mode prints nothing."""
    made, out, err = consoles(terminal=False)
    feed(TerminalSink(made, hide_reasoning=True))
    assert err.getvalue() == ""
    made, out, err = consoles(terminal=False)
    sink = TerminalSink(made, OutputMode.raw, hide_reasoning=False)
    feed(sink)
    assert (out.getvalue(), err.getvalue(), sink.printed) == ("data: {}\n\n", "", True)
    made, out, err = consoles(terminal=False)
    sink = TerminalSink(made, OutputMode.json, hide_reasoning=False)
    feed(sink)
    assert (out.getvalue(), err.getvalue(), sink.printed) == ("", "", False)


def test_plain_table_aligns_without_trailing_spaces() -> None:
    """Piped tables are aligned columns, never cut, no trailing whitespace."""
    text = plain_table(("A", "LONG"), [("x" * 50, "1"), ("y", "")])
    assert text.splitlines() == ["A" + " " * 51 + "LONG", "x" * 50 + "  1", "y"]


def test_usage_line() -> None:
    """Tokens, time to first token and total time on one line."""
    text = usage_text(
        {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        {"ttft_s": 0.25, "latency_s": 1.5},
    )
    assert text == "tokens: 1 in, 2 out, 3 total; first token 0.25 s; total 1.50 s"


BODY = '{"content": "it\'s 100% café\\n"}'.encode()
HEADERS = (("Host", "h"), ("Content-Type", "application/json"), ("X-Timestamp", "1"))


def test_curl_command_pipes_exactly_the_signed_bytes(tmp_path: Path) -> None:
    """The printf form feeds curl the exact body: quotes, %, non-ASCII and all."""
    command = as_curl("POST", "http://h/v1/chat/completions", HEADERS, BODY)
    capture = tmp_path / "sent"
    fake_curl = f"curl() {{ cat > '{capture}'; }}\n"
    subprocess.run(["sh", "-c", fake_curl + command], check=True)  # noqa: S607
    assert capture.read_bytes() == BODY
    assert "-H 'X-Timestamp: 1'" in command
    assert "Host:" not in command


def test_curl_with_a_body_file_and_http_form() -> None:
    """An untouched file is sent with --data-binary @FILE; the HTTP form masks bearer keys."""
    command = as_curl("POST", "http://h/v1/x", (), BODY, body_file="my body.json")
    assert command.endswith("--data-binary @'my body.json'")
    http = as_http(
        "POST", "http://h/v1/x", (("Authorization", "Bearer obk-0123456789abcdef"),), b"{}"
    )
    assert http == "POST /v1/x HTTP/1.1\nAuthorization: Bearer ***cdef\n\n{}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, 1_700_000_000 * 10**9),
        (1_700_000_000_123, 1_700_000_000_123 * 10**6),
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123_456_000),
        ("nonsense", None),
        (None, None),
    ],
)
def test_node_time_in_any_unit(value: object, expected: int | None) -> None:
    """/v1/identity timestamps in s, ms or RFC 3339 become nanoseconds."""
    assert parse_time_ns(value) == expected


def test_ctrl_c_becomes_exit_130() -> None:
    """A KeyboardInterrupt inside the async core surfaces as Interrupted (exit 130)."""

    async def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        run_async(interrupted())
    assert caught.value.exit_code == 130
