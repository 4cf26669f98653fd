"""More ``airflow dags test`` runs of the sample day: a missing permission, transcript mode,
and the verify DAG after an archived day. A file apart from ``test_dag.py`` so that the two
test workers of ``make test`` share the DAG runs."""

from __future__ import annotations

import json

from icechat.ledger import CopyState, Ledger
from tests.support.airflow_env import graph_connection, run_airflow
from tests.support.dags_test import DAY, firm_people


def test_an_app_without_mail_permission_fails_the_day_saying_what_to_grant(
    sample_site, run_day, sftp_server, pgp_keypair, graph_emulator
):
    people = firm_people(sftp_server)
    graph_emulator.add_users([{"userPrincipalName": e} for e in people])
    graph = graph_connection(
        graph_emulator,
        client_id=graph_emulator.nomail_client_id,
        secret=graph_emulator.nomail_client_secret,
    )
    _env, _data, result = run_day(graph=graph)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Mail.ReadWrite" in log
    assert "not retried: fix the cause" in log
    assert graph_emulator.nomail_client_secret not in log
    assert pgp_keypair.passphrase not in log


def test_transcript_mode_archives_one_item_per_conversation_day(
    sample_site, run_day, sftp_server, graph_emulator
):
    people = firm_people(sftp_server)
    graph_emulator.add_users([{"userPrincipalName": e} for e in people])
    _env, data, result = run_day(
        item_mode="transcript",
        folder_name="ICE Chat Transcripts",
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    report = json.loads((data / "reports" / f"{DAY}.json").read_text())
    assert report["item_mode"] == "transcript"
    assert report["items"] == 120
    assert 0 < report["mail_items"] < 120
    assert report["balanced"] is True and report["failed"] == 0
    stored = sum(graph_emulator.message_count(e, "ICE Chat Transcripts") for e in people)
    assert stored == report["imported"] > 0
    subjects = {
        m["subject"] for e in people for m in graph_emulator.messages(e, "ICE Chat Transcripts")
    }
    assert all(s.startswith("ICE Chat transcript:") for s in subjects)


def test_icechat_verify_checks_the_archived_day_and_repairs_only_when_asked(
    sample_site, run_day, sftp_server, pgp_keypair, graph_emulator
):
    """The day range comes from the variables: a run on D+2 with one day and two days lag."""
    people = firm_people(sftp_server)
    graph_emulator.add_users([{"userPrincipalName": e} for e in people])
    env, data, result = run_day()
    assert result.returncode == 0, result.stdout[-4000:]
    env["AIRFLOW_VAR_ICECHAT_VERIFY_DAYS"] = "1"
    run_on = "2026-11-28"
    clean = run_airflow(env, "dags", "test", "icechat_verify", run_on, timeout=180)
    assert clean.returncode == 0, clean.stdout[-6000:] + clean.stderr[-3000:]
    report = json.loads((data / "reports" / f"verify-{DAY}.json").read_text())
    assert report["verified"] is True
    assert report["checks"]["mailboxes"]["copies"] == report["checks"]["mailboxes"]["found"] > 0
    assert report["checks"]["originals"]["read_by_the_run"] == 2  # decrypted with icechat_pgp

    with Ledger(f"sqlite:///{data / 'ledger.sqlite'}") as ledger:
        gone = next(r for r in ledger.copies(DAY) if r.state is CopyState.DONE)
    graph_emulator.graph("POST", f"/users/{gone.mailbox}/messages/{gone.graph_id}/permanentDelete")
    differs = run_airflow(env, "dags", "test", "icechat_verify", run_on, timeout=180)
    log = differs.stdout + differs.stderr
    assert differs.returncode != 0
    assert "DIFFERS (1 missing_item)" in log and gone.item_key in log
    assert "icechat verify --repair" in log
    assert graph_emulator.client_secret not in log and pgp_keypair.passphrase not in log

    repair = run_airflow(
        env, "dags", "test", "icechat_verify", run_on, "-c", '{"repair": true}', timeout=180
    )
    assert repair.returncode == 0, repair.stdout[-6000:]
    repaired = json.loads((data / "reports" / f"verify-{DAY}.json").read_text())["repaired"]
    assert [(r["key"], r["outcome"]) for r in repaired] == [(gone.item_key, "imported")]
