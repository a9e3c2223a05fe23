"""A private key or mnemonic typed where a name, a number or an address belongs is never
echoed back, and never stored as a key's name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gonka_cli.cli import app
from gonka_cli.cli._common import redact
from tests import vectors as v
from tests.keystore_helpers import isolate_keystore

runner = CliRunner()
WORDS = v.MNEMONIC.split()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own fast keystore and no GONKA_* variables."""
    yield from isolate_keystore(monkeypatch, tmp_path)


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["keys", "import", "x", v.PRIVATE_KEY_HEX], None),
        (["keys", "import", "0x" + v.PRIVATE_KEY_HEX], v.PRIVATE_KEY_HEX),
        (["keys", "import", v.PRIVATE_KEY_HEX.upper()], v.PRIVATE_KEY_HEX),
        (["keys", "add", "x", "--recover", *WORDS], None),
        (["keys", "add", "--recover", v.MNEMONIC], v.MNEMONIC),
        (["keys", "show", v.PRIVATE_KEY_HEX], None),
        (["keys", "export", v.PRIVATE_KEY_HEX, "--unsafe"], None),
        (["sign", "x", "--key", v.PRIVATE_KEY_HEX], None),
        (["sign", "x", "--timestamp", v.PRIVATE_KEY_HEX], None),
        (["sign", "x", "--endpoint-account", v.PRIVATE_KEY_HEX], None),
        (["verify", "x", "-s", v.SIG_HASH, "--address", "0x" + v.PRIVATE_KEY_HEX], None),
    ],
)
def test_misplaced_secrets_are_not_echoed(args: list[str], stdin: str | None) -> None:
    """The command fails with a clear line, and neither the key nor the words show."""
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code != 0
    shown = (result.stdout + result.stderr).lower()
    assert "error:" in shown
    assert v.PRIVATE_KEY_HEX not in shown
    assert " ".join(WORDS[:3]) not in shown


def test_a_key_is_never_stored_under_its_own_hex(tmp_path: Path) -> None:
    """`keys import <hex>` with the key on stdin refuses the name: nothing is written."""
    result = runner.invoke(app, ["keys", "import", v.PRIVATE_KEY_HEX], input=v.PRIVATE_KEY_HEX)
    assert result.exit_code == 2
    assert "looks like a private key" in result.stderr
    keys_dir = tmp_path / "home" / "keys"
    assert not keys_dir.exists() or not any(keys_dir.iterdir())


def test_redact_keeps_ordinary_messages() -> None:
    """Ordinary messages, addresses and short quoted names pass through unchanged."""
    for message in (
        f"no key named 'demo'; the address is {v.PRIVATE_KEY_ADDRESS}",
        "the mnemonic has 13 words; a BIP39 mnemonic has 12, 15, 18, 21 or 24",
        "signature is in high-S form (the network accepts only low-S)",
    ):
        assert redact(message) == message
    assert redact(f"bad value '{v.MNEMONIC}'") == "bad value '<redacted>'"
