"""``airflow dags test`` of one sample day in a fresh Airflow home: the DAG tests' runner.

Each run gets its own home and data directory; the metadata database is a copy of one
migrated once per test session (``airflow db migrate`` costs more than the copy by far).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

from icechat.dev.sample import own_people
from tests.support.airflow_env import airflow_env, graph_connection, pgp_connection, run_airflow

DAY = date(2026, 11, 26)
MESSAGES, SEED = 120, 5
AIRFLOW_DB = "airflow.db"  # Airflow's SQLite metadata database, in its home


def firm_people(sftp_server: Any) -> dict[str, str]:
    """Email -> name of the firm's own people in the sample day (the tenant's users)."""
    return own_people(sftp_server.username.upper(), [DAY], MESSAGES, SEED)


def migrated_home(home: Path) -> Path:
    """An Airflow home whose SQLite metadata database ``airflow db migrate`` has made."""
    env = airflow_env(home, home / "unused-data")
    migrated = run_airflow(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    return home


class DayRunner:
    """Runs the DAG for DAY against the test servers, in ``tmp_path``."""

    def __init__(
        self,
        tmp_path: Path,
        template: Path,
        sftp_server: Any,
        pgp_keypair: Any,
        graph_emulator: Any,
    ) -> None:
        self.tmp_path, self.template = tmp_path, template
        self.sftp_server, self.pgp_keypair, self.graph_emulator = (
            sftp_server,
            pgp_keypair,
            graph_emulator,
        )

    def __call__(
        self,
        graph: dict[str, Any] | None = None,
        connections: dict[str, Any] | None = None,
        **variables: str,
    ) -> tuple[dict[str, str], Path, subprocess.CompletedProcess[str]]:
        """``airflow dags test`` of DAY; the environment (to run again), the data directory
        and the result. A ``data_dir`` variable replaces the local data directory (which
        then stays absent)."""
        data, home = self.tmp_path / "data", self.tmp_path / "airflow"
        env = airflow_env(
            home,
            data,
            icechat_sftp=self.sftp_server.connection(),
            icechat_pgp=pgp_connection(self.pgp_keypair),
            icechat_graph=graph or graph_connection(self.graph_emulator),
            **(connections or {}),
        )
        env["AIRFLOW_VAR_ICECHAT_REMOTE_DIR"] = self.sftp_server.remote_dir
        for name, value in variables.items():
            env[f"AIRFLOW_VAR_ICECHAT_{name.upper()}"] = value
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.template / AIRFLOW_DB, home / AIRFLOW_DB)
        result = run_airflow(env, "dags", "test", "icechat_archive", DAY.isoformat(), timeout=300)
        (self.tmp_path / "dags-test.log").write_text(result.stdout + result.stderr)
        return env, data, result
