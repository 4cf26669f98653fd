"""System test: the DAG on Airflow's CeleryExecutor, with two workers playing two hosts.

The real scheduler, dag-processor, triggerer and API server run with the CeleryExecutor,
this machine's Redis as the broker and a fresh Postgres database as metadata database and
result backend; two ``airflow celery worker`` processes each play a host of their own: their
own host name (recorded on every task instance they run), Airflow home and temporary folder.
They share nothing but the data directory, a bucket of the test S3 server, and the ledger, a
Postgres database. Driven only through the REST API, one day is archived, then two more are
backfilled; tasks read on one host what a task of their day wrote on the other, every copy
lands in its mailbox exactly once and every day's report balances. It takes a few minutes,
so it is one test.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from icechat.dev.sample import own_people, write_day
from icechat.dev.sample.population import directory_users
from icechat.dev.sftpd import free_port
from tests.support.airflow_env import airflow_env, graph_connection, pgp_connection
from tests.support.airflow_stack import (
    CELERY,
    AirflowStack,
    CeleryWorker,
    airflow_services,
    celery_broker,
    postgres_database,
    service_env,
)

pytestmark = pytest.mark.system

DAG = "icechat_archive"
# Fixed past days: nothing here depends on today's date (no scheduled runs are made).
FIRST = date(2026, 6, 1)
BACKFILLED = (date(2026, 6, 2), date(2026, 6, 3))
DAYS = (FIRST, *BACKFILLED)
MESSAGES = 20
MAILBOXES = 4
HOSTS = ("worker-a", "worker-b")
# Whose files (or plan) each task reads: the task before it in the day.
READS = {
    "decrypt": "fetch",
    "parse_render": "decrypt",
    "map_participants": "parse_render",
    "reconcile": "map_participants",
}


@pytest.fixture
def mailboxes(sftp_server, pgp_keypair, graph_emulator, tmp_path) -> set[str]:
    """The days' encrypted exports with markers on the site; a few of the firm's people get a
    mailbox (the others are not in the tenant). Graph answers each request after 50 ms, so
    one import task takes long enough for the next to go to the other worker."""
    firm = sftp_server.username.upper()
    for day in DAYS:
        write_day(
            Path(sftp_server.served),
            firm,
            day,
            MESSAGES,
            packaging="zip",
            encrypt_to=pgp_keypair.public_file,
            marker=True,
        )
    people = {day: own_people(firm, [day], MESSAGES) for day in DAYS}
    users = directory_users({e: n for found in people.values() for e, n in found.items()})
    with_mailbox = {u["userPrincipalName"] for u in users if u.get("hasMailbox", True)}
    # The first day's people who are found on the most days: the first day has copies for
    # each mailbox, and so (mailboxes go to 8 shards by their id) two shards or more.
    days_of = Counter(e for found in people.values() for e in found if e in with_mailbox)
    first = sorted(people[FIRST].keys() & with_mailbox, key=lambda e: (-days_of[e], e))
    chosen = set(first[:MAILBOXES])
    graph_emulator.add_users([u for u in users if u["userPrincipalName"] in chosen])
    graph_emulator.set_faults(latency_ms=50)
    return chosen


@pytest.fixture
def workers(tmp_path) -> Iterator[list[CeleryWorker]]:
    """Two workers, each with its own Airflow home and temporary folder (short paths under
    /tmp: gpg puts its agent's socket in the temporary folder, and a socket path has at most
    107 bytes)."""
    folders = [Path(tempfile.mkdtemp(prefix=f"icechat-{h}-", dir="/tmp")) for h in HOSTS]
    yield [
        CeleryWorker(h, tmp_path / h / "airflow", folder)
        for h, folder in zip(HOSTS, folders, strict=True)
    ]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def stack(
    sftp_server, pgp_keypair, graph_emulator, s3_bucket, workers, tmp_path
) -> Iterator[AirflowStack]:
    """The four services and the two workers on fresh metadata and ledger databases, the
    data directory in a new bucket; all stopped and the databases dropped after."""
    home = tmp_path / "airflow"
    base = airflow_env(
        home,
        tmp_path / "unused",
        icechat_sftp=sftp_server.connection(),
        icechat_pgp=pgp_connection(pgp_keypair),
        icechat_graph=graph_connection(graph_emulator),
        icechat_s3=s3_bucket.server.connection(),
    )
    base["AIRFLOW_VAR_ICECHAT_DATA_DIR"] = s3_bucket.url(conn_id="icechat_s3")
    base["AIRFLOW_VAR_ICECHAT_REMOTE_DIR"] = sftp_server.remote_dir
    # Only the runs the test asks for: no scheduled run of the last day on unpause.
    base["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    port = free_port()
    with (
        postgres_database("icechat_celery") as database,
        postgres_database("icechat_ledger") as ledger,
    ):
        base["AIRFLOW_CONN_ICECHAT_LEDGER"] = f"postgresql://postgres@127.0.0.1:5432/{ledger}"
        env = service_env(base, database, port, executor=CELERY)
        with celery_broker(env), airflow_services(env, home, port, workers) as services:
            services.wait_until_ready(DAG)
            services.wait_for_workers(workers)
            yield services


def hosts_of(stack: AirflowStack, run_id: str) -> dict[str, str | None]:
    """Task id (with map index) -> the host name recorded by its task instance, for each task
    that ran (a mapped task with nothing to map is skipped and has none)."""
    found = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {
        ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["hostname"]
        for ti in found
        if ti["state"] != "skipped"
    }


def crossings(hosts: dict[str, str | None]) -> list[str]:
    """The tasks that read what a task on the other host wrote (their source's name given)."""
    reads = {**READS, **{t: "map_participants" for t in hosts if t.startswith("import_shard[")}}
    return [f"{t} <- {src}" for t, src in reads.items() if hosts.get(t) != hosts.get(src)]


def succeeded(stack: AirflowStack, run_id: str, workers: list[CeleryWorker]) -> dict[str, Any]:
    """Wait for a run to succeed; else fail with the end of the workers' task logs."""
    try:
        return stack.succeeded(DAG, run_id)
    except AssertionError as exc:
        logs = [
            f"--- {path}\n{path.read_text(errors='replace')[-2000:]}"
            for worker in workers
            for path in sorted((worker.home / "logs").rglob("*.log"))
            if f"run_id={run_id}" in str(path)
        ]
        raise AssertionError(f"{exc}\n" + "\n".join(logs)) from None


def report(store: Any, day: date) -> dict[str, Any]:
    """The day's report, checked to be for that day and balanced, with nothing failed."""
    found: dict[str, Any] = json.loads(store.read_bytes(f"reports/{day}.json") or b"null")
    assert found, f"no report for {day} in {store.url}"
    assert found["day"] == day.isoformat()
    assert (found["items"], found["failed"], found["balanced"]) == (MESSAGES, 0, True)
    counted = found["imported"] + found["already_present"] + found["not_mapped"]
    assert counted == found["copies"]
    return found


def scratch_folders(worker: CeleryWorker) -> tuple[set[str], list[str]]:
    """The task scratch folders the worker's task logs name, and those left in its TMPDIR."""
    named = {
        line.split(" into ", 1)[1].split('"', 1)[0]
        for path in (worker.home / "logs").rglob("*.log")
        for line in path.read_text(errors="replace").splitlines()
        if "copied " in line and " into " in line
    }
    return named, sorted(p.name for p in worker.tmpdir.glob("icechat-*"))


def test_celery_workers_on_two_hosts_archive_and_backfill_days_exactly_once(
    stack, mailboxes, workers, graph_emulator, s3_bucket
):
    stack.api("PATCH", f"/dags/{DAG}", json={"is_paused": False})

    # 1. One day archived, its import work in shards.
    body = {"logical_date": f"{FIRST}T00:00:00Z", "conf": {}}
    first_run = stack.api("POST", f"/dags/{DAG}/dagRuns", json=body)["dag_run_id"]
    succeeded(stack, first_run, workers)
    hosts = {first_run: hosts_of(stack, first_run)}
    imports = [task for task in hosts[first_run] if task.startswith("import_shard[")]
    assert len(imports) >= 2, f"the day needs two import shards to share out: {hosts}"

    # 2. Two more days backfilled over the REST API, side by side.
    stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": DAG,
            "from_date": f"{BACKFILLED[0]}T00:00:00Z",
            "to_date": f"{BACKFILLED[-1]}T00:00:00Z",
            "max_active_runs": 2,
            "reprocess_behavior": "none",
        },
    )
    backfilled = stack.api("GET", f"/dags/{DAG}/dagRuns", params={"run_type": ["backfill"]})
    run_ids = [r["dag_run_id"] for r in backfilled["dag_runs"]]
    assert len(run_ids) == len(BACKFILLED)
    for run_id in run_ids:
        succeeded(stack, run_id, workers)
        hosts[run_id] = hosts_of(stack, run_id)

    # Both hosts worked, and tasks read what a task of their day wrote on the other host.
    # Not "the shards queued together ran on both": Celery does not promise it. The four
    # shards of a day were seen to run one after another on one host (each begun within 0.1 s
    # of the last one's end) while the other, done with `shards` 0.3 s before they were
    # queued, stood idle until `reconcile`.
    ran_on = {host for day in hosts.values() for host in day.values()}
    assert ran_on == set(HOSTS), f"tasks by host: {hosts}"
    crossed = {run_id: crossings(day) for run_id, day in hosts.items()}
    assert any(crossed.values()), f"no task read across hosts: {hosts}"

    # 3. Every day balanced; every copy in its mailbox once, none twice.
    store = s3_bucket.store()
    imported = {day: report(store, day)["imported"] for day in DAYS}
    assert all(imported.values()), imported
    for upn in mailboxes:
        ids = Counter(m["internetMessageId"] for m in graph_emulator.messages(upn))
        assert [i for i, n in ids.items() if n > 1] == [], f"{upn} holds an item twice"
    held = sum(graph_emulator.message_count(upn) for upn in mailboxes)
    assert held == sum(imported.values())

    # 4. Each worker's tasks worked in scratch folders of its own TMPDIR, all removed.
    for worker in workers:
        named, left = scratch_folders(worker)
        assert named, f"{worker.hostname}'s task logs name no scratch folder"
        assert {Path(folder).parent for folder in named} == {worker.tmpdir}
        assert left == [], f"{worker.hostname} left {left} in {worker.tmpdir}"
