"""docs/protocol.md is the project's account of the protocol: its vectors are the tests'
vectors, and nothing in the project points at a file users do not get."""

from __future__ import annotations

import re
from pathlib import Path

from tests import vectors as v

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "protocol.md"


def test_every_vector_is_in_the_document() -> None:
    """Each known answer in tests/vectors.py appears verbatim in docs/protocol.md section 8."""
    section = DOC.read_text(encoding="utf-8").split("## 8.")[1].split("## 9.")[0]
    values = {name: value for name, value in vars(v).items() if name.isupper()}
    for name, value in values.items():
        text = value.decode() if isinstance(value, bytes) else str(value)
        assert text in section, name


def test_no_reference_to_a_file_outside_the_repository() -> None:
    """No docstring, comment, test or README line cites PROTOCOL.md or ../shared."""
    pattern = re.compile(r"PROTOCOL\.md|\.\./shared")
    places = [REPO / "README.md", *REPO.glob("gonka_cli/**/*.py"), *REPO.glob("tests/*.py")]
    places += REPO.glob("benchmarks/**/*.py")
    found = [
        str(path.relative_to(REPO))
        for path in places
        if path != Path(__file__) and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []
