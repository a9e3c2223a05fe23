"""The batch progress bar: rich, on stderr, only when stderr is a terminal.

Like :mod:`gonka_cli.render`, this is a module allowed to talk to rich; it is imported
only when a bar is shown, so a batch into a pipe or a log never loads rich.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gonka_cli.batch.stats import Snapshot


def _eta(snapshot: Snapshot) -> str:
    if snapshot.eta_s is None:
        return "ETA -"
    minutes, seconds = divmod(int(snapshot.eta_s), 60)
    return f"ETA {minutes}:{seconds:02d}"


def _status(snapshot: Snapshot) -> str:
    parts = [
        f"[red]{snapshot.failed} failed[/]" if snapshot.failed else "0 failed",
        f"{snapshot.in_flight} in flight",
        f"{snapshot.retries} retries",
        f"{snapshot.rate:.1f}/s",
        _eta(snapshot),
    ]
    if snapshot.paused_s > 0:
        parts.append(f"[yellow]paused {snapshot.paused_s:.0f} s[/]")
    return " · ".join(parts)


class RichProgress:
    """A live bar: done/total, failed, in flight, retries, rate, ETA."""

    def __init__(self, stream: TextIO, *, console: Console | None = None) -> None:
        self._console = console or Console(file=stream, highlight=False)
        self._progress = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=self._console,
            transient=False,
        )
        self._task = self._progress.add_task("batch", total=None, status="starting")
        self._started = False

    def update(self, snapshot: Snapshot) -> None:
        """Move the bar to `snapshot` (the live display starts with the first update)."""
        if not self._started:
            self._started = True
            self._progress.start()
        self._progress.update(
            self._task,
            completed=snapshot.finished,
            total=snapshot.total,
            status=_status(snapshot),
        )

    def close(self, snapshot: Snapshot) -> None:
        """Draw the last state and stop the live display."""
        self.update(snapshot)
        self._progress.stop()
        self._started = False
