"""``icechat_verify`` on an object-store data directory: the reports land in the bucket, and
every message names what it talks about by its URL there, never a file in the task's
scratch folder."""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from icechat.exceptions import EvidenceError
from icechat.glue import verify as glue
from icechat.store import GOVERNANCE, Lock, key_of
from icechat.verify.originals import NO_OBJECT_LOCK
from tests.support.airflow_env import graph_connection
from tests.support.archived_day import archive, sample_parts


def test_verify_on_s3_names_the_reports_and_the_data_by_their_urls(
    monkeypatch, tmp_path, s3_bucket, graph_emulator, caplog
):
    day = archive(graph_emulator, tmp_path, parts=sample_parts(tmp_path))
    store = s3_bucket.store()
    locked = Lock(GOVERNANCE, datetime(2099, 1, 1, tzinfo=UTC))
    for path in sorted(p for p in day.data_dir.rglob("*") if p.is_file()):
        is_original = path.parent.name == day.day.isoformat() and path.suffix == ".xml"
        store.upload(path, key_of(path, day.data_dir), lock=locked if is_original else None)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where workspaces are made
    ledger = {"conn_type": "sqlite", "host": day.ledger_url}
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_S3", s3_bucket.server.connection_env())
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps(graph_connection(graph_emulator)))
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", json.dumps(ledger))
    url = s3_bucket.url(conn_id="icechat_s3")  # icechat_data_dir, as the deployment sets it
    monkeypatch.setenv("AIRFLOW_VAR_ICECHAT_DATA_DIR", url)
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_PGP", raising=False)
    reports = f"{url}/reports/verify-{day.day}"
    caplog.set_level(logging.INFO)

    with pytest.raises(EvidenceError) as no_verification:
        glue.export_evidence(day.day, tmp_path / "evidence")
    assert str(no_verification.value).startswith(f"{reports}.json does not exist: run")

    outcome = glue.verify_task(day.day.isoformat(), {"run_id": "r1", "params": {}})
    assert outcome["verified"] is True
    assert f"report: {reports}.json (and {reports}.html)" in caplog.text
    shown = json.loads(store.read_bytes(f"reports/verify-{day.day}.json") or b"{}")
    assert shown["data_dir"] == url
    assert {(o["retention"], o["read_only"]) for o in shown["originals"]} == {
        ("governance until 2099-01-01T00:00:00+00:00", True)
    }, "each original's lock as the bucket reports it, not the scratch copy's file mode"
    page = (store.read_bytes(f"reports/verify-{day.day}.html") or b"").decode()
    assert f"<code>{url}</code>" in page

    original = next(k for k in store.files(f"raw/{day.day}") if k.endswith(".xml"))
    store.write_bytes(original, b"<FileDump/>")
    with pytest.raises(AirflowFailException) as differs:
        glue.verify_task(day.day.isoformat(), {"run_id": "r2", "params": {}})
    shown = json.loads(store.read_bytes(f"reports/verify-{day.day}.json") or b"{}")
    changed = next(o for o in shown["originals"] if original.endswith(o["stored"]))
    assert (changed["retention"], changed["read_only"]) == (NO_OBJECT_LOCK, False)
    assert f"Read {reports}.html: each difference says what to do" in str(differs.value)
    evidence = glue.export_evidence(day.day, tmp_path / "evidence")
    assert f"verify-{day.day}.json" in evidence.files

    assert list(scratch.iterdir()) == [], "every scratch folder was removed"
    # Only the workspace's own line names its scratch folder (where the task worked).
    about_scratch = [r.getMessage() for r in caplog.records if str(scratch) in r.getMessage()]
    assert about_scratch and all(m.startswith("copied ") for m in about_scratch), about_scratch
    assert str(scratch) not in str(differs.value) + page + json.dumps(shown)
