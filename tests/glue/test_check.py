"""`icechat check` (and the checks behind it) against sshd, gpg, the Graph emulator and ledgers."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa

from icechat.checks import Status, check_graph_mailbox, check_ledger, check_pgp, check_sftp
from icechat.glue.connections import open_site
from icechat.graph.client import GraphClient
from icechat.graph.settings import GraphSettings
from icechat.ledger import SCHEMA_VERSION, Ledger
from icechat.settings import DEFAULT_FOLDER
from tests.support.airflow_env import run_airflow
from tests.support.cli import icechat
from tests.support.fixtures.graph_emulator import ALICE, BOB, DAVE, FRANK

OTHER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3nb4dViGNVgn2cRGbyfnSQMqHLovlhbMFyY4nkqOq+"


def graph_conn(emu, client_id=None, secret=None):
    return {
        "conn_type": "icechat_graph",
        "login": client_id or emu.client_id,
        "password": secret or emu.client_secret,
        "extra": {
            "tenant_id": emu.tenant_id,
            "authority_host": emu.authority_host,
            "graph_url": emu.graph_url,
            "ca_bundle": emu.ca_bundle,
        },
    }


def graph_client(emu, client_id=None, secret=None):
    settings = GraphSettings(
        client_id=client_id or emu.client_id,
        tenant_id=emu.tenant_id,
        client_secret=secret or emu.client_secret,
        authority_host=emu.authority_host,
        graph_url=emu.graph_url,
        ca_bundle=emu.ca_bundle,
    )
    return GraphClient(settings)


def check_env(tmp_path, conns, variables):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_HOME"))
    }
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    env.update({f"AIRFLOW_CONN_{k.upper()}": json.dumps(v) for k, v in conns.items()})
    env.update({f"AIRFLOW_VAR_{k.upper()}": v for k, v in variables.items()})
    return env


def run_check(tmp_path, conns, variables, *args):
    return icechat("check", *args, env=check_env(tmp_path, conns, variables), timeout=120)


def lines(stdout):
    return {line.split(":", 1)[0]: line for line in stdout.splitlines()}


def test_all_connections_good_passes_and_creates_the_folder(
    tmp_path, sftp_server, pgp_keypair, graph_emulator
):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text(f"ImId,Mailbox\nalice.ice,{ALICE}\nbob.ice,{BOB}\n")
    conns = {
        "icechat_sftp": sftp_server.connection(),
        "icechat_pgp": {
            "conn_type": "icechat_pgp",
            "password": pgp_keypair.passphrase,
            "extra": {"private_key": pgp_keypair.secret_armored},
        },
        "icechat_graph": graph_conn(graph_emulator),
    }
    variables = {
        "icechat_remote_dir": sftp_server.remote_dir,
        "icechat_data_dir": str(tmp_path / "data"),
        "icechat_mapping_csv": str(mapping),
        "icechat_folder_name": "Compliance Chat",
    }
    (sftp_server.served / "ACME01_2026-11-26_1.xml.pgp").write_bytes(b"x")
    done = run_check(tmp_path, conns, variables)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done.stdout)
    assert list(found) == [
        "OK   sftp",
        "OK   pgp",
        "OK   graph",
        f"OK   graph {ALICE}",
        "OK   ledger",
        "OK   pool",
    ]
    assert f"1 file(s) in {sftp_server.remote_dir}" in found["OK   sftp"]
    assert pgp_keypair.keyid in found["OK   pgp"]
    assert "'Compliance Chat' is there" in found[f"OK   graph {ALICE}"]
    assert graph_emulator.message_count(ALICE, "Compliance Chat") == 0  # the folder exists
    assert any(
        f["displayName"] == "Compliance Chat"
        for u in graph_emulator.state()["users"]
        if u["userPrincipalName"] == ALICE
        for f in u["folders"]
    )
    output = done.stdout + done.stderr
    for secret in (
        pgp_keypair.passphrase,
        graph_emulator.client_secret,
        sftp_server.private_key.splitlines()[1],
        pgp_keypair.secret_armored.splitlines()[3],
    ):
        assert secret not in output


def test_each_wrong_connection_fails_with_what_to_do(
    tmp_path, sftp_server, pgp_keypair, graph_emulator
):
    emu = graph_emulator
    conns = {
        "icechat_sftp": sftp_server.connection(host_key=OTHER_HOST_KEY),
        "icechat_pgp": {
            "conn_type": "icechat_pgp",
            "password": "not-the-passphrase-19",
            "extra": {"private_key": pgp_keypair.secret_armored},
        },
        "icechat_graph": graph_conn(emu, emu.nomail_client_id, emu.nomail_client_secret),
    }
    variables = {"icechat_data_dir": str(tmp_path / "data")}
    done = run_check(tmp_path, conns, variables, "--mailbox", BOB)
    assert done.returncode == 1, done.stdout + done.stderr
    found = lines(done.stdout)
    assert "possible man-in-the-middle" in found["FAIL sftp"]
    assert "put it in the host_key extra" in found["FAIL sftp"]
    assert "passphrase does not unlock" in found["FAIL pgp"]
    assert "correct the connection's password" in found["FAIL pgp"]
    assert "grant Mail.ReadWrite (application) with admin consent" in found["FAIL graph"]
    assert found["OK   ledger"]
    output = done.stdout + done.stderr
    assert "not-the-passphrase-19" not in output and emu.nomail_client_secret not in output


def test_missing_connections_are_named_and_an_unencrypted_setup_is_fine(tmp_path):
    done = run_check(tmp_path, {}, {"icechat_data_dir": str(tmp_path / "data")})
    assert done.returncode == 1
    found = lines(done.stdout)
    assert "connection icechat_sftp is not defined" in found["FAIL sftp"]
    assert "not configured: parts must arrive unencrypted" in found["OK   pgp"]
    assert "connection icechat_graph is not defined" in found["FAIL graph"]


def test_a_named_pool_that_does_not_exist_fails_until_it_is_created(tmp_path):
    variables = {"icechat_data_dir": str(tmp_path / "data"), "icechat_graph_pool": "icechat_graph"}
    env = check_env(tmp_path, {}, variables)
    skipped = lines(run_check(tmp_path, {}, variables).stdout)["SKIP pool"]
    assert "metadata database is not reachable" in skipped  # no Airflow database yet
    assert run_airflow(env, "db", "migrate").returncode == 0

    missing = lines(run_check(tmp_path, {}, variables).stdout)["FAIL pool"]
    assert "names pool 'icechat_graph', which does not exist" in missing
    assert "airflow pools set icechat_graph 16" in missing

    assert run_airflow(env, "pools", "set", "icechat_graph", "16", "Graph").returncode == 0
    found = lines(run_check(tmp_path, {}, variables).stdout)["OK   pool"]
    assert "pool 'icechat_graph' exists with 16 slot(s)" in found


def test_a_missing_remote_directory_names_the_variable(sftp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env())
    result = check_sftp(lambda: open_site(connect_attempts=1), "/no/such/dir")
    assert result.status is Status.FAIL
    assert "/no/such/dir does not exist; set variable icechat_remote_dir" in result.detail


def test_exports_only_for_another_firm_code_fail_and_name_the_extra(sftp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env())
    (sftp_server.served / "ACME01_ICECHAT_20261126_01.xml.pgp").write_bytes(b"x")
    (sftp_server.served / "ACME01_ICECHAT_20261126.done").write_bytes(b"x")
    (sftp_server.served / "notes.txt").write_bytes(b"x")
    result = check_sftp(lambda: open_site(connect_attempts=1), sftp_server.remote_dir)
    assert result.status is Status.FAIL
    login = sftp_server.username
    assert f"3 file(s) in {sftp_server.remote_dir}" in result.detail
    assert f"0 ICE Chat export file(s) for firm code {login}" in result.detail
    assert "other firm codes: ACME01 (2)" in result.detail
    assert "set the connection's firm_code extra" in result.detail

    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_SFTP", sftp_server.connection_env(firm_code="acme01"))
    result = check_sftp(lambda: open_site(connect_attempts=1), sftp_server.remote_dir)
    assert result.status is Status.OK
    assert "2 ICE Chat export file(s) for firm code acme01" in result.detail
    assert "other firm codes" not in result.detail


def test_no_pgp_key_is_ok():
    assert check_pgp(None).status is Status.OK


@pytest.mark.parametrize("user", [DAVE, FRANK])  # MailboxNotEnabledForRESTAPI, ResourceNotFound
def test_mailbox_check_names_a_user_without_mailbox(graph_emulator, user):
    with graph_client(graph_emulator) as client:
        result = check_graph_mailbox(client, user, DEFAULT_FOLDER)
    assert result.status is Status.FAIL
    assert f"no Exchange Online mailbox for {user}" in result.detail


def test_mailbox_check_of_an_app_without_mail_permission(graph_emulator):
    emu = graph_emulator
    with graph_client(emu, emu.nomail_client_id, emu.nomail_client_secret) as client:
        result = check_graph_mailbox(client, BOB, DEFAULT_FOLDER)
    assert result.status is Status.FAIL
    assert f"creating folder 'ICE Chat' in {BOB}: grant Mail.ReadWrite" in result.detail
    assert emu.message_count(BOB) == 0


def test_ledger_check_reads_the_schema_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    assert "created by the first run" in check_ledger(url).detail
    assert not (tmp_path / "ledger.sqlite").exists()
    Ledger(url).close()
    assert check_ledger(url).detail.endswith(f"schema version {SCHEMA_VERSION}")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM icechat_schema_version")
        conn.exec_driver_sql(
            "INSERT INTO icechat_schema_version (version, applied_at) VALUES (1, '2026-11-01')"
        )
    older = check_ledger(url)
    assert older.status is Status.OK
    assert older.detail.endswith(f"schema version 1; the next run upgrades it to {SCHEMA_VERSION}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO icechat_schema_version (version, applied_at) VALUES (7, '2027-01-01')"
        )
    engine.dispose()
    result = check_ledger(url)
    assert result.status is Status.FAIL
    assert f"schema version 7, this icechat writes {SCHEMA_VERSION}: upgrade" in result.detail


def test_unreachable_postgres_ledger_fails_without_its_password():
    result = check_ledger("postgresql://archiver:pg-secret-55@127.0.0.1:1/ledger")
    assert result.status is Status.FAIL
    assert "check the icechat_ledger connection" in result.detail
    assert "pg-secret-55" not in result.detail and "***" in result.detail


def test_postgres_ledger_is_reachable():
    result = check_ledger("postgresql://postgres@127.0.0.1:5432/test")
    assert result.status is Status.OK and "reachable" in result.detail
