"""The package's layers hold: graph/ stands alone, the core has no Airflow, production never
loads dev/, and the glue stays thin (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import PLUGINS, REPO

PACKAGE = PLUGINS / "icechat"
# The CLI verbs that drive the development tools (sample days, the emulator, the demo).
DEV_VERBS = {PACKAGE / "commands" / f"{verb}.py" for verb in ("sample", "demo", "graph_emulator")}
GLUE_FUNCTION_LINES = 50


def modules(under: Path) -> list[Path]:
    return sorted(under.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def test_graph_imports_nothing_of_icechat_but_exceptions():
    for path in modules(PACKAGE / "graph"):
        ours = {n for n in imported(path) if within(n, "icechat") and n != "icechat"}
        allowed = ("icechat.graph", "icechat.exceptions")
        stray = {n for n in ours if not any(within(n, a) for a in allowed)}
        assert stray == set(), path.relative_to(PLUGINS)


def test_only_the_glue_and_dev_tools_import_airflow():
    outside = [
        p
        for p in modules(PACKAGE)
        if not p.is_relative_to(PACKAGE / "glue") and not p.is_relative_to(PACKAGE / "dev")
    ]
    for path in outside:
        assert not any(within(n, "airflow") for n in imported(path)), path.relative_to(PLUGINS)


def test_production_code_never_imports_dev():
    production = [
        p
        for p in [*modules(PACKAGE), *modules(REPO / "dags")]
        if not p.is_relative_to(PACKAGE / "dev") and p not in DEV_VERBS
    ]
    for path in production:
        assert not any(within(n, "icechat.dev") for n in imported(path)), path


@pytest.mark.parametrize("verb", ["check", "render", "inspect", "keys", "validate-mapping"])
def test_a_production_verb_of_the_cli_loads_no_dev_tool(verb):
    probe = (
        "import contextlib, sys\n"
        "from icechat.commands import main\n"
        "with contextlib.suppress(SystemExit):\n"
        f"    main([{verb!r}, '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('icechat.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PLUGINS)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert f"icechat.commands.{verb.replace('-', '_')}" in loaded
    assert [m for m in loaded if within(m, "icechat.dev")] == []


def own_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's lines, not counting the functions defined inside it (a DAG's tasks)."""
    assert function.end_lineno is not None
    lines = set(range(function.lineno, function.end_lineno + 1))
    for node in ast.walk(function):
        if node is not function and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines -= set(range(node.lineno, node.end_lineno + 1))
    return len(lines)


def test_every_glue_function_fits_on_a_screen():
    for path in [*modules(PACKAGE / "glue"), *modules(REPO / "dags")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert own_lines(node) <= GLUE_FUNCTION_LINES, f"{path.name}: {node.name}"
