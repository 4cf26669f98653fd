"""Shared pytest set-up: every module in tests/support/fixtures/ is loaded as a fixture plugin,
and the test files that run Airflow go first, longest first.

``make test`` runs two pytest-xdist workers that each take a whole file at a time
(``--dist loadfile``) in collection order; starting the few files that take minutes first lets
both workers end together instead of one finishing a long file alone at the end.
"""

from pathlib import Path

import pytest

pytest_plugins = sorted(
    f"tests.support.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "support" / "fixtures").glob("*.py")
    if p.stem != "__init__"
)

# Longest first (pytest --durations on the 2-core machine); every other file keeps its order.
LONGEST_FIRST = (
    "tests/test_browser.py",
    "tests/test_system.py",
    "tests/test_dag.py",
    "tests/test_dag_runs.py",
    "tests/test_celery.py",
    "tests/dev/test_demo.py",
    "tests/test_import_crash.py",
    "tests/glue/test_check.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath

    def rank(item: pytest.Item) -> int:
        file = item.path.relative_to(root).as_posix()
        return LONGEST_FIRST.index(file) if file in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
