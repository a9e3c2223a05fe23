"""What the keystore tests share: scripted prompts and an isolated, fast keystore."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.keys import keystore


class Prompts:
    """A stand-in for the hidden terminal prompt: scripted answers, and the prompts asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.asked.append(prompt)
        if not self.answers:
            raise AssertionError(f"unexpected prompt {prompt!r}")
        return self.answers.pop(0)


def isolate_keystore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Own GONKA_HOME, no GONKA_* variables, cheap scrypt (tests only), no terminal prompt."""
    for name in [name for name in os.environ if name.startswith("GONKA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GONKA_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(keystore, "SCRYPT_N", 2**4)
    monkeypatch.setattr(keystore, "read_hidden", Prompts())
    keystore.forget_passphrase()
    yield
    keystore.forget_passphrase()
