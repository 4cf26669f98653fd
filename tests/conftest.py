"""Shared pytest set-up: every module in tests/support/fixtures/ is loaded as a fixture plugin."""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.support.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "support" / "fixtures").glob("*.py")
    if p.stem != "__init__"
)
