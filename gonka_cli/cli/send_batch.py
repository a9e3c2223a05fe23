"""The batch side of ``gonka send-request``: its options, and the hand-over to the runner.

``send-request`` turns into a batch with ``--dir``, ``--jsonl``, ``--file`` given more
than once, or any of ``--output-file``, ``--output-dir``, ``--resume``, ``--shard``.
Every request still goes through the single-request client (`gonka_cli.client.Sender`);
the runner is `gonka_cli.batch.plan.run_batch`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gonka_cli.cli._common import warn
from gonka_cli.errors import UsageError

if TYPE_CHECKING:
    from gonka_cli.batch.plan import BatchPlan
    from gonka_cli.client import Notice
    from gonka_cli.keys import SigningKey
    from gonka_cli.payloads import Overrides
    from gonka_cli.settings import Settings

BATCH = "Batch (many requests)"

FilesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--file",
        "-f",
        metavar="PATH|-",
        help="Read the body from PATH, or stdin with -. Repeat to send several as a batch.",
    ),
]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        metavar="DIR",
        help="Send every *.json file in DIR (sorted); custom_id = path in DIR.",
        rich_help_panel=BATCH,
    ),
]
RecursiveOpt = Annotated[
    bool, typer.Option("--recursive", help="With --dir: descend.", rich_help_panel=BATCH)
]
GlobOpt = Annotated[
    str,
    typer.Option(
        "--glob", metavar="PATTERN", help="With --dir: which files.", rich_help_panel=BATCH
    ),
]
JsonlOpt = Annotated[
    str | None,
    typer.Option(
        "--jsonl",
        metavar="PATH|-",
        help="OpenAI Batch input lines, or one body per line (custom_id = line number).",
        rich_help_panel=BATCH,
    ),
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="K/N|auto",
        help="Send only shard K of N (stable split by custom_id); auto: from the CI's index.",
        rich_help_panel=BATCH,
    ),
]
ShardCountOpt = Annotated[
    int | None,
    typer.Option(
        "--shard-count",
        metavar="N",
        min=1,
        help="With --shard auto under a Kubernetes Indexed Job: N shards ($GONKA_SHARD_COUNT).",
        rich_help_panel=BATCH,
    ),
]
OutputFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--output-file",
        metavar="PATH",
        help="Results JSONL (OpenAI Batch output format); default stdout.",
        rich_help_panel=BATCH,
    ),
]
OutputDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        metavar="DIR",
        help="Also write each response body to DIR/<custom_id>.json.",
        rich_help_panel=BATCH,
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue --output-file: send only inputs without a successful line.",
        rich_help_panel=BATCH,
    ),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        "-j",
        metavar="N",
        min=1,
        help="Requests in flight at once.",
        rich_help_panel=BATCH,
    ),
]
RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate",
        metavar="R",
        min=0.001,
        help="At most R requests per second.",
        rich_help_panel=BATCH,
    ),
]
FailFastOpt = Annotated[
    bool,
    typer.Option("--fail-fast", help="Stop at the first failure.", rich_help_panel=BATCH),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display.", rich_help_panel=BATCH)
]


@dataclass(frozen=True)
class BatchArgs:
    """The batch options as given on the command line."""

    files: tuple[str, ...] = ()
    directory: Path | None = None
    recursive: bool = False
    glob: str = "*.json"
    jsonl: str | None = None
    shard: str | None = None
    output_file: Path | None = None
    output_dir: Path | None = None
    resume: bool = False
    concurrency: int = 8
    rate: float | None = None
    fail_fast: bool = False
    quiet: bool = False
    shard_count: int | None = None

    def requested(self) -> bool:
        """Whether these options ask for a batch rather than a single request."""
        return bool(
            self.directory is not None
            or self.jsonl is not None
            or len(self.files) > 1
            or self.output_file is not None
            or self.output_dir is not None
            or self.resume
            or self.shard is not None
            or self.shard_count is not None
        )

    def single_file(self) -> str | None:
        """The one ``--file`` of a single request (None when not given)."""
        return self.files[0] if self.files else None

    def plan(self, overrides: Overrides) -> BatchPlan:
        """The runner's plan."""
        from gonka_cli.batch.plan import BatchPlan, BatchSource
        from gonka_cli.batch.shard import resolve_shard

        shard, found = resolve_shard(self.shard, self.shard_count, os.environ)
        if found is not None:  # --shard auto says which engine's index it used
            _info(found)
        source = BatchSource(self.directory, self.recursive, self.glob, self.files, self.jsonl)
        return BatchPlan(
            source,
            shard=shard,
            output_file=self.output_file,
            output_dir=self.output_dir,
            resume=self.resume,
            concurrency=self.concurrency,
            rate=self.rate,
            fail_fast=self.fail_fast,
            quiet=self.quiet,
            overrides=overrides,
        )


def refuse_single_only(*, text: bool, dry_run: bool, timestamp: bool, output: str) -> None:
    """Options of a single request that a batch cannot honour."""
    if text:
        raise UsageError("a batch takes its bodies from --dir, --jsonl or --file, not TEXT")
    if dry_run:
        raise UsageError("--dry-run shows one request; give a single --file")
    if timestamp:
        raise UsageError(
            "--timestamp would sign every request and retry alike: the node refuses replays"
        )
    if output != "text":
        raise UsageError("--output applies to a single request; a batch writes JSONL results")


@dataclass(frozen=True)
class BatchJob:
    """A batch after parsing: the same ``run(settings, dev=, dev_key=)`` as a single job."""

    args: BatchArgs
    overrides: Overrides
    verbose: bool = False

    def run(
        self, settings: Settings, *, dev: bool = False, dev_key: SigningKey | None = None
    ) -> None:
        """Resolve keys and endpoints, then run the batch (raises PartialFailure/Interrupted)."""
        from gonka_cli.batch.plan import client_sender, run_batch
        from gonka_cli.settings import AuthMode, send_config

        plan = self.args.plan(self.overrides)
        mode = AuthMode.SIGNATURE if dev else None
        config = send_config(settings, mode=mode, dev_key=dev_key)
        run_batch(plan, client_sender(config, on_notice=self._notice), stderr=sys.stderr)

    def _notice(self, note: Notice) -> None:
        if note.level == "warning":
            warn(note.message)
        elif self.verbose:
            _info(note.message)


def _info(message: str) -> None:
    from gonka_cli.redact import redact

    sys.stderr.write(redact(message) + "\n")
    sys.stderr.flush()
