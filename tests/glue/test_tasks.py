"""The task bodies: run context into core arguments, core errors into retry or fail."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date
from pathlib import Path

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from icechat.exceptions import DeliveryError, ExportFormatError
from icechat.glue import tasks
from icechat.mapping.plan import PlannedCopy
from icechat.store import ObjectStore
from tests.support.airflow_env import graph_connection
from tests.support.archived_day import DAY, FIRM, busiest, sample_parts
from tests.support.fixtures.export_day import MakeDay
from tests.support.fixtures.sftp_server import SftpServer
from tests.support.graph_import_helpers import assert_exactly_once


def test_day_is_the_param_else_the_logical_date_never_the_interval():
    logical = pendulum.datetime(2026, 11, 26, tz="UTC")
    context = {
        "params": {},
        "logical_date": logical,
        "data_interval_start": pendulum.datetime(2026, 11, 25, tz="UTC"),
    }
    assert tasks.day_of(context) == date(2026, 11, 26)
    assert tasks.day_of({**context, "params": {"day": "2026-11-20"}}) == date(2026, 11, 20)
    with pytest.raises(AirflowFailException, match="param day is '26/11/2026'; give the day"):
        tasks.day_of({**context, "params": {"day": "26/11/2026"}})
    with pytest.raises(AirflowFailException, match="no logical date and no day param"):
        tasks.day_of({"params": {}, "logical_date": None})


def test_transient_errors_retry_and_permanent_ones_fail_without_retry():
    with pytest.raises(DeliveryError), tasks.actionable("fetch"):
        raise DeliveryError("site busy")
    with (
        pytest.raises(AirflowFailException, match="parse and render: p.xml: bad"),
        tasks.actionable("parse and render"),
    ):
        raise ExportFormatError("bad", file="p.xml")


def test_a_damaged_gzip_part_fails_the_decrypt_step_naming_it_without_retry(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_PGP", raising=False)
    part = tmp_path / "raw" / "ACME01_ICECHAT_20261126.xml.gz"
    part.parent.mkdir()
    part.write_bytes(gzip.compress(b"<FileDump>" + b"<Conversation/>" * 1000 + b"</FileDump>")[:-4])
    sha = hashlib.sha256(part.read_bytes()).hexdigest()
    fetched = {"files": [{"name": part.name, "path": str(part), "sha256": sha}]}
    with pytest.raises(AirflowFailException) as err:
        tasks.decrypt_and_unpack(date(2026, 11, 26), fetched)
    assert str(err.value).startswith("decrypt: ACME01_ICECHAT_20261126.xml.gz: the compressed")
    assert "ask ICE to resend it" in str(err.value)
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []  # no half XML


def test_an_original_changed_since_it_was_fetched_is_not_decrypted(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_PGP", raising=False)
    part = tmp_path / "raw" / "ACME01_ICECHAT_20261126.xml"
    part.parent.mkdir()
    part.write_bytes(b"<FileDump></FileDump>")
    fetched = {"files": [{"name": part.name, "path": str(part), "sha256": "0" * 64}]}
    with pytest.raises(AirflowFailException) as err:
        tasks.decrypt_and_unpack(date(2026, 11, 26), fetched)
    assert "ACME01_ICECHAT_20261126.xml: its SHA-256 is" in str(err.value)
    assert "recorded " + "0" * 64 in str(err.value) and "not decrypted" in str(err.value)
    assert not (tmp_path / "data" / "work").exists()


def test_reconcile_names_the_first_task_that_left_no_result():
    upstream = {
        "wait_for_export": {"day": "2026-11-26"},
        "fetch": {"firm": "ACME01", "files": []},
        "decrypt": None,
        "parse_render": None,
        "map_participants": None,
    }
    with pytest.raises(AirflowFailException, match="task decrypt has no result"):
        tasks.reconcile(date(2026, 11, 26), upstream, [], {"run_id": "manual__1"})


def test_the_attempt_is_the_runs_clear_number():
    """A cleared run keeps its run id; Airflow counts its clears on the DAG run."""

    class Run:
        clear_number = 2

    assert tasks.attempt_of({"dag_run": Run()}) == 2
    assert tasks.attempt_of({"dag_run": None}) == 0


def test_only_a_scheduled_run_catches_up_and_only_from_a_go_live_day(monkeypatch, tmp_path, caplog):
    class Run:
        run_type = "manual"
        dag_id = "icechat_archive"

    logical = pendulum.datetime(2026, 11, 26, tz="UTC")
    context = {"dag_run": Run(), "params": {}, "logical_date": logical}
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_VAR_ICECHAT_GO_LIVE", raising=False)
    assert tasks.missed_days(context) == []
    Run.run_type = "scheduled"
    assert tasks.missed_days(context) == []
    assert "variable icechat_go_live is not set: days missed while" in caplog.text


def two_parts_to_fetch(
    monkeypatch: pytest.MonkeyPatch,
    sftp_server: SftpServer,
    make_day: MakeDay,
    data_dir: str,
    retention: str | None,
) -> tuple[str, date]:
    """Two parts of 2026-11-26 on the SFTP site and the variables the fetch task reads: from
    that site into ``data_dir``, locked for ``retention`` (None: not locked). The firm, the day."""
    firm, day = sftp_server.username.upper(), date(2026, 11, 26)
    make_day(Path(sftp_server.remote_dir), firm, day, parts=2)
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env())
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", "postgresql://u:p@127.0.0.1:1/unused")
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_REMOTE_DIR", sftp_server.remote_dir)
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", data_dir)
    if retention is None:
        monkeypatch.delenv("AIRFLOW_VAR_ICECHAT_RAW_RETENTION", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_RAW_RETENTION", retention)
    return firm, day


def test_fetching_again_into_s3_writes_and_locks_each_original_once(
    monkeypatch, sftp_server, make_day, s3_bucket
):
    """A cleared fetch finds the day's originals in the bucket: nothing is written again,
    the locks stay as first recorded, and the task's scratch folder is gone each time."""
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_S3", s3_bucket.server.connection_env())
    firm, day = two_parts_to_fetch(
        monkeypatch, sftp_server, make_day, s3_bucket.url(conn_id="icechat_s3"), "2d governance"
    )
    first = tasks.fetch(day)
    versions = s3_bucket.client().list_object_versions(Bucket=s3_bucket.name, Prefix="icechat/raw")
    again = tasks.fetch(day)
    assert [f["path"] for f in first["files"]] == [
        f"raw/{day}/{firm}_ICECHAT_20261126_0{n}.xml" for n in (1, 2)
    ]
    assert {f["lock_mode"] for f in first["files"]} == {"governance"}
    locks = [(f["lock_mode"], f["retain_until"]) for f in first["files"]]
    assert [(f["lock_mode"], f["retain_until"]) for f in again["files"]] == locks
    after = s3_bucket.client().list_object_versions(Bucket=s3_bucket.name, Prefix="icechat/raw")
    originals = [v for v in after["Versions"] if not v["Key"].endswith("manifest.json")]
    assert originals == [v for v in versions["Versions"] if not v["Key"].endswith("manifest.json")]
    assert len(originals) == 3  # two parts and the marker, one version each


def test_fetching_again_into_azure_blob_writes_each_original_once(
    monkeypatch, sftp_server, make_day, azure_container
):
    """The fetch task on an abfs:// data directory: the originals land in the container
    through the task's own glue, and a cleared fetch writes none of them again."""
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_AZURE", azure_container.server.connection_env())
    firm, day = two_parts_to_fetch(monkeypatch, sftp_server, make_day, azure_container.url(), None)

    def originals() -> dict[str, str]:
        listed = azure_container.container().list_blobs(name_starts_with="icechat/raw/")
        return {b.name: b.etag for b in listed if not b.name.endswith("manifest.json")}

    first = tasks.fetch(day)
    written = originals()
    again = tasks.fetch(day)
    names = [f"raw/{day}/{firm}_ICECHAT_20261126_0{n}.xml" for n in (1, 2)]
    assert [f["path"] for f in first["files"]] == [f["path"] for f in again["files"]] == names
    assert {f"icechat/{n}" for n in names} < set(written)
    assert originals() == written, "a cleared fetch wrote an original again"


@pytest.mark.parametrize("packaging", ["xml", "xml.gz", "zip"])
def test_parts_go_through_s3_between_decrypt_and_render(
    monkeypatch, tmp_path, make_day, s3_bucket, packaging
):
    """Decrypt keeps in the bucket only what parse+render reads (an unpacked folder, or the
    part where it was fetched); parse+render finds every item from another scratch folder."""
    day = date(2026, 11, 26)
    store = s3_bucket.store()
    fetched = {"files": []}
    (tmp_path / "site").mkdir()
    for path in make_day(tmp_path / "site", "ACME01", day, parts=2, packaging=packaging):
        if "_ICECHAT_" in path.name and not path.name.endswith(".done"):
            store.upload(path, f"raw/{day}/{path.name}")
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            fetched["files"].append(
                {"name": path.name, "path": f"raw/{day}/{path.name}", "sha256": sha}
            )
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_S3", s3_bucket.server.connection_env())
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", "postgresql://u:p@127.0.0.1:1/unused")
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", s3_bucket.url(conn_id="icechat_s3"))
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_PGP", raising=False)
    parts = tasks.decrypt_and_unpack(day, fetched)
    assert len(parts) == 2
    kept = store.files("work")
    if packaging == "xml":
        assert kept == [] and [p["xml"] for p in parts] == [f["path"] for f in fetched["files"]]
    else:
        assert kept and not any(k.endswith((".gz", ".zip")) for k in kept)
    rendered = tasks.parse_and_render(day, parts)
    assert rendered["items"] == 6
    assert all(store.files(d) for d in rendered["part_dirs"])


def test_an_import_task_reads_from_s3_only_the_payloads_its_shard_names(
    monkeypatch, tmp_path, s3_bucket, graph_emulator
):
    """Map copies only the parts' indexes; each import task copies only its shard file and
    reads, by byte range, exactly the payloads its shard names, each once, never a whole
    items file; the shards together archive every planned copy exactly once."""
    day, run = DAY, {"run_id": "manual__2026-11-27T00:00:00+00:00"}
    store = s3_bucket.store()
    fetched: dict[str, list[dict[str, str]]] = {"files": []}
    xmls = sample_parts(tmp_path, messages=60)
    for path in xmls:
        store.upload(path, f"raw/{day}/{path.name}")
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        fetched["files"].append(
            {"name": path.name, "path": f"raw/{day}/{path.name}", "sha256": sha}
        )
    graph_emulator.add_users([{"userPrincipalName": e} for e in busiest(xmls, FIRM, 4)])
    ledger = {"conn_type": "sqlite", "host": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_S3", s3_bucket.server.connection_env())
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps(graph_connection(graph_emulator)))
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", json.dumps(ledger))
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", s3_bucket.url(conn_id="icechat_s3"))
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_PGP", raising=False)
    rendered = tasks.parse_and_render(day, tasks.decrypt_and_unpack(day, fetched))
    downloads: list[str] = []
    ranges: list[tuple[str, int, int]] = []
    download, read_ranges = ObjectStore.download, ObjectStore.read_ranges

    def spy_download(self, key, dest):
        downloads.append(key)
        download(self, key, dest)

    def spy_read_ranges(self, wanted):
        ranges.extend(wanted)
        return read_ranges(self, wanted)

    monkeypatch.setattr(ObjectStore, "download", spy_download)
    monkeypatch.setattr(ObjectStore, "read_ranges", spy_read_ranges)
    planned = tasks.plan(day, rendered, run)
    assert downloads and all(k.endswith("/index.jsonl") for k in downloads), downloads
    assert len(planned["shards"]) >= 2
    imported = 0
    for shard in planned["shards"]:
        downloads.clear(), ranges.clear()
        result = tasks.import_shard(day, shard, run)
        lines = (store.read_bytes(shard) or b"").splitlines(keepends=True)
        copies = [PlannedCopy.from_line(line, shard) for line in lines]
        named = {(f"work/{day}/items/{c.part}/payloads.jsonl", c.offset, c.length) for c in copies}
        assert downloads == [shard], "the task's workspace holds its shard and nothing else"
        assert sorted(ranges) == sorted(named), "each payload the shard names, read once"
        assert len(ranges) < rendered["mail_items"], "not every item of the day"
        assert result["failed"] == 0 and result["already_present"] == 0
        imported += result["imported"]
    assert imported == planned["planned"]
    assert_exactly_once(graph_emulator, planned["per_mailbox"])


def test_a_day_begun_by_a_run_of_any_kind_is_not_caught_up_again(monkeypatch, tmp_path):
    """A run triggered for a day by its ``day`` param has no logical date on that day: the
    marker it leaves when it begins keeps catch-up from starting the day again, whether
    that run failed or is still running."""

    class Run:
        run_type = "manual"
        dag_id = "icechat_archive"

    class NoRunAtThoseMidnights:
        """The Task SDK's answer for days that no run has as its logical date."""

        def get_dr_count(self, dag_id: str, logical_dates: list) -> int:
            return 0

    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_GO_LIVE", "2026-11-20")
    manual_id = "manual__2026-11-30T09:15:00+00:00"
    manual = {
        "dag_run": Run(),
        "run_id": manual_id,
        "params": {"day": "2026-11-22"},
        "logical_date": pendulum.datetime(2026, 11, 30, 9, 15, tz="UTC"),
    }
    assert tasks.start_day(manual) == date(2026, 11, 22)
    [marker] = (tmp_path / "runs" / "2026-11-22").iterdir()
    assert json.loads(marker.read_text())["run_id"] == manual_id

    class Scheduled(Run):
        run_type = "scheduled"

    scheduled = {
        "dag_run": Scheduled(),
        "run_id": "scheduled__2026-11-25T00:00:00+00:00",
        "params": {},
        "logical_date": pendulum.datetime(2026, 11, 25, tz="UTC"),
        "ti": NoRunAtThoseMidnights(),
    }
    started = [m["trigger_run_id"] for m in tasks.missed_days(scheduled)]
    assert started == [f"catchup__2026-11-{d}" for d in (20, 21, 23, 24)]
