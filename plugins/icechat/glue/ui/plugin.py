"""The Airflow plugin: the ICE Chat page in the navigation and a report tab on each DAG run.

It also carries a fix for the connection list's *Test* button (see ``connection_test``).

Registered through the ``airflow.plugins`` entry point of the package (see pyproject.toml).
Every Airflow process loads plugins, task processes too, so the FastAPI app is built only
when the API server asks for it.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from icechat.glue.ui.connection_test import PortlessConnectionTest

PREFIX = "/icechat"


class IceChatUiPlugin(AirflowPlugin):
    """The ICE Chat views: the archive day by day (with the ledger search) and a run's report."""

    name = "icechat"
    external_views = [  # noqa: RUF012 (Airflow's plugin interface is class attributes)
        {
            "name": "ICE Chat",
            "href": f"{PREFIX}/days",
            "icon": f"{PREFIX}/icon.svg",
            "url_route": "icechat",
            "destination": "nav",
            "nav_top_level": True,
        },
        {
            "name": "ICE Chat report",
            "href": f"{PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}",
            "url_route": "icechat-report",
            "destination": "dag_run",
        },
    ]

    fastapi_root_middlewares = [  # noqa: RUF012
        {"middleware": PortlessConnectionTest, "name": "icechat: Test button for portless types"}
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The app under ``/icechat``, imported on first use (only the API server uses it)."""
        from icechat.glue.ui.app import app

        return [{"app": app, "url_prefix": PREFIX, "name": "ICE Chat"}]
