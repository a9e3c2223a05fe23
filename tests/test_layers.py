"""The layering the README's Development section states, checked on the source: only the
`render*.py` modules import rich, and only `gonka_cli/cli/` imports typer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gonka_cli"


def imported_roots(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth (inside functions too)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_render_modules_import_rich() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20
    users = {p.relative_to(PACKAGE).as_posix() for p in modules if "rich" in imported_roots(p)}
    assert users
    assert {u for u in users if not u.startswith("render")} == set()


def test_only_the_cli_package_imports_typer() -> None:
    users = {
        p.relative_to(PACKAGE).as_posix()
        for p in sorted(PACKAGE.rglob("*.py"))
        if "typer" in imported_roots(p)
    }
    assert users
    assert {u for u in users if not u.startswith("cli/")} == set()
