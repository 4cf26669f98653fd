"""Airflow commands for the tests and the demo, run as subprocesses of this interpreter.

Nothing here imports Airflow: the commands run ``airflow`` from this interpreter's
environment with an ``AIRFLOW_HOME`` of their own and the project's ``dags/`` and
``plugins/`` folders, and connections and variables passed as ``AIRFLOW_CONN_*`` /
``AIRFLOW_VAR_*`` environment variables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from icechat.dev.sftpd import free_port
from icechat.exceptions import DevServerError

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PARALLELISM = 4  # task processes at once: the demo's runs, not 32 idle workers


def airflow_env(
    home: Path,
    repo: Path,
    connections: Mapping[str, Mapping[str, Any] | str],
    variables: Mapping[str, str],
) -> dict[str, str]:
    """This process's environment plus an Airflow home, the project's folders, and settings.

    ``connections`` maps a connection id (``icechat_sftp`` ...) to its JSON form;
    ``variables`` maps a variable name (``icechat_data_dir`` ...) to its value.
    """
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(repo / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": str(repo / "plugins"),
        "PATH": os.pathsep.join([str(Path(AIRFLOW).parent), os.environ.get("PATH", "")]),
    }
    for conn_id, value in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
    for name, text in variables.items():
        env[f"AIRFLOW_VAR_{name.upper()}"] = text
    return env


def run_airflow(
    env: Mapping[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``airflow ARGS`` with ``env``, output captured; a timeout gives return code -9."""
    try:
        return subprocess.run(
            [AIRFLOW, *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        return subprocess.CompletedProcess(exc.cmd, -9, out or "", (err or "") + "\nTIMED OUT")


def prepare_database(env: Mapping[str, str]) -> None:
    """``airflow db migrate`` (the import tasks need no pool: they run in default_pool)."""
    result = run_airflow(env, "db", "migrate")
    if result.returncode != 0:
        raise DevServerError(
            f"airflow db migrate failed (AIRFLOW_HOME={env['AIRFLOW_HOME']}):\n"
            + (result.stdout + result.stderr)[-3000:]
        )


def standalone_env(env: Mapping[str, str], port: int) -> dict[str, str]:
    """Settings for ``airflow standalone`` on loopback ``port``; every visitor is an admin."""
    return {
        **env,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        # the scheduler's and triggerer's log servers: free ports, not 8793/8794 on all
        # interfaces, so the demo runs beside another Airflow
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


class Standalone:
    """``airflow standalone`` (API server, scheduler, DAG processor, triggerer) in its own
    process group, its output going to ``log_path``; ``stop()`` interrupts it as Ctrl-C does."""

    def __init__(self, env: Mapping[str, str], port: int, log_path: Path) -> None:
        self.env = standalone_env(env, port)
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where the UI is."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Standalone:
        """Start the components (returns at once; see ``wait_ready``)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [AIRFLOW, "standalone"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def version(self) -> str | None:
        """The API server's Airflow version, or None while it does not answer."""
        try:
            answer = requests.get(f"{self.url}/api/v2/version", timeout=2)
        except requests.RequestException:
            return None
        return str(answer.json().get("version")) if answer.ok else None

    def wait_ready(self, timeout: float) -> str:
        """Wait until the API server answers; return its version. Raise if Airflow exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise DevServerError(f"airflow standalone exited; its log is {self.log_path}")
            version = self.version()
            if version:
                return version
            time.sleep(0.5)
        raise DevServerError(
            f"the Airflow API server did not answer at {self.url} within {timeout:.0f} s;"
            f" its log is {self.log_path}"
        )

    def stop(self) -> None:
        """Interrupt every component as Ctrl-C does, then end what is left of the group.

        The LocalExecutor's idle workers outlive an interrupt, so SIGTERM follows soon.
        """
        proc, self.process = self.process, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if not _group_alive(proc.pid):
                break
            os.killpg(proc.pid, sig)
            deadline = time.monotonic() + wait
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                proc.poll()
                time.sleep(0.1)
        proc.wait(timeout=5)

    def __enter__(self) -> Standalone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
