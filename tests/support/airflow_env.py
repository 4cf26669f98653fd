"""An Airflow home and the environment that points the DAG at local servers (tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from icechat.dev.airflow import AIRFLOW, run_airflow
from icechat.dev.airflow import airflow_env as _airflow_env
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
    """The ``icechat_graph`` connection for the emulator's app."""
    return {
        "conn_type": "generic",
        "login": client_id or emulator.client_id,
        "password": secret or emulator.client_secret,
        "extra": {
            "tenant_id": emulator.tenant_id,
            "authority_host": emulator.authority_host,
            "graph_url": emulator.graph_url,
            "ca_bundle": emulator.ca_bundle,
        },
    }


def pgp_connection(keypair: Any, passphrase: str | None = None) -> dict[str, Any]:
    """The ``icechat_pgp`` connection holding the firm's secret key."""
    return {
        "conn_type": "generic",
        "password": keypair.passphrase if passphrase is None else passphrase,
        "extra": {"private_key": keypair.secret_armored},
    }


def internal_people(parts: list[Path], firm: str) -> dict[str, str]:
    """Email -> display name of the sample firm's own users (the tenant's users)."""
    people = {}
    for path in parts:
        with read_part(path) as part:
            for item in part.items():
                for p in item.participants:
                    if p.email and p.email.endswith(f"@{firm.lower()}.example"):
                        people[p.email] = p.display_name
    return people


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
