"""The keystore opens only regular files, checks name and version, warns about exposure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gonka_cli.errors import ConfigError
from gonka_cli.keys import keystore
from gonka_cli.keys.keystore import Keystore
from tests import vectors as v
from tests.keystore_helpers import isolate_keystore


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    yield from isolate_keystore(monkeypatch, tmp_path)


def _import(name: str, *, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gonka_cli", "keys", "import", name, "--unencrypted"],
        input=v.PRIVATE_KEY_HEX,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _gonka(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gonka_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_a_key_hangs_nothing(tmp_path: Path) -> None:
    """A FIFO called evil.json in the keys directory: list, add and sign finish (the FIFO
    is reported, never opened for a blocking read)."""
    env = {**os.environ, "GONKA_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    _import("good", env=env)
    os.mkfifo(tmp_path / "home" / "keys" / "evil.json")
    listed = _gonka("keys", "list", env=env)
    assert listed.returncode == 0
    assert "good" in listed.stdout
    assert "evil.json" in listed.stderr
    assert "regular file" in listed.stderr
    added = subprocess.run(
        [sys.executable, "-m", "gonka_cli", "keys", "import", "other", "--unencrypted"],
        input="11" * 32,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    signed = _gonka("sign", "--key", "evil", "x", env=env)
    assert signed.returncode == 7
    assert "regular file" in signed.stderr
    assert "Traceback" not in signed.stderr


def test_name_field_must_match_the_file_name(tmp_path: Path) -> None:
    """A key file whose name field disagrees with its file name is refused, naming both."""
    store = Keystore.default()
    env = {**os.environ, "GONKA_HOME": str(tmp_path / "home")}
    _import("alpha", env=env)
    path = store.path_for("alpha")
    document = json.loads(path.read_text())
    path.with_name("beta.json").write_text(json.dumps({**document, "name": "alpha"}))
    with pytest.raises(ConfigError, match="name field says 'alpha'"):
        store.load("beta")
    assert store.load("alpha").name == "alpha"


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_version_must_be_an_integer(version: object, tmp_path: Path) -> None:
    """ "version": true (a bool is an int in Python) and other look-alikes are refused."""
    env = {**os.environ, "GONKA_HOME": str(tmp_path / "home")}
    _import("alpha", env=env)
    store = Keystore.default()
    path = store.path_for("alpha")
    path.write_text(json.dumps({**json.loads(path.read_text()), "version": version}))
    with pytest.raises(ConfigError, match="format version"):
        store.load("alpha")


def test_exposure_is_warned(tmp_path: Path) -> None:
    """A keys directory or key file readable by others is named in a warning with a fix."""
    env = {**os.environ, "GONKA_HOME": str(tmp_path / "home")}
    _import("alpha", env=env)
    store = Keystore.default()
    assert store.exposure(store.load("alpha")) == []
    store.directory.chmod(0o755)
    store.path_for("alpha").chmod(0o644)
    warnings = store.exposure(store.load("alpha"))
    assert len(warnings) == 2
    assert "chmod 700" in warnings[0]
    assert "chmod 600" in warnings[1]
    listed = _gonka("keys", "list", env={**env, "NO_COLOR": "1"})
    assert "readable by other users" in listed.stderr


def test_read_regular_caps_the_size(tmp_path: Path) -> None:
    """A key file larger than the cap is refused rather than read whole."""
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * (keystore.MAX_FILE_BYTES + 1))
    with pytest.raises(OSError, match="larger than"):
        keystore.read_regular(big)
