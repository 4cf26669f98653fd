"""The Airflow plugin: registered by entry point, light to load where no API server runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.airflow_env import REPO

PROBE = """
import json, sys
from importlib.metadata import entry_points
(entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "icechat"]
plugin = entry.load()()
loaded_before = "icechat.glue.ui.app" in sys.modules
apps = plugin.fastapi_apps
print(json.dumps({
    "loaded_before": loaded_before,
    "apps": [(a["url_prefix"], type(a["app"]).__name__) for a in apps],
    "views": [(v["url_route"], v["destination"], v["href"]) for v in plugin.external_views],
    "middlewares": [m["middleware"].__name__ for m in plugin.fastapi_root_middlewares],
}))
"""


def test_plugin_is_registered_and_builds_its_app_only_when_the_api_server_asks() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["loaded_before"] is False  # task processes load plugins too: no FastAPI app
    assert found["apps"] == [["/icechat", "FastAPI"]]
    assert found["views"] == [
        ["icechat", "nav", "/icechat/days"],
        ["icechat-report", "dag_run", "/icechat/runs/{DAG_ID}/{RUN_ID}"],
    ]
    assert found["middlewares"] == ["PortlessConnectionTest"]
