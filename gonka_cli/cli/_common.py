"""What every command shares: the error dispatcher, common options, plain output."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from enum import StrEnum
from typing import IO, Annotated, Any, Literal

import typer
from typer.core import TyperGroup

from gonka_cli.errors import ExitCode, GonkaError
from gonka_cli.redact import redact


def _use_color(stream: IO[str]) -> bool:
    return "NO_COLOR" not in os.environ and stream.isatty()


def print_error(message: str, hint: str | None = None) -> None:
    """``error: ...`` (and ``hint: ...``) on stderr; red on a terminal unless NO_COLOR."""
    # A terminal that hung up (SIGHUP) or a closed stderr must not turn the exit code
    # into a crash: the message is lost either way.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        red, yellow, reset = (
            ("\x1b[31m", "\x1b[33m", "\x1b[0m") if _use_color(sys.stderr) else ("",) * 3
        )
        sys.stderr.write(f"{red}error:{reset} {redact(message)}\n")
        if hint:
            sys.stderr.write(f"{yellow}hint:{reset} {redact(hint)}\n")
        sys.stderr.flush()


def warn(message: str) -> None:
    """``warning: ...`` on stderr."""
    yellow, reset = ("\x1b[33m", "\x1b[0m") if _use_color(sys.stderr) else ("", "")
    sys.stderr.write(f"{yellow}warning:{reset} {redact(message)}\n")
    sys.stderr.flush()


def info(message: str) -> None:
    """A plain line on stderr: what was done, for the user, never data."""
    sys.stderr.write(redact(message) + "\n")
    sys.stderr.flush()


def help_markup() -> Literal["rich"] | None:
    """Rich help panels on a terminal; plain help when piped, which also starts 50 ms
    sooner (typer's rich help imports a Markdown parser)."""
    return "rich" if sys.stdout is not None and sys.stdout.isatty() else None


class GonkaGroup(TyperGroup):
    """The one place where expected errors become a message and an exit code."""

    # ctx is typer's vendored click Context, a private type: hence Any.
    def invoke(self, ctx: Any) -> Any:
        try:
            _stop_like_ctrl_c()
            result = super().invoke(ctx)
            sys.stdout.flush()  # what is still buffered fails here, not at exit
            return result
        except (OSError, ValueError, AttributeError) as exc:
            _raise_unless_stdout_broken(exc)
            raise typer.Exit(int(ExitCode.OUTPUT)) from None
        except GonkaError as exc:
            print_error(exc.message, exc.hint)
            raise typer.Exit(int(exc.exit_code)) from None
        except Stopped as exc:
            print_error(f"stopped by {exc.name}")
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:
            _reraise_unless_usage_error(exc)
            raise typer.Exit(int(ExitCode.USAGE)) from None

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        """Parse the group's own options (``gonka --bogus``) with the same one-line errors."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except (OSError, ValueError, AttributeError) as exc:  # --help into a full or closed stdout
            _raise_unless_stdout_broken(exc)
            raise typer.Exit(int(ExitCode.OUTPUT)) from None
        except Exception as exc:
            _reraise_unless_usage_error(exc)
            raise typer.Exit(int(ExitCode.USAGE)) from None


# Every file this package writes turns these into its own error; one that reaches the
# dispatcher bare came from stdout.
_WRITE_ERRORS = {errno.EPIPE, errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT}


def _raise_unless_stdout_broken(exc: Exception) -> None:
    """A stdout that is full (ENOSPC, EFBIG), broken (EPIPE: ``| head -c 10``) or closed
    (``>&-``) is one line and exit 74, as for a batch, never a traceback; any other error
    is re-raised. Decided by trying stdout itself, and by the kind of error."""
    out = sys.stdout
    if out is None or out.closed:
        reason = "it is closed"
    else:
        try:
            out.flush()
        except OSError as broken:
            reason = broken.strerror or str(broken)
        else:  # written out or dropped: a write error no file write of ours lets escape
            if not (isinstance(exc, OSError) and exc.errno in _WRITE_ERRORS):
                raise exc
            reason = exc.strerror or str(exc)
    _silence_stdout()
    print_error(f"cannot write <stdout>: {reason}")


def _silence_stdout() -> None:
    """Point descriptor 1 at /dev/null so that the exit's final flush of what is still
    buffered succeeds quietly (no "Exception ignored" after the error line)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, as Ctrl-C's KeyboardInterrupt is."""

    def __init__(self, number: int) -> None:
        import signal

        super().__init__(number)
        self.name = signal.Signals(number).name
        self.exit_code = 128 + number  # 143, 129: as a shell reports the signal


def _stop_like_ctrl_c() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C: every `finally` runs, so an all-or-nothing
    write (a key file, a keyring entry, a merged results file, a report) removes its
    temporary file instead of leaving a copy of a key or of results behind, and the exit
    is one line. A batch puts its own handlers over these while it runs; a signal that is
    ignored (``nohup``) stays ignored."""
    import signal

    def stop(number: int, frame: object) -> None:
        raise Stopped(number)

    for number in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if number is not None and signal.getsignal(number) is signal.SIG_DFL:
            signal.signal(number, stop)


def _reraise_unless_usage_error(exc: Exception) -> None:
    """Print a click usage error as one ``error:`` line and a hint; re-raise anything else."""
    if not _is_usage_error(exc):
        raise exc
    _print_usage_error(exc)


def _is_usage_error(exc: Exception) -> bool:
    """A click usage error (a bad flag value, an unknown option...), but not the request
    for help that a bare group raises. Matched by name as typer itself does: its click is
    vendored under a private module whose path changes between versions."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "UsageError" in names and "NoArgsIsHelpError" not in names


def _print_usage_error(exc: Exception) -> None:
    """click's usage error as the one ``error:`` line every other error gets, and a hint."""
    context = getattr(exc, "ctx", None)
    path = getattr(context, "command_path", "gonka")
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    print_error(" ".join(str(message).split()), f"see `{path} -h`")


def emit(text: str) -> None:
    """One line of data on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_json(value: Any) -> None:
    """One JSON document on stdout, indented on a terminal, compact when piped."""
    indent = 2 if sys.stdout.isatty() else None
    emit(json.dumps(value, indent=indent, ensure_ascii=False))


class SchemeChoice(StrEnum):
    """Signed-message layouts (docs/protocol.md section 1)."""

    hash = "hash"
    raw = "raw"


FileOpt = Annotated[
    str | None,
    typer.Option(
        "--file", "-f", metavar="PATH|-", help="Read the body from PATH, or stdin with -."
    ),
]
TextArg = Annotated[str | None, typer.Argument(metavar="[TEXT]", help="The body as text.")]
TimestampOpt = Annotated[
    int | None,
    typer.Option(
        "--timestamp", metavar="NS", min=0, help="Timestamp in nanoseconds since the epoch."
    ),
]
TransferOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-account",
        "--transfer-address",
        metavar="ADDR",
        help="The transfer agent's account address that the signature is bound to.",
    ),
]
SchemeOpt = Annotated[
    SchemeChoice,
    typer.Option("--scheme", help="hash (nodes v0.2.6 and later) or raw (older nodes)."),
]
PrivateKeyFileOpt = Annotated[
    str | None,
    typer.Option("--private-key-file", metavar="PATH", help="File holding the hex private key."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        metavar="NAME|ADDRESS",
        help="Sign with this stored key (see `gonka keys list`); first in the key order.",
    ),
]
AccountAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--account-address",
        metavar="ADDR",
        help="Sign with the stored key that has this address (as inferenced).",
    ),
]
PassphraseFileOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase-file",
        metavar="PATH",
        help="Keystore passphrase file (else $GONKA_KEYRING_PASSPHRASE, else a prompt).",
    ),
]
KeyringBackendOpt = Annotated[
    str | None,
    typer.Option(
        "--keyring-backend",
        metavar="test|file",
        help="Use inferenced's keyring (test or file backend; env GONKA_KEYRING_BACKEND).",
    ),
]
KeyringDirOpt = Annotated[
    str | None,
    typer.Option(
        "--keyring-dir",
        metavar="DIR",
        help="inferenced's keyring directory (else --home, $GONKA_KEYRING_DIR, ~/.inference).",
    ),
]
HomeOpt = Annotated[
    str | None,
    typer.Option("--home", metavar="DIR", help="inferenced's home: its keyring is there."),
]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", metavar="NAME", help="The same as --key (inferenced's spelling)."),
]
