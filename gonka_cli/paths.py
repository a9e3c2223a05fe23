"""The user's gonka directory: keys, config and state live below it.

``$GONKA_HOME`` when set (tests point it at a temporary directory), else ``~/.gonka``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "GONKA_HOME"


def gonka_home() -> Path:
    """The gonka directory (not created here)."""
    configured = os.environ.get(ENV_HOME)
    return Path(configured).expanduser() if configured else Path.home() / ".gonka"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing, and make it 0700."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path
