"""The import rules of ARCHITECTURE.md, checked on the source: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import PLUGINS, REPO

PACKAGE = PLUGINS / "icechat"
# The sub-commands that expose the development tools (sample days, the emulator, the demo).
DEV_COMMANDS = {
    "icechat.commands.sample",
    "icechat.commands.graph_emulator",
    "icechat.commands.demo",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PLUGINS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, wherever in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = {module_name(p): imported(p) for p in sorted(PACKAGE.rglob("*.py"))}


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("module", [m for m in MODULES if under(m, "icechat.graph")])
def test_graph_imports_nothing_of_icechat_but_the_exceptions(module: str) -> None:
    ours = {n for n in MODULES[module] if under(n, "icechat")}
    assert {n for n in ours if n != "icechat.exceptions" and not under(n, "icechat.graph")} == set()


def test_production_code_never_imports_dev() -> None:
    production = {m: n for m, n in MODULES.items() if not under(m, "icechat.dev")}
    production["dags.icechat_archive"] = imported(REPO / "dags" / "icechat_archive.py")
    found = {
        m: {n for n in names if under(n, "icechat.dev")}
        for m, names in production.items()
        if m not in DEV_COMMANDS
    }
    assert {m: n for m, n in found.items() if n} == {}


def test_only_the_glue_imports_airflow() -> None:
    found = {
        m: {n for n in names if under(n, "airflow")}
        for m, names in MODULES.items()
        if not under(m, "icechat.glue")
    }
    assert {m: n for m, n in found.items() if n} == {}
