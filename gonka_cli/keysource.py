"""Which private key signs: one documented order, in one place.

1. ``--private-key-file PATH`` ... see `resolve_signing_key` for the whole order.
"""

from __future__ import annotations

import os
from pathlib import Path

from gonka_cli.errors import ConfigError, UsageError
from gonka_cli.keys import SigningKey

ENV_PRIVATE_KEY = "GONKA_PRIVATE_KEY"


def resolve_signing_key(*, private_key_file: str | None = None) -> SigningKey:
    """The signing key, in this order: ``GONKA_PRIVATE_KEY``, then ``--private-key-file``."""
    env_value = os.environ.get(ENV_PRIVATE_KEY)
    if env_value:
        return _parse(env_value, f"${ENV_PRIVATE_KEY}")
    if private_key_file:
        return _parse(_read_key_file(Path(private_key_file)), private_key_file)
    raise ConfigError(
        "no signing key",
        hint=f"set {ENV_PRIVATE_KEY} to the hex private key, or pass --private-key-file PATH",
    )


def _parse(text: str, source: str) -> SigningKey:
    try:
        return SigningKey.from_hex(text)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise UsageError(f"{path}: cannot read the key file ({reason})") from None
