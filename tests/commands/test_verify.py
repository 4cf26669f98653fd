"""`icechat verify` and `icechat evidence` as an operator runs them: Airflow connections and
variables from the environment, the Graph emulator, a day archived in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from icechat.ledger import CopyState
from tests.support.airflow_env import graph_connection
from tests.support.archived_day import DAY, ArchivedDay, archive, sample_parts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def day(graph_emulator, tmp_path) -> ArchivedDay:
    return archive(graph_emulator, tmp_path, parts=sample_parts(tmp_path))


def icechat(tmp_path: Path, emulator, day: ArchivedDay, *args: str, extra: dict | None = None):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_HOME"))
    }
    env["PYTHONPATH"] = str(ROOT / "plugins")
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    env["AIRFLOW_CONN_ICECHAT_GRAPH"] = json.dumps(graph_connection(emulator))
    env["AIRFLOW_CONN_ICECHAT_LEDGER"] = json.dumps(
        {"conn_type": "generic", "extra": {"url": day.ledger_url}}
    )
    env["AIRFLOW_VAR_ICECHAT_DATA_DIR"] = str(day.data_dir)
    return subprocess.run(
        [sys.executable, "-m", "icechat", *args],
        env=env | (extra or {}),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_verify_exits_0_for_a_clean_day_and_1_when_a_copy_is_missing_until_repaired(
    graph_emulator, day, tmp_path
):
    clean = icechat(tmp_path, graph_emulator, day, "verify", str(DAY))
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert clean.stdout.startswith(f"ICE Chat verify {DAY}: 2 original(s)")
    assert ": verified" in clean.stdout and f"verify-{DAY}.html" in clean.stdout

    with day.ledger() as ledger:
        gone = next(r for r in ledger.copies(DAY) if r.state is CopyState.DONE)
    graph_emulator.graph("POST", f"/users/{gone.mailbox}/messages/{gone.graph_id}/permanentDelete")
    differs = icechat(tmp_path, graph_emulator, day, "verify", str(DAY))
    assert differs.returncode == 1
    assert "DIFFERS (1 missing_item)" in differs.stdout
    assert f"missing_item {next(u for u, i in day.mailboxes.items() if i == gone.mailbox)}" in (
        differs.stdout
    )

    repaired = icechat(tmp_path, graph_emulator, day, "verify", "--repair", str(DAY))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr[-3000:]
    assert "1 re-imported: verified" in repaired.stdout
    report = json.loads((day.data_dir / "reports" / f"verify-{DAY}.json").read_text())
    assert [(r["key"], r["outcome"]) for r in report["repaired"]] == [(gone.item_key, "imported")]
    for result in (clean, differs, repaired):
        assert graph_emulator.client_secret not in result.stdout + result.stderr


def test_evidence_writes_the_folder_after_a_verification(graph_emulator, day, tmp_path):
    out = tmp_path / "evidence"
    early = icechat(tmp_path, graph_emulator, day, "evidence", str(DAY), "--out", str(out))
    assert early.returncode == 1
    assert f"run `icechat verify {DAY}` first" in early.stderr
    assert icechat(tmp_path, graph_emulator, day, "verify", str(DAY)).returncode == 0
    done = icechat(tmp_path, graph_emulator, day, "evidence", str(DAY), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"evidence for {DAY} in {out}: 7 files and SHA256SUMS" in done.stdout
    checked = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout
    assert graph_emulator.client_secret not in done.stdout + done.stderr


def test_a_bad_day_is_a_usage_error(graph_emulator, day, tmp_path):
    bad = icechat(tmp_path, graph_emulator, day, "verify", "2026-11-31")
    assert bad.returncode == 2
    assert "'2026-11-31' is not a day: give YYYY-MM-DD" in bad.stderr


def test_verify_and_evidence_read_a_data_directory_in_s3(graph_emulator, day, tmp_path, s3_bucket):
    """The archived day's folder moved into a bucket: the commands copy what they read into a
    scratch folder, write the verification report back, and leave no checkpoint behind."""
    store = s3_bucket.store()
    for path in sorted(p for p in day.data_dir.rglob("*") if p.is_file()):
        if path.suffix != ".sqlite":
            store.upload(path, path.relative_to(day.data_dir).as_posix())
    moved = ArchivedDay(
        day.day, Path("unused"), day.ledger_url, day.mailboxes, day.report
    )  # the commands get the bucket, not a folder
    extra = {
        "AIRFLOW_CONN_ICECHAT_S3": s3_bucket.server.connection_env(),
        "AIRFLOW_VAR_ICECHAT_DATA_DIR": s3_bucket.url(conn_id="icechat_s3"),
    }
    clean = icechat(tmp_path, graph_emulator, moved, "verify", str(DAY), extra=extra)
    assert clean.returncode == 0, clean.stdout + clean.stderr[-3000:]
    assert ": verified" in clean.stdout
    report = json.loads(store.read_bytes(f"reports/verify-{DAY}.json") or b"{}")
    assert report["verified"] is True
    assert store.files("work") == [], "no checkpoint or plaintext left in the bucket"
    out = tmp_path / "evidence"
    done = icechat(
        tmp_path, graph_emulator, moved, "evidence", str(DAY), "--out", str(out), extra=extra
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert f"evidence for {DAY} in {out}: 7 files and SHA256SUMS" in done.stdout
