"""The DAG: it imports cleanly, and ``airflow dags test`` archives a sample day end to end
(more runs of it: ``test_dag_runs.py``)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from icechat.dev.sample.population import directory_users
from icechat.ice.delivery import marker_name, part_name
from icechat.ice.parser import read_part
from icechat.ledger import CopyState, Ledger, LedgerReader
from tests.support.airflow_env import REPO, copies_of, run_airflow, without_mailbox
from tests.support.dags_test import DAY, firm_people


def test_dagbag_imports_without_errors_or_warnings():
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags.get("icechat_archive")
    assert dag is not None
    ours = [w for w in caught if "icechat" in str(w.filename) or "dags" in str(w.filename)]
    assert ours == []
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is False
    assert dag.max_active_runs == 8, "a day waiting for ICE must not hold up the others"
    assert dag.get_task("wait_for_export").mode == "reschedule"
    verify = bag.dags.get("icechat_verify")
    assert verify is not None
    assert type(verify.timetable).__name__ == "CronTriggerTimetable"
    assert verify.timetable.expression == "0 6 * * 1"
    assert verify.max_active_runs == 1


@pytest.mark.parametrize("pool", [None, "icechat_graph"])
def test_graph_tasks_run_without_a_pool_unless_the_deployment_names_one(monkeypatch, pool):
    """No pool to create: default_pool with a cap across all runs; a named pool is opt-in."""
    from airflow.dag_processing.dagbag import DagBag

    if pool:
        monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_GRAPH_POOL", pool)
    else:
        monkeypatch.delenv("AIRFLOW_VAR_ICECHAT_GRAPH_POOL", raising=False)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    tasks = [
        bag.dags["icechat_archive"].get_task("import_shard"),
        bag.dags["icechat_verify"].get_task("verify_day"),
    ]
    assert [t.pool for t in tasks] == [pool or "default_pool"] * 2
    caps = [t.max_active_tis_per_dag for t in tasks]
    assert caps == ([None, None] if pool else [8, 2])


def test_a_bad_pool_name_is_an_import_error_naming_the_variable(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_GRAPH_POOL", "graph pool")
    bag = DagBag(dag_folder=str(REPO / "dags" / "icechat_archive.py"))
    (error,) = bag.import_errors.values()
    assert "variable icechat_graph_pool is 'graph pool'; name an Airflow pool" in error


def test_scheduled_runs_start_a_run_for_each_missed_day():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "icechat_archive.py")).dags["icechat_archive"]
    catch_up = dag.get_task("catch_up")
    assert catch_up.operator_class.__name__ == "TriggerDagRunOperator"
    assert catch_up.partial_kwargs["trigger_dag_id"] == "icechat_archive"
    assert catch_up.partial_kwargs["skip_when_already_exists"] is True
    assert catch_up.upstream_task_ids == {"missed_days"}


def test_the_verify_schedule_is_the_variable_and_a_bad_one_names_it(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_VERIFY_SCHEDULE", "30 5 * * *")
    verify = DagBag(dag_folder=str(REPO / "dags" / "icechat_verify.py")).dags["icechat_verify"]
    assert verify.timetable.expression == "30 5 * * *"
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_VERIFY_SCHEDULE", "every monday")
    bag = DagBag(dag_folder=str(REPO / "dags" / "icechat_verify.py"))
    (error,) = bag.import_errors.values()
    assert "variable icechat_verify_schedule is 'every monday'; give a cron expression" in error


def test_reconcile_gets_every_upstream_result_as_an_argument():
    """No task pulls another's XCom by a task id written twice: results are arguments."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["icechat_archive"]
    reconcile = dag.get_task("reconcile")
    stages = ["wait_for_export", "fetch", "decrypt", "parse_render", "map_participants"]
    upstream = reconcile.op_kwargs["upstream"]
    assert list(upstream) == stages
    assert [arg.operator.task_id for arg in upstream.values()] == stages
    assert reconcile.op_kwargs["results"].operator.task_id == "import_shard"
    assert set(stages) | {"import_shard"} <= reconcile.upstream_task_ids
    assert dag.get_task("wait_for_export").day.operator.task_id == "resolve_day"


class Archive:
    """Where a test run keeps its data: a local folder, or a bucket of the test S3 server."""

    def __init__(self, tmp_path: Path, bucket: Any = None) -> None:
        self.bucket, self.data = bucket, tmp_path / "data"
        self.store = bucket.store() if bucket else None
        self.ledger = (
            f"sqlite:///{tmp_path / 'ledger.sqlite' if bucket else self.data / 'ledger.sqlite'}"
        )
        # Short: gpg's agent socket goes under TMPDIR, and a socket path has 107 bytes at most.
        self.scratch = Path(tempfile.mkdtemp(prefix="icechat-scratch-", dir="/tmp"))

    def settings(self) -> dict[str, Any]:
        """run_day's arguments: for S3 the data directory, its connection, the ledger, a
        retention of one day, and the tasks' scratch folders under ``scratch``."""
        if self.bucket is None:
            return {}
        return {
            "connections": {
                "icechat_s3": self.bucket.server.connection(),
                "icechat_ledger": {"conn_type": "generic", "extra": {"url": self.ledger}},
            },
            "data_dir": self.bucket.url(conn_id="icechat_s3"),
            "raw_retention": "1d",
        }

    def read(self, key: str) -> bytes | None:
        if self.store is None:
            path = self.data / key
            return path.read_bytes() if path.exists() else None
        return self.store.read_bytes(key)

    def report(self) -> dict[str, Any]:
        return json.loads(self.read(f"reports/{DAY}.json") or b"null")

    def work_left(self) -> list[str]:
        if self.store is None:
            work = self.data / "work" / DAY.isoformat()
            return [str(p) for p in work.rglob("*")] if work.exists() else []
        client, name = self.bucket.client(), self.bucket.name
        listed = client.list_object_versions(Bucket=name, Prefix=f"icechat/work/{DAY}")
        return [v["Key"] for v in listed.get("Versions", []) + listed.get("DeleteMarkers", [])]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_dags_test_archives_a_day_and_a_rerun_adds_nothing(
    sample_site, run_day, sftp_server, graph_emulator, tmp_path, request, monkeypatch, where
):
    """Once with a local data directory, once with the data directory in S3: no task finds
    another's file on its disk, originals are locked, plaintext leaves no version behind."""
    archive = Archive(tmp_path, request.getfixturevalue("s3_bucket") if where == "s3" else None)
    parts = [p.path for p in sample_site.parts]
    users = directory_users(firm_people(sftp_server))
    graph_emulator.add_users(users)
    people = {u["userPrincipalName"] for u in users}
    # Some of the firm's own people have no mailbox; Graph answers both ways for them.
    mailbox_less = without_mailbox(users)
    answers = {u["noMailboxAnswer"] for u in users if u["userPrincipalName"] in mailbox_less}
    assert answers == {"MailboxNotEnabledForRESTAPI", "ResourceNotFound"}
    settings = archive.settings()
    if where == "s3":
        monkeypatch.setenv("TMPDIR", str(archive.scratch))
        request.addfinalizer(lambda: shutil.rmtree(archive.scratch, ignore_errors=True))
    env, _data, result = run_day(**settings)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    report = archive.report()
    assert report["firm"] == sftp_server.username.upper() != sftp_server.username
    assert report["balanced"] is True
    assert report["items"] == 120
    assert report["failed"] == 0
    assert report["imported"] > 0
    assert report["imported"] + report["already_present"] + report["not_mapped"] == report["copies"]
    assert report["not_mapped_reasons"]["no_mailbox"] == copies_of(parts, mailbox_less) > 0
    assert {
        entry["address"]
        for entry in report["unmapped_participants"].values()
        if entry["reason"] == "no_mailbox"
    } == mailbox_less
    in_mailboxes = sum(graph_emulator.message_count(e) for e in people)
    assert in_mailboxes == report["imported"]
    with Ledger(archive.ledger) as ledger:
        states = Counter(c.state for c in ledger.copies(DAY))
        (run,) = ledger.runs(DAY)
    assert states[CopyState.DONE] == report["imported"]
    assert states[CopyState.NOT_MAPPED] == report["not_mapped"]
    # The ledger says where each participant's copy of a chat item went.
    with read_part(sample_site.parts[0].path) as part:
        item = next(iter(part.items()))
    reader = LedgerReader(archive.ledger)
    found = reader.search(item.message_id)
    reader.close()
    assert sorted(f.im_id for f in found) == sorted(p.im_id for p in item.participants)
    assert {f.state for f in found} <= {CopyState.DONE, CopyState.NOT_MAPPED}
    assert all(f.graph_id for f in found if f.state is CopyState.DONE)
    assert archive.work_left() == []
    if where == "s3":
        # The re-run is the local variant's: CI time. A re-fetch into S3 writes nothing again
        # (tests/glue/test_tasks.py); the importer's exactly-once does not depend on the store.
        assert_locked_in_s3(archive, report, run)
        return
    again = run_airflow(env, "dags", "test", "icechat_archive", DAY.isoformat())
    assert again.returncode == 0, again.stdout[-4000:]
    second = archive.report()
    assert second["imported"] == 0
    assert second["already_present"] == report["imported"] + report["already_present"]
    assert sum(graph_emulator.message_count(e) for e in people) == in_mailboxes
    unflagged = [
        [{k: v for k, v in f.items() if k != "flags"} for f in r["files"]] for r in (report, second)
    ]
    assert unflagged[0] == unflagged[1], "the same originals, not fetched again"


def assert_locked_in_s3(archive: Archive, report: dict[str, Any], run: Any) -> None:
    """Each original is locked in the bucket as the manifest, the report and the ledger say;
    nothing was kept on a local disk."""
    manifest = json.loads(archive.read(f"raw/{DAY}/manifest.json") or b"{}")
    kept = {entry["name"]: entry for entry in manifest["files"]}
    client = archive.bucket.client()
    assert len(report["files"]) == 2
    for shown, ran in zip(report["files"], run.files, strict=True):
        stored = kept[shown["name"]]
        head = client.head_object(
            Bucket=archive.bucket.name, Key=f"icechat/raw/{DAY}/{stored['stored']}"
        )
        assert head["ObjectLockMode"] == "COMPLIANCE"
        until = head["ObjectLockRetainUntilDate"].isoformat()
        assert shown["lock_mode"] == stored["lock_mode"] == ran.lock_mode == "compliance"
        assert shown["retain_until"] == stored["retain_until"] == ran.retain_until == until
    assert not archive.data.exists(), "nothing of the day on a local data directory"
    assert list(archive.scratch.iterdir()) == [], "every task removed its scratch folder"


def test_a_day_whose_participants_map_nowhere_is_reported_balanced(sample_site, run_day):
    """No mailbox for anyone: no import task runs, and the report still accounts for all."""
    _env, data, result = run_day()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    report = json.loads((data / "reports" / f"{DAY}.json").read_text())
    assert report["copies"] == report["not_mapped"] > 0
    assert report["imported"] == report["failed"] == 0
    assert report["balanced"] is True


def test_a_day_without_chats_is_an_empty_balanced_report(sftp_server, run_day):
    """A holiday: one unencrypted part with no conversation; nothing to archive, all told."""
    firm = sftp_server.username.upper()
    site = Path(sftp_server.remote_dir)
    part = site / part_name(firm, DAY, None, "xml")
    part.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><FileDump FirmCode="{firm}" '
        f'ExportDate="{DAY}" SchemaVersion="1.0"></FileDump>'
    )
    digest = hashlib.sha256(part.read_bytes()).hexdigest()
    marker = f"{part.name},{part.stat().st_size},{digest},0\n"
    (site / marker_name(firm, DAY)).write_text(marker)
    _env, data, result = run_day()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    report = json.loads((data / "reports" / f"{DAY}.json").read_text())
    assert (report["items"], report["copies"], len(report["files"])) == (0, 0, 1)
    assert report["balanced"] is True
