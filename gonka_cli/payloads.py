"""Request bodies: read exactly as given, from a file, standard input or text."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from gonka_cli.errors import UsageError


@dataclass(frozen=True)
class RawInput:
    """The exact bytes of one input and a name for it in messages ("<stdin>", a path)."""

    data: bytes
    source: str


def read_input(text: str | None, file: str | None, *, what: str = "request body") -> RawInput:
    """The bytes of TEXT or of ``--file PATH|-``: exactly one of them, not empty."""
    if text is not None and file is not None:
        raise UsageError(f"give the {what} either as TEXT or with --file, not both")
    if text is not None:
        data, source = text.encode(), "<text>"
    elif file == "-":
        data, source = _read_stdin(), "<stdin>"
    elif file is not None:
        data, source = read_file(Path(file)), file
    else:
        raise UsageError(f"no {what}: pass TEXT, --file PATH, or --file - for standard input")
    if not data:
        raise UsageError(f"{source}: the {what} is empty")
    return RawInput(data, source)


def read_file(path: Path) -> bytes:
    """A file's bytes, with OS errors turned into one clear line."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def _read_stdin() -> bytes:
    try:
        return sys.stdin.buffer.read()
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"<stdin>: cannot read standard input ({exc})") from None
