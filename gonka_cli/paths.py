"""The user's gonka directory: keys, config and state live below it.

``$GONKA_HOME`` when set (tests point it at a temporary directory), else ``~/.gonka``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "GONKA_HOME"


def gonka_home() -> Path:
    """The gonka directory (not created here); a ConfigError (exit 7) when something other
    than a directory is in its place, rather than "no keys yet"."""
    configured = os.environ.get(ENV_HOME)
    home = Path(configured).expanduser() if configured else Path.home() / ".gonka"
    if home.exists() and not home.is_dir():
        from gonka_cli.errors import ConfigError

        origin = f"${ENV_HOME}={configured}" if configured else str(home)
        raise ConfigError(
            f"{origin} is not a directory",
            hint=f"point {ENV_HOME} at a directory (it holds keys and config.toml), or unset it",
        )
    return home


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing, and make it 0700; a gonka directory that
    this creates on the way is 0700 too (one that exists already is left as it is)."""
    home = gonka_home()
    if not home.exists() and (path == home or home in path.parents):
        home.mkdir(parents=True, mode=0o700)
        home.chmod(0o700)  # mkdir's mode is filtered by the umask
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path
