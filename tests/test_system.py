"""System test: the real Airflow services run the DAG, driven only through the REST API.

Scheduler (LocalExecutor), dag-processor, triggerer and API server run on a fresh Postgres
database against the test sshd and the Graph emulator, with no Airflow pool created. One
test walks through what an operator meets: unpausing the DAG starts yesterday, whose export
ICE has not uploaded, and catches up two earlier days no run was made for (as after the
scheduler was stopped over two day boundaries); while yesterday waits, a triggered day and
a three-day backfill run side by side; a task's log; a wrong key; a re-run and a cleared
run; ICE's late upload; verification. It takes a few minutes, so it is one test with
numbered steps.
"""

from __future__ import annotations

import json
from collections import Counter
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
# Yesterday is the day the scheduler runs on unpause; ICE uploads it only late in the test.
SCHEDULED = TODAY - timedelta(days=1)
# The go-live day and the next: no run was made for them (the scheduler was down).
MISSED = (TODAY - timedelta(days=3), TODAY - timedelta(days=2))
GO_LIVE = MISSED[0]
# Past days before go-live, triggered and backfilled by hand; the wrong-key day before them.
D1, D2, D3, D4, WRONG_KEY_DAY = (TODAY - timedelta(days=n) for n in (7, 6, 5, 4, 8))
ARCHIVED = (D1, D2, D3, D4, *MISSED, SCHEDULED)
MESSAGES = 40
MAILBOXES = 4
POKE_SECONDS = 20


@dataclass(frozen=True)
class Site:
    """What the site fixture seeded: the mailboxes, each day's copies for mailbox-less users,
    and the scheduled day's export, which the test uploads when ICE would."""

    mailboxes: set[str]
    no_mailbox: dict[date, int]
    late_upload: Path


@pytest.fixture
def site(sftp_server, pgp_keypair, other_pgp_keypair, graph_emulator, tmp_path) -> Site:
    """Encrypted days with markers on the site (all but the scheduled day, kept aside), and a
    day encrypted to the wrong key.

    The files carry the firm code in upper case, as ICE issues it; the SFTP login is the
    current user, in lower case. The internal people found on most days get a mailbox in
    the emulator, so days share mailboxes; every 4th of all days' internal people is a
    user without one (Graph answering ``MailboxNotEnabledForRESTAPI`` or
    ``ResourceNotFound``); the others end up ``not_mapped`` (``not_in_tenant``), which keeps
    each day to a couple of import shards. Graph answers each request after 50 ms, so
    imports of different days overlap.
    """
    firm = sftp_server.username.upper()
    remote = Path(sftp_server.served)
    late = tmp_path / "ice-outbox"
    parts: dict[date, list[Path]] = {}
    people: dict[date, dict[str, str]] = {}
    for day in ARCHIVED:
        plain = write_day(tmp_path / "plain" / str(day), firm, day, MESSAGES, packaging="zip")
        parts[day] = plain.paths
        people[day] = own_people(firm, [day], MESSAGES)
        write_day(
            late if day == SCHEDULED else remote,
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
    days_of = Counter(e for day in people.values() for e in day if e not in mailbox_less)
    mailboxes = {e for e, _ in days_of.most_common(MAILBOXES)}
    graph_emulator.add_users(
        [u for u in users if u["userPrincipalName"] in mailboxes | mailbox_less]
    )
    graph_emulator.set_faults(latency_ms=50)
    return Site(mailboxes, {day: copies_of(parts[day], mailbox_less) for day in parts}, late)


@pytest.fixture
def stack(sftp_server, pgp_keypair, graph_emulator, tmp_path) -> Iterator[AirflowStack]:
    """The four Airflow services on a fresh metadata database; all stopped and dropped after.

    No pool is created: the Graph tasks run in default_pool.
    """
    home = tmp_path / "airflow"
    base = airflow_env(
        home,
        tmp_path / "data",
        icechat_sftp=sftp_server.connection(),
        icechat_pgp=pgp_connection(pgp_keypair),
        icechat_graph=graph_connection(graph_emulator),
    )
    base["AIRFLOW_VAR_ICECHAT_REMOTE_DIR"] = sftp_server.remote_dir
    base["AIRFLOW_VAR_ICECHAT_GO_LIVE"] = GO_LIVE.isoformat()
    base["AIRFLOW_VAR_ICECHAT_POKE_INTERVAL"] = str(POKE_SECONDS)
    # icechat_verify's scheduled run on unpause is TODAY's: it covers TODAY-7 .. TODAY-4,
    # the days D1..D4.
    base["AIRFLOW_VAR_ICECHAT_VERIFY_SCHEDULE"] = "0 0 * * *"
    base["AIRFLOW_VAR_ICECHAT_VERIFY_DAYS"] = "4"
    base["AIRFLOW_VAR_ICECHAT_VERIFY_LAG_DAYS"] = "4"
    port = free_port()
    with postgres_database("icechat_sys") as database:
        env = service_env(base, database, port)
        with airflow_services(env, home, port) as services:
            services.wait_until_ready(DAG)
            services.wait_until_ready(VERIFY_DAG)
            yield services


def trigger(stack: AirflowStack, logical_date: date | None, conf: dict[str, Any]) -> str:
    """POST a manual run; its run id."""
    body = {
        "logical_date": f"{logical_date}T00:00:00Z" if logical_date else None,
        "conf": conf,
    }
    run = stack.api("POST", f"/dags/{DAG}/dagRuns", json=body)
    return str(run["dag_run_id"])


def runs(stack: AirflowStack, dag: str = DAG, **params: Any) -> list[dict[str, Any]]:
    """The DAG's runs (filtered as the REST API filters them)."""
    found: list[dict[str, Any]] = stack.api("GET", f"/dags/{dag}/dagRuns", params=params)[
        "dag_runs"
    ]
    return found


def succeeded(stack: AirflowStack, run_id: str, dag: str = DAG) -> dict[str, Any]:
    """Wait for a run; it must succeed (else: its task states and failed tasks' logs)."""
    return stack.succeeded(dag, run_id)


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
    """Items in the ICE Chat folders of the test mailboxes; none of them twice."""
    for upn in site.mailboxes:
        ids = Counter(m["internetMessageId"] for m in graph_emulator.messages(upn))
        assert [i for i, n in ids.items() if n > 1] == [], f"{upn} holds an item twice"
    return sum(graph_emulator.message_count(upn) for upn in site.mailboxes)


def waiting(stack: AirflowStack, run_id: str) -> bool:
    """Whether the run is still waiting for its export (between two looks, or looking)."""
    run = stack.api("GET", f"/dags/{DAG}/dagRuns/{run_id}")
    sensor = stack.task_states(DAG, run_id).get("wait_for_export")
    return run["state"] == "running" and sensor in ("up_for_reschedule", "queued", "running")


def test_airflow_services_run_days_side_by_side_catch_up_rerun_and_verify(
    stack, site, graph_emulator, sftp_server, pgp_keypair, other_pgp_keypair, tmp_path
):
    data = tmp_path / "data"

    # 1. Unpausing the DAG: the scheduler starts yesterday, which waits for ICE; that run
    # starts a run for each day since go-live with no report and no run.
    stack.api("PATCH", f"/dags/{DAG}", json={"is_paused": False})
    scheduled = stack.wait_for(lambda: runs(stack, run_type=["scheduled"]), timeout=120)
    assert scheduled, "unpausing makes the scheduler run the last finished day"
    (scheduled_run,) = [r["dag_run_id"] for r in scheduled]
    assert scheduled[0]["logical_date"][:10] == str(SCHEDULED)
    assert stack.wait_for(lambda: waiting(stack, scheduled_run), timeout=180)

    # 2. While it waits: one day triggered and three backfilled over the REST API, all at
    # once, beside the two caught-up days.
    first_run = trigger(stack, D1, {})
    backfill = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": DAG,
            "from_date": f"{D2}T00:00:00Z",
            "to_date": f"{D4}T00:00:00Z",
            "max_active_runs": 3,
            "reprocess_behavior": "none",
        },
    )
    backfilled = runs(stack, run_type=["backfill"])
    assert sorted(r["logical_date"][:10] for r in backfilled) == [str(D2), str(D3), str(D4)]
    caught_up = [f"catchup__{day}" for day in MISSED]
    assert stack.wait_for(
        lambda: {r["dag_run_id"] for r in runs(stack)} >= set(caught_up), timeout=180
    ), "the scheduled run starts the missed days' runs by itself"
    for run_id in (first_run, *(r["dag_run_id"] for r in backfilled), *caught_up):
        done = succeeded(stack, run_id)
        day = date.fromisoformat(done["logical_date"][:10])
        if done["run_type"] == "backfill":
            assert done["data_interval_start"][:10] == str(day)
            assert done["data_interval_end"][:10] == str(day + timedelta(days=1))
        if run_id in caught_up:
            assert done["triggered_by"] == "operator" and day in MISSED
        assert report(data, day, site)["attempt"] == 0
    assert waiting(stack, scheduled_run), "the scheduled day still waits for ICE"
    imported = {day: report(data, day, site)["imported"] for day in (D1, D2, D3, D4, *MISSED)}
    assert all(imported.values())
    assert in_mailboxes(graph_emulator, site) == sum(imported.values())
    first = report(data, D1, site)

    # 3. The reconcile task's log, fetched over REST, holds the day's summary.
    log = stack.task_log(DAG, first_run, "reconcile")
    summary = (
        f"ICE Chat {D1} {first['firm']}: 1 file(s), {MESSAGES} items, {first['copies']} copies: "
        f"{first['imported']} imported"
    )
    assert first["firm"] == sftp_server.username.upper() != sftp_server.username
    assert summary in log
    assert "balanced" in log.split(summary, 1)[1].splitlines()[0]

    # 4. ICE uploads yesterday at last: its next look finds it complete.
    for part in site.late_upload.iterdir():
        part.rename(Path(sftp_server.served) / part.name)

    # 5. A day encrypted to another key: the run fails, decrypt's log says what to do.
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

    # 6. D1 again (a new run, day given as a param): nothing new (the mailboxes are counted
    # in step 8, once yesterday's late import is done too).
    again_run = trigger(stack, None, {"day": str(D1)})
    succeeded(stack, again_run)
    again = report(data, D1, site)
    assert again["imported"] == 0
    assert again["already_present"] == first["imported"] + first["already_present"]
    assert again["already_present_from"] == [
        {"run_id": first_run, "attempt": 0, "copies": first["imported"]}
    ]

    # 7. D1's first run cleared over the REST API: it runs again under its run id, as
    # attempt 1, and says it imported nothing and what was already there.
    stack.api("POST", f"/dags/{DAG}/dagRuns/{first_run}/clear", json={"dry_run": False})
    succeeded(stack, first_run)
    cleared = report(data, D1, site)
    assert (cleared["run_id"], cleared["attempt"], cleared["cleared_rerun"]) == (
        first_run,
        1,
        True,
    )
    assert (cleared["imported"], cleared["already_present"]) == (0, again["already_present"])
    assert cleared["imported_by"] == []
    cleared_log = stack.task_log(DAG, first_run, "reconcile")
    assert f"0 imported, {again['already_present']} already present" in cleared_log
    assert f"cleared re-run: attempt 1 of run {first_run}" in cleared_log

    # 8. The scheduled day, archived once ICE uploaded it; across all runs every copy is
    # in its mailbox once, and no mailbox ever had more than 4 requests in flight.
    succeeded(stack, scheduled_run)
    late = report(data, SCHEDULED, site)
    assert late["imported"] > 0
    assert in_mailboxes(graph_emulator, site) == sum(imported.values()) + late["imported"]
    peaks = graph_emulator.peak_concurrency()
    assert site.mailboxes <= set(peaks)
    assert max(peaks.values()) <= 4, peaks

    # 9. icechat_verify unpaused: its scheduled run (today) verifies D1..D4, four days
    # ending four days back (its variables); every day verifies and has its report.
    stack.api("PATCH", f"/dags/{VERIFY_DAG}", json={"is_paused": False})
    verify_runs = stack.wait_for(lambda: runs(stack, VERIFY_DAG), timeout=120)
    assert verify_runs, "unpausing icechat_verify runs today's verification"
    (verify_run,) = [r["dag_run_id"] for r in verify_runs]
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
