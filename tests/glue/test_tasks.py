"""The task bodies: run context into core arguments, core errors into retry or fail."""

from __future__ import annotations

import gzip
import hashlib
from datetime import date

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from icechat.exceptions import DeliveryError, ExportFormatError
from icechat.glue import tasks


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
