"""System test: the real Airflow services run the DAG, driven only through the REST API.

Scheduler (LocalExecutor), dag-processor, triggerer and API server run on a fresh Postgres
database against the test sshd and the Graph emulator. One test walks through what an
operator does: trigger a day, backfill three, read a task's log, meet a wrong key, re-run
a day. It takes a few minutes, so it is one test with numbered steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from icechat.dev.sample import own_people, write_day
from icechat.dev.sample.population import directory_users
from icechat.dev.sftpd import free_port
from tests.support.airflow_env import (
    airflow_env,
    copies_of,
    graph_connection,
    pgp_connection,
    run_airflow,
    without_mailbox,
)
from tests.support.airflow_stack import (
    AirflowStack,
    airflow_services,
    postgres_database,
    service_env,
)

pytestmark = pytest.mark.system

DAG = "icechat_archive"
VERIFY_DAG = "icechat_verify"
TODAY = datetime.now(UTC).date()
# Past days (a backfill refuses days that have not ended); the wrong-key day comes last.
D1, D2, D3, D4, WRONG_KEY_DAY = (TODAY - timedelta(days=n) for n in (7, 6, 5, 4, 3))
MESSAGES = 40
MAILBOXES_PER_DAY = 2


@dataclass(frozen=True)
class Site:
    """What the site fixture seeded: the mailboxes, and each day's copies for mailbox-less users."""

    mailboxes: set[str]
    no_mailbox: dict[date, int]


@pytest.fixture
def site(sftp_server, pgp_keypair, other_pgp_keypair, graph_emulator, tmp_path) -> Site:
    """Encrypted days D1..D4 and a day encrypted to the wrong key, with markers, on the site.

    The files carry the firm code in upper case, as ICE issues it; the SFTP login is the
    current user, in lower case. Two of each day's internal people get a mailbox in the
    emulator, and every 4th of all days' internal people is a user without one (Graph
    answering ``MailboxNotEnabledForRESTAPI`` or ``ResourceNotFound``); the others end up
    ``not_mapped`` (``not_in_tenant``), which keeps each day to a couple of import shards.
    """
    firm = sftp_server.username.upper()
    remote = sftp_server.served
    parts: dict[date, list[Path]] = {}
    people: dict[date, dict[str, str]] = {}
    for day in (D1, D2, D3, D4):
        plain = write_day(tmp_path / "plain" / str(day), firm, day, MESSAGES, packaging="zip")
        parts[day] = plain.paths
        people[day] = own_people(firm, [day], MESSAGES)
        write_day(
            remote,
            firm,
            day,
            MESSAGES,
            packaging="zip",
            encrypt_to=pgp_keypair.public_file,
            marker=True,
        )
    write_day(
        remote, firm, WRONG_KEY_DAY, 10, encrypt_to=other_pgp_keypair.public_file, marker=True
    )
    users = directory_users({e: n for day in people.values() for e, n in day.items()})
    mailbox_less = without_mailbox(users)
    assert {u["noMailboxAnswer"] for u in users if not u.get("hasMailbox", True)} == {
        "MailboxNotEnabledForRESTAPI",
        "ResourceNotFound",
    }
    mailboxes = {
        email
        for day in people.values()
        for email in sorted(set(day) - mailbox_less)[:MAILBOXES_PER_DAY]
    }
    graph_emulator.add_users(
        [u for u in users if u["userPrincipalName"] in mailboxes | mailbox_less]
    )
    return Site(mailboxes, {day: copies_of(parts[day], mailbox_less) for day in parts})


@pytest.fixture
def stack(sftp_server, pgp_keypair, graph_emulator, tmp_path) -> Iterator[AirflowStack]:
    """The four Airflow services on a fresh metadata database; all stopped and dropped after."""
    home = tmp_path / "airflow"
    base = airflow_env(
        home,
        tmp_path / "data",
        icechat_sftp=sftp_server.connection(),
        icechat_pgp=pgp_connection(pgp_keypair),
        icechat_graph=graph_connection(graph_emulator),
    )
    base["AIRFLOW_VAR_ICECHAT_REMOTE_DIR"] = sftp_server.remote_dir
    # icechat_verify on TODAY covers TODAY-7 .. TODAY-4: the archived days D1..D4.
    base["AIRFLOW_VAR_ICECHAT_VERIFY_DAYS"] = "4"
    base["AIRFLOW_VAR_ICECHAT_VERIFY_LAG_DAYS"] = "4"
    port = free_port()
    with postgres_database("icechat_sys") as database:
        env = service_env(base, database, port)
        with airflow_services(env, home, port) as services:
            pooled = run_airflow(env, "pools", "set", "icechat_graph", "4", "Graph requests")
            assert pooled.returncode == 0, pooled.stderr[-2000:]
            services.wait_until_ready(DAG)
            services.wait_until_ready(VERIFY_DAG)
            yield services


def trigger(
    stack: AirflowStack, logical_date: date | None, conf: dict[str, Any], dag: str = DAG
) -> str:
    """POST a manual run; its run id."""
    body = {
        "logical_date": f"{logical_date}T00:00:00Z" if logical_date else None,
        "conf": conf,
    }
    run = stack.api("POST", f"/dags/{dag}/dagRuns", json=body)
    return str(run["dag_run_id"])


def succeeded(stack: AirflowStack, run_id: str, dag: str = DAG) -> dict[str, Any]:
    """Wait for a run; it must succeed (else: its task states and failed tasks' logs)."""
    run = stack.wait_for_run(dag, run_id)
    if run["state"] != "success":
        states = stack.task_states(dag, run_id)
        logs = [
            f"--- {task}\n{stack.task_log(dag, run_id, task)[-3000:]}"
            for task, state in states.items()
            if state == "failed" and "[" not in task
        ]
        raise AssertionError(f"run {run_id} {run['state']}: {states}\n" + "\n".join(logs))
    return run


def report(data: Path, day: date, site: Site) -> dict[str, Any]:
    """The day's report, checked to be balanced, for that day, and to count no-mailbox copies."""
    found: dict[str, Any] = json.loads((data / "reports" / f"{day}.json").read_text())
    assert found["day"] == day.isoformat()
    assert found["items"] == MESSAGES
    assert found["failed"] == 0
    assert found["balanced"] is True
    counted = found["imported"] + found["already_present"] + found["not_mapped"]
    assert counted == found["copies"]
    assert found["not_mapped_reasons"].get("no_mailbox", 0) == site.no_mailbox[day]
    return found


def secret_texts(pgp_keypair: Any, graph_emulator: Any, sftp_server: Any) -> dict[str, str]:
    """What must never be logged, by name: passphrase, client secret, lines of private keys."""
    found = {
        "pgp passphrase": pgp_keypair.passphrase,
        "graph client secret": graph_emulator.client_secret,
        "a private key header": "PRIVATE KEY",
    }
    for name, text in (("pgp", pgp_keypair.secret_armored), ("ssh", sftp_server.private_key)):
        lines = [line for line in text.splitlines() if len(line) > 40 and " " not in line]
        found.update({f"{name} private key line {n}": lines[n] for n in range(0, len(lines), 5)})
    return found


def in_mailboxes(graph_emulator: Any, site: Site) -> int:
    """Items in the ICE Chat folders of the test mailboxes."""
    return sum(graph_emulator.message_count(upn) for upn in site.mailboxes)


def test_airflow_services_archive_days_backfill_and_rerun(
    stack, site, graph_emulator, sftp_server, pgp_keypair, other_pgp_keypair, tmp_path
):
    data = tmp_path / "data"

    # 1. One day, triggered over the REST API with its logical date.
    first_run = trigger(stack, D1, {})
    succeeded(stack, first_run)
    first = report(data, D1, site)
    assert first["firm"] == sftp_server.username.upper() != sftp_server.username
    assert first["imported"] > 0
    assert in_mailboxes(graph_emulator, site) == first["imported"]
    assert sum(site.no_mailbox.values()) > 0

    # 2. A backfill of D2..D4 (both ends included): one run per day, logical date = that day.
    backfill = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": DAG,
            "from_date": f"{D2}T00:00:00Z",
            "to_date": f"{D4}T00:00:00Z",
            "max_active_runs": 1,
            "reprocess_behavior": "none",
        },
    )
    runs = stack.api("GET", f"/dags/{DAG}/dagRuns", params={"run_type": "backfill"})["dag_runs"]
    assert sorted(r["logical_date"][:10] for r in runs) == [str(D2), str(D3), str(D4)]
    imported = first["imported"]
    for run in sorted(runs, key=lambda r: r["logical_date"]):
        done = succeeded(stack, run["dag_run_id"])
        day = date.fromisoformat(done["logical_date"][:10])
        assert done["data_interval_start"][:10] == str(day)
        assert done["data_interval_end"][:10] == str(day + timedelta(days=1))
        imported += report(data, day, site)["imported"]
    assert in_mailboxes(graph_emulator, site) == imported

    # 3. The reconcile task's log, fetched over REST, holds the day's summary.
    log = stack.task_log(DAG, first_run, "reconcile")
    summary = (
        f"ICE Chat {D1} {first['firm']}: 1 file(s), {MESSAGES} items, {first['copies']} copies: "
        f"{first['imported']} imported"
    )
    assert summary in log
    assert "balanced" in log.split(summary, 1)[1].splitlines()[0]

    # 4. A day encrypted to another key: the run fails, decrypt's log says what to do.
    wrong_run = trigger(stack, None, {"day": str(WRONG_KEY_DAY)})
    assert stack.wait_for_run(DAG, wrong_run)["state"] == "failed"
    states = stack.task_states(DAG, wrong_run)
    assert (states["decrypt"], states["reconcile"]) == ("failed", "failed")
    assert "task decrypt has no result" in stack.task_log(DAG, wrong_run, "reconcile")
    decrypt_log = stack.task_log(DAG, wrong_run, "decrypt")
    wanted = decrypt_log.split("is encrypted to key id(s) ", 1)[1].split(", but", 1)[0]
    assert other_pgp_keypair.keyid in wanted
    held = decrypt_log.split("icechat_pgp holds ", 1)[1].split(";", 1)[0]
    assert pgp_keypair.keyid in held
    assert "ask ICE to encrypt to the public key you sent them" in decrypt_log
    secrets = secret_texts(pgp_keypair, graph_emulator, sftp_server)
    assert [name for name, text in secrets.items() if text in decrypt_log] == []

    # 5. D1 again (a new run, day given as a param): nothing new reaches a mailbox.
    before = in_mailboxes(graph_emulator, site)
    again_run = trigger(stack, None, {"day": str(D1)})
    succeeded(stack, again_run)
    again = report(data, D1, site)
    assert again["imported"] == 0
    assert again["already_present"] == first["imported"] + first["already_present"]
    assert in_mailboxes(graph_emulator, site) == before

    # 6. icechat_verify after the archived days: the range comes from its variables (four
    # days ending four days before the run), every day verifies and has its report.
    verify_run = trigger(stack, TODAY, {}, dag=VERIFY_DAG)
    succeeded(stack, verify_run, dag=VERIFY_DAG)
    states = stack.task_states(VERIFY_DAG, verify_run)
    assert sorted(s for t, s in states.items() if t.startswith("verify_day[")) == ["success"] * 4
    for day in (D1, D2, D3, D4):
        verified = json.loads((data / "reports" / f"verify-{day}.json").read_text())
        assert verified["verified"] is True, verified["findings"][:3]
        assert verified["checks"]["mailboxes"]["found"] == verified["checks"]["mailboxes"]["copies"]
    assert not (data / "reports" / f"verify-{WRONG_KEY_DAY}.json").exists()

    # The scheduler marks a backfill complete (it looks every 30 s) once its runs are done.
    assert stack.wait_for(
        lambda: stack.api("GET", f"/backfills/{backfill['id']}")["completed_at"], timeout=60
    )

    # No secret in any task log or service output of the whole session.
    logged = [p for p in stack.home.rglob("*") if p.is_file() and p.suffix in (".log", ".out")]
    assert len(logged) > 40
    leaks = {}
    for path in logged:
        text = path.read_text(errors="replace")
        found = [name for name, secret in secrets.items() if secret in text]
        if found:
            leaks[str(path.relative_to(stack.home))] = found
    assert leaks == {}
