"""Where the repository, the package and the test data are, for tests at any depth."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
DATA = REPO / "tests" / "data"
SPEC = DATA / "spec_example.xml"
