"""Reading key files safely: regular files only, bounded, and who else can read them.

Shared by gonka's keystore and the `inferenced` keyring; small on purpose, so that the
keyring's ``test`` backend does not pay for the keystore's imports on `gonka sign`.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

MAX_FILE_BYTES = 1 << 20


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, at most `limit`; never blocks on a FIFO or a device.

    Opened with O_NONBLOCK (a FIFO with no writer would otherwise hang the open) and
    checked with fstat on the open descriptor, so a file swapped for a FIFO, a device
    or a socket between a listing and the open is refused too. OSError otherwise:
    FileNotFoundError, or an OSError whose strerror says what the path is instead.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise OSError(errno.EINVAL, f"{kind} (FIFO, device or socket are refused)")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return b"".join(chunks)


SMALL_SECRET_BYTES = 64 * 1024


def read_small(path: Path, limit: int = SMALL_SECRET_BYTES) -> bytes:
    """The bytes of a passphrase, key or API key file, at most `limit`.

    Unlike `read_regular`, a FIFO is read (``--passphrase-file <(pass show x)`` is one),
    but never more than `limit` bytes: ``/dev/zero`` or an endless pipe given by mistake
    was read whole, until the kernel killed the process for its memory. OSError when the
    file is larger (EFBIG), a directory, or unreadable.
    """
    with open(path, "rb") as handle:
        if stat.S_ISDIR(os.fstat(handle.fileno()).st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return data


def exposure_warning(path: Path) -> str | None:
    """A warning when `path` (a key file or its directory) is readable by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if sys.platform == "win32" or not mode & 0o077:
        return None
    fix = "700" if path.is_dir() else "600"
    return (
        f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
        f"fix it with `chmod {fix} {path}`"
    )
