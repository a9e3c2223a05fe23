"""All-or-nothing file writes: the one way this package puts a finished file on disk.

A temporary file is made beside the target with ``mkstemp`` (``O_EXCL``, so a symlink
planted under a predictable name is never followed), written, fsynced, given its mode,
and renamed into place; then the directory is fsynced so that the rename survives a
crash. Until the rename the target is untouched, and on any error the temporary file is
removed. Key files, `--output-dir` bodies, merged results and reports all go through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort where directories can't be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def refuse_symlink(path: Path) -> None:
    """Raise ``OSError(EEXIST)`` when `path` is a symbolic link (never replaced)."""
    if path.is_symlink():
        raise OSError(errno.EEXIST, f"{path.name} is a symbolic link, not replaced")


@contextlib.contextmanager
def replacing(
    path: Path, *, mode: int = 0o600, overwrite: bool = True, keep_symlink: bool = False
) -> Iterator[IO[bytes]]:
    """A binary file whose content becomes `path` when the block ends without an error.

    `overwrite=False` raises ``FileExistsError`` when `path` exists (it is linked into
    place, so there is no moment at which another file could be clobbered);
    `keep_symlink=True` refuses (``OSError``) to replace a symbolic link at `path`.
    """
    if keep_symlink:
        refuse_symlink(path)
    temporary: Path | None = None
    try:
        with _stops_held():  # a stop signal waits until the file to remove is known
            fd, name = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp"
            )
            temporary = Path(name)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if keep_symlink:
            refuse_symlink(path)
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    fsync_dir(path.parent)


@contextlib.contextmanager
def _stops_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back for the block (where the platform allows it).

    A stop raises an exception from its handler (`gonka_cli.cli`): arriving between
    ``mkstemp`` and the bookkeeping that removes the file, it would leave the temporary
    copy behind. Held, it is delivered as the block ends, inside the ``try``.
    """
    stops = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
