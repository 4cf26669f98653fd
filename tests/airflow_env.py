"""An Airflow home and the environment that points the DAG at local servers (tests, demo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from icechat.parser import read_part

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, data_dir: Path, **connections: dict[str, Any] | str) -> dict[str, str]:
    """Environment for Airflow commands: its own home, our dags and plugins, connections.

    ``connections`` maps a connection id (``icechat_sftp`` ...) to its JSON form.
    """
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": str(REPO / "plugins"),
        "AIRFLOW_VAR_ICECHAT_DATA_DIR": str(data_dir),
    }
    for conn_id, value in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
    return env


def run_airflow(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``airflow ARGS`` with ``env``; output captured."""
    try:
        return subprocess.run(
            [AIRFLOW, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        return subprocess.CompletedProcess(exc.cmd, -9, out or "", (err or "") + "\nTIMED OUT")


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
    """Email -> display name of the sample firm's own users (they get mailboxes)."""
    people = {}
    for path in parts:
        with read_part(path) as part:
            for item in part.items():
                for p in item.participants:
                    if p.email and p.email.endswith(f"@{firm.lower()}.example"):
                        people[p.email] = p.display_name
    return people
