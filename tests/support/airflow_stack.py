"""A real Airflow deployment on this machine for the system test.

A throwaway Postgres database for Airflow's metadata, then the scheduler (LocalExecutor),
dag-processor, triggerer and API server as subprocesses, each in its own process group with
its log under the Airflow home; ``AirflowStack`` is a small client of the REST API.
Everything started here is stopped, and the database dropped, even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import requests

from icechat.dev.airflow import standalone_env
from tests.support.airflow_env import AIRFLOW, run_airflow

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
SERVICES = ("scheduler", "dag-processor", "triggerer", "api-server")
FINISHED = {"success", "failed"}


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the local Postgres; yields its name, drops it afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        admin = psycopg2.connect(**POSTGRES, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise AssertionError(
            f"the system test needs Postgres at {POSTGRES['host']}:{POSTGRES['port']} (user "
            f"postgres, trust auth); .ci/run starts it: {exc}"
        ) from exc
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def service_env(base: dict[str, str], database: str, port: int) -> dict[str, str]:
    """``base`` (see ``airflow_env``) plus what a small real deployment on one host needs.

    The API server on loopback ``port``, every visitor an admin, free ports for the log
    servers (as the demo's ``airflow standalone``); then the metadata database, the executor
    and the scheduling this test wants.
    """
    return {
        **standalone_env(base, port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"
        ),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # As in a deployment: DAGs start paused, and unpausing one lets the scheduler run it.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        # The dags folder is parsed once at start; re-parsing it only costs CPU here.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
    }


def login_env(env: dict[str, str], home: Path, user: str, password: str) -> dict[str, str]:
    """``env`` with a real login: one admin ``user`` with ``password``, no anonymous admin."""
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({user: password}))
    return {
        **env,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }


@dataclass
class AirflowStack:
    """The running services and a REST client for them."""

    env: dict[str, str]
    home: Path
    base_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.trust_env = False

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}``; the JSON answer, or an AssertionError with the body."""
        response = self.http.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response.json()

    def login(self, user: str, password: str, timeout: float = 180) -> str:
        """A token for ``user`` (``POST /auth/token``), sent with every later REST call."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                answer = self.http.post(
                    f"{self.base_url}/auth/token",
                    json={"username": user, "password": password},
                    timeout=10,
                )
            except requests.ConnectionError as exc:
                last = str(exc)
            else:
                if answer.status_code == 201 or answer.ok:
                    token = str(answer.json()["access_token"])
                    self.http.headers["Authorization"] = f"Bearer {token}"
                    return token
                last = f"{answer.status_code} {answer.text[:500]}"
            time.sleep(1)
        raise AssertionError(f"no token for {user} after {timeout}s: {last}")

    def service_log(self, name: str, tail: int = 4000) -> str:
        """The end of a service's output."""
        path = self.home / f"{name}.out"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def check_alive(self) -> None:
        """Fail with the service's output when one of them has exited."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"airflow {name} exited ({proc.returncode}):\n" + (self.service_log(name))
                )

    def wait_until_ready(self, dag_id: str, timeout: float = 180) -> None:
        """Wait for the API, every component's heartbeat and the DAG to be parsed."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = self.http.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                dag = self.http.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=5)
            except requests.ConnectionError as exc:
                last = str(exc)
            else:
                last = health.text
                parts = health.json() if health.ok else {}
                healthy = all(
                    (parts.get(c) or {}).get("status") == "healthy"
                    for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                )
                if healthy and dag.ok:
                    return
                last += f" dag: {dag.status_code}"
            time.sleep(1)
        raise AssertionError(f"Airflow not ready after {timeout}s: {last}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        """Poll a DAG run until it succeeds or fails; its JSON form."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            run: dict[str, Any] = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINISHED:
                return run
            time.sleep(1)
        raise AssertionError(
            f"run {run_id} not finished after {timeout}s; tasks: {self.task_states(dag_id, run_id)}"
            f"\nscheduler:\n{self.service_log('scheduler')}"
        )

    def wait_for(self, probe: Callable[[], Any], timeout: float) -> Any:
        """Poll ``probe`` every second until it returns something true; that value (or None)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            found = probe()
            if found:
                return found
            time.sleep(1)
        return None

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Task id (with map index) -> state, for one run."""
        found = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in found["task_instances"]
        }

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """The whole log of a task's latest try, one event per line."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        tries = self.api("GET", path)["try_number"]
        answer = self.api("GET", f"{path}/logs/{tries}", params={"full_content": "true"})
        lines = []
        for entry in answer["content"]:
            event = entry.get("event", "") if isinstance(entry, dict) else str(entry)
            extra = {k: v for k, v in entry.items() if k not in ("event", "timestamp")}
            lines.append(f"{event} {extra}" if extra else str(event))
        return "\n".join(lines)


@contextlib.contextmanager
def airflow_services(env: dict[str, str], home: Path, port: int) -> Iterator[AirflowStack]:
    """Migrate the metadata database, then run the four services until the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    migrated = run_airflow(env, "db", "migrate", timeout=240)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    stack = AirflowStack(env=env, home=home, base_url=f"http://127.0.0.1:{port}")
    try:
        for name in SERVICES:
            args = [name, "--port", str(port)] if name == "api-server" else [name]
            with (home / f"{name}.out").open("wb") as out:
                stack.processes[name] = subprocess.Popen(
                    [AIRFLOW, *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        yield stack
    finally:
        stop_all(stack.processes.values())
        stack.http.close()


def stop_all(processes: Any) -> None:
    """SIGTERM each process group (and any descendant that left it), then SIGKILL leftovers."""
    procs = list(processes)
    family: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            family += psutil.Process(proc.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    deadline = time.monotonic() + 20
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _, alive = psutil.wait_procs(family, timeout=5)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
