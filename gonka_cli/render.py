"""Everything a person sees on the terminal; the one module that talks to rich.

One stdout `Console` and one stderr `Console`, made by `make_consoles` and passed in.
On a terminal, output may be styled; piped, it is plain (rich detects it), and
``NO_COLOR`` switches colour off (rich honours it). Streamed text is written as it
arrives and never re-rendered, so a long answer is never duplicated on screen.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gonka_cli.redact import plain, redact, scrub_data


@dataclass(frozen=True)
class Consoles:
    """Data goes to `out` (stdout); everything else to `err` (stderr)."""

    out: Console
    err: Console


def make_consoles(stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> Consoles:
    """The two consoles (tests pass ``io.StringIO`` files)."""
    return Consoles(
        Console(file=stdout or sys.stdout, highlight=False, soft_wrap=True),
        Console(file=stderr or sys.stderr, highlight=False, soft_wrap=True),
    )


class OutputMode(StrEnum):
    """What ``send-request`` prints on stdout."""

    text = "text"
    json = "json"
    raw = "raw"


def _write(console: Console, text: str, style: str | None = None) -> None:
    """Text exactly as given (no markup, no wrapping), styled only on a terminal."""
    try:
        _put(console, text, style)
    except UnicodeEncodeError:
        # A server's "\ud800" JSON escape gives a lone surrogate, which UTF-8 cannot carry:
        # it is shown as that escape again (inside printed JSON, the same JSON).
        _put(console, text.encode("utf-8", "backslashreplace").decode("utf-8"), style)
    console.file.flush()


def _put(console: Console, text: str, style: str | None) -> None:
    if style and console.is_terminal and not console.no_color:
        console.print(Text(text, style=style), end="", soft_wrap=True)
    else:
        console.file.write(text)


class TerminalSink:
    """Shows an answer as it arrives: content on stdout, reasoning dimmed on stderr."""

    def __init__(
        self, consoles: Consoles, mode: OutputMode = OutputMode.text, *, hide_reasoning: bool
    ) -> None:
        self._c = consoles
        self._mode = mode
        self._hide_reasoning = hide_reasoning
        self._last_out = "\n"
        self._last_err = "\n"
        self.printed = False

    def content(self, text: str) -> None:
        """Answer text, on stdout as it arrives (text mode)."""
        if self._mode is OutputMode.text and text:
            self._end_reasoning()
            self._out(text)

    def reasoning(self, text: str) -> None:
        """Reasoning, dimmed on stderr (text mode, unless hidden)."""
        if self._mode is OutputMode.text and text and not self._hide_reasoning:
            _write(self._c.err, text, "dim")
            self._last_err = text[-1]
            self.printed = True

    def raw(self, text: str) -> None:
        """The body or SSE text verbatim (raw mode)."""
        if self._mode is OutputMode.raw and text:
            self._out(text)

    def _out(self, text: str) -> None:
        _write(self._c.out, text)
        self._last_out = text[-1]
        self.printed = True

    def _end_reasoning(self) -> None:
        if self._last_err != "\n":
            _write(self._c.err, "\n")
            self._last_err = "\n"

    def finish(self) -> None:
        """End both streams on a line break, so the shell prompt starts on its own line."""
        self._end_reasoning()
        if self._last_out != "\n":
            _write(self._c.out, "\n")
            self._last_out = "\n"


def print_json(console: Console, value: Any) -> None:
    """One JSON document: indented on a terminal, compact when piped; without the secrets
    in use or C1 controls (`gonka_cli.redact.scrub_data`), whatever the command."""
    indent = 2 if console.is_terminal else None
    _write(console, json.dumps(scrub_data(value), indent=indent, ensure_ascii=False) + "\n")


def print_line(console: Console, text: str, style: str | None = None) -> None:
    """One plain line."""
    _write(console, text + "\n", style)


def notice(console: Console, message: str, level: str = "info") -> None:
    """``warning: ...`` in yellow, or an info line dimmed, on stderr (redacted)."""
    message = redact(message)
    if level == "warning":
        _write(console, "warning:", "yellow")
        _write(console, f" {message}\n")
    else:
        _write(console, f"{message}\n", "dim")


def print_table(
    console: Console,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    title: str | None = None,
) -> None:
    """A table: boxed on a terminal; plain aligned columns, never cut, when piped.

    Cells often hold a server's text (participants, models): escapes and control
    characters are dropped, so a listing cannot retitle or clear the terminal."""
    rows = [[plain(cell, newlines=False) for cell in row] for row in rows]
    if not console.is_terminal:
        _write(console, plain_table(columns, rows))
        return
    table = Table(*columns, title=title, highlight=False)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def plain_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing spaces."""
    lines = [list(columns), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )


def usage_text(usage: Mapping[str, Any] | None, timing: Mapping[str, Any]) -> str:
    """``tokens: 12 in, 30 out, 42 total; first token 0.21 s; total 1.30 s``."""
    parts = []
    if usage:
        parts.append(
            "tokens: {} in, {} out, {} total".format(
                usage.get("prompt_tokens", "?"),
                usage.get("completion_tokens", "?"),
                usage.get("total_tokens", "?"),
            )
        )
    else:
        parts.append("tokens: not reported")
    if timing.get("ttft_s") is not None:
        parts.append(f"first token {timing['ttft_s']:.2f} s")
    parts.append(f"total {timing.get('latency_s', 0):.2f} s")
    return "; ".join(parts)


def print_facts(console: Console, facts: Mapping[str, Any]) -> None:
    """``name: value`` lines on stderr (``-v``), skipping empty values, redacted."""
    for name, value in facts.items():
        if value not in (None, ""):
            _write(console, f"{name}: ", "dim")
            _write(console, f"{redact(str(value))}\n")
