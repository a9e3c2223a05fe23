"""Isolation for every test: no test reads or writes the real user's keys.

HOME points at a fresh temporary directory, so ``~/.inference`` (the `inferenced`
keyring that gonka falls back to) and ``~/.gonka`` are empty unless a test fills them;
the keyring variables of the environment are cleared.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in ("GONKA_KEYRING_DIR", "GONKA_KEYRING_BACKEND", "GONKA_KEYRING_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    return home
