"""A real Airflow deployment on this machine for the system tests.

A throwaway Postgres database for Airflow's metadata, then the scheduler, dag-processor,
triggerer and API server as subprocesses, each in its own process group with its log under
the Airflow home; ``AirflowStack`` is a small client of the REST API. The executor is the
LocalExecutor, or the CeleryExecutor with this machine's Redis as broker, the metadata
database as result backend and ``airflow celery worker`` processes that each play a host of
their own (``CeleryWorker``). Everything started here is stopped, and the database dropped,
even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import requests

from icechat.dev.airflow import standalone_env
from tests.support import worker_host
from tests.support.airflow_env import AIRFLOW, run_airflow
from tests.support.paths import PLUGINS, REPO

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
# The Celery broker: this machine's Redis, a database number no other test uses; each stack
# also gets a queue of its own, so two stacks never take each other's tasks.
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 7
SERVICES = ("scheduler", "dag-processor", "triggerer", "api-server")
FINISHED = {"success", "failed"}
LOCAL = "LocalExecutor"
CELERY = "CeleryExecutor"


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


def service_env(
    base: dict[str, str], database: str, port: int, executor: str = LOCAL
) -> dict[str, str]:
    """``base`` (see ``airflow_env``) plus what a small real deployment needs.

    The API server on loopback ``port``, every visitor an admin, free ports for the log
    servers (as the demo's ``airflow standalone``); then the metadata database, the executor
    and the scheduling this test wants. With ``CELERY``: Redis as the broker, the metadata
    database as the result backend (``db+postgresql://``, as docker-compose.yaml has it),
    a queue of this stack's own, and heartbeats fast enough for a test.
    """
    metadata = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"
    celery: dict[str, str] = {}
    if executor == CELERY:
        celery = {
            "AIRFLOW__CELERY__BROKER_URL": (f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"),
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{database}",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"icechat-test-{secrets.token_hex(4)}",
        }
    return {
        **standalone_env(base, port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CORE__EXECUTOR": executor,
        **celery,
        # As in a deployment: DAGs start paused, and unpausing one lets the scheduler run it.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        # A DAG file imports in a second or two, but a busy 2-core CI machine can take 30 s
        # (Airflow's limit), and a file that timed out is not parsed again for 10 minutes.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        # The dags folder is parsed once at start; re-parsing it only costs CPU here.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
    }


@contextlib.contextmanager
def celery_broker(env: dict[str, str]) -> Iterator[None]:
    """Fail early when Redis is not up; afterwards, remove what the stack's queue left in it."""
    import redis

    client = redis.Redis(REDIS_HOST, REDIS_PORT, REDIS_DB, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise AssertionError(
            f"the Celery test needs Redis at {REDIS_HOST}:{REDIS_PORT}; .ci/run starts it: {exc}"
        ) from exc
    try:
        yield
    finally:
        queue = env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
        leftovers = list(client.scan_iter(match=f"*{queue}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()


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


@dataclass(frozen=True)
class CeleryWorker:
    """An ``airflow celery worker`` that plays a host of its own on this machine.

    It has its own Celery node name and the host name its task instances record (Airflow's
    ``hostname_callable``), its own Airflow home (logs, pid file) and its own temporary
    folder (``TMPDIR``), and takes one task at a time, so that a second task queued while it
    works goes to another worker.
    """

    hostname: str
    home: Path
    tmpdir: Path

    def env(self, stack_env: dict[str, str]) -> dict[str, str]:
        """The stack's environment as this worker's host sees it."""
        return {
            **stack_env,
            "AIRFLOW_HOME": str(self.home),
            "TMPDIR": str(self.tmpdir),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": worker_host.CALLABLE,
            worker_host.VARIABLE: self.hostname,
            # the callable lives in tests/support, so the repository is on the path too
            "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(REPO)]),
        }

    def command(self) -> list[str]:
        """The worker's command line (its task logs stay in its home: nobody serves them)."""
        return [
            "celery",
            "worker",
            "--celery-hostname",
            f"{self.hostname}@%h",
            "--concurrency",
            "1",
            "--skip-serve-logs",
        ]


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
                    # The execution API builds itself on its first request, which a task's
                    # first call would otherwise wait for.
                    self.http.get(f"{self.base_url}/execution/health", timeout=120)
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

    def wait_for_workers(self, workers: Sequence[CeleryWorker], timeout: float = 120) -> None:
        """Wait until each Celery worker has said it is ready to take tasks."""
        names = [f"worker-{w.hostname}" for w in workers]
        ready = self.wait_for(
            lambda: all(
                f"{n.removeprefix('worker-')}@" in self.service_log(n, 100_000)
                and " ready." in self.service_log(n, 100_000)
                for n in names
            ),
            timeout,
        )
        assert ready, "Celery workers not ready:\n" + "\n".join(
            f"--- {n}\n{self.service_log(n)}" for n in names
        )

    def succeeded(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait for a run; it must succeed (else: its task states and failed tasks' logs)."""
        run = self.wait_for_run(dag_id, run_id, timeout)
        if run["state"] != "success":
            states = self.task_states(dag_id, run_id)
            logs = [
                f"--- {task}\n{self.task_log(dag_id, run_id, task)[-3000:]}"
                for task, state in states.items()
                if state == "failed" and "[" not in task
            ]
            raise AssertionError(f"run {run_id} {run['state']}: {states}\n" + "\n".join(logs))
        return run

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
def airflow_services(
    env: dict[str, str], home: Path, port: int, workers: Sequence[CeleryWorker] = ()
) -> Iterator[AirflowStack]:
    """Migrate the metadata database, then run the four services (and the Celery
    ``workers``, each named ``worker-{hostname}``) until the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    migrated = run_airflow(env, "db", "migrate", timeout=240)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    stack = AirflowStack(env=env, home=home, base_url=f"http://127.0.0.1:{port}")
    commands = {
        name: ([name, "--port", str(port)] if name == "api-server" else [name], env)
        for name in SERVICES
    }
    for worker in workers:
        worker.home.mkdir(parents=True, exist_ok=True)
        worker.tmpdir.mkdir(parents=True, exist_ok=True)
        commands[f"worker-{worker.hostname}"] = (worker.command(), worker.env(env))
    try:
        for name, (args, process_env) in commands.items():
            with (home / f"{name}.out").open("wb") as out:
                stack.processes[name] = subprocess.Popen(
                    [AIRFLOW, *args],
                    env=process_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        yield stack
    finally:
        # Workers first, while the API server can still take their tasks' last words.
        stop_all(p for n, p in stack.processes.items() if n.startswith("worker-"))
        stop_all(p for n, p in stack.processes.items() if not n.startswith("worker-"))
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
