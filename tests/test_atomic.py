"""All-or-nothing writes: the target is the old file or the whole new one, never a symlink's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gonka_cli.atomic import replacing


def test_a_failed_write_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    """An error inside the block keeps the old content and removes the temporary file."""
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")


    def write_half() -> None:
        with replacing(target) as handle:
            handle.write(b"half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_half()
    assert target.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_the_new_file_gets_its_mode(tmp_path: Path) -> None:
    """The finished file is 0600 by default, or the mode asked for."""
    private, shared = tmp_path / "a", tmp_path / "b"
    with replacing(private) as handle:
        handle.write(b"x")
    with replacing(shared, mode=0o644) as handle:
        handle.write(b"y")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644


def test_no_overwrite_refuses_an_existing_file(tmp_path: Path) -> None:
    """overwrite=False never clobbers what is there."""
    target = tmp_path / "key.json"
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError), replacing(target, overwrite=False) as handle:
        handle.write(b"theirs")
    assert target.read_bytes() == b"mine"


def test_a_planted_symlink_is_not_replaced_or_followed(tmp_path: Path) -> None:
    """keep_symlink=True refuses a symlink at the target; the file it points to is untouched."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "answer.json"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"), replacing(link, keep_symlink=True) as out:
        out.write(b"attacker")
    assert victim.read_bytes() == b"precious"
    assert link.is_symlink()
