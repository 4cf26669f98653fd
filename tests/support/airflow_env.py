"""An Airflow home and the environment that points the DAG at local servers (tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from icechat.dev.airflow import AIRFLOW, run_airflow
from icechat.dev.airflow import airflow_env as _airflow_env
from icechat.ice import keys
from icechat.ice.parser import read_part
from tests.support.paths import REPO

__all__ = ["AIRFLOW", "REPO", "airflow_env", "graph_connection", "pgp_connection", "run_airflow"]


def airflow_env(home: Path, data_dir: Path, **connections: dict[str, Any] | str) -> dict[str, str]:
    """Environment for Airflow commands: its own home, our dags and plugins, connections.

    ``connections`` maps a connection id (``icechat_sftp`` ...) to its JSON form.
    """
    return _airflow_env(home, REPO, connections, {"icechat_data_dir": str(data_dir)})


def graph_connection(
    emulator: Any, *, client_id: str | None = None, secret: str | None = None
) -> dict[str, Any]:
    """The ``icechat_graph`` connection for an app of the ``graph_emulator`` fixture."""
    connection: dict[str, Any] = emulator.emulator.connection(
        client_id or emulator.client_id, secret or emulator.client_secret
    )
    return connection


def pgp_connection(keypair: Any) -> dict[str, Any]:
    """The ``icechat_pgp`` connection holding the firm's secret key (a ``pgp_keypair``)."""
    return keys.pgp_connection(passphrase=keypair.passphrase, secret_armored=keypair.secret_armored)


def without_mailbox(users: list[dict[str, Any]]) -> set[str]:
    """The addresses of the users-file entries that have no mailbox."""
    return {u["userPrincipalName"] for u in users if u.get("hasMailbox") is False}


def copies_of(parts: list[Path], addresses: set[str]) -> int:
    """Copies (item, participant) the parts hold for participants with these addresses."""
    count = 0
    for path in parts:
        with read_part(path) as part:
            for item in part.items():
                count += sum(p.email in addresses for p in item.participants)
    return count
