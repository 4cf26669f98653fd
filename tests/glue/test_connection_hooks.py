"""The UI's "Test" for icechat_graph and icechat_pgp: real Graph emulator, real gpg."""

from __future__ import annotations

import json

import pytest

from icechat.glue.connections import IceChatGraphHook, IceChatPgpHook
from tests.support.fixtures.graph_emulator import ALICE


def graph_conn(emu, **fields):
    conn = {
        "conn_type": "icechat_graph",
        "login": emu.client_id,
        "password": emu.client_secret,
        "extra": {
            "tenant_id": emu.tenant_id,
            "authority_host": emu.authority_host,
            "graph_url": emu.graph_url,
            "ca_bundle": emu.ca_bundle,
        },
    }
    conn.update(fields)
    return json.dumps(conn)


def test_graph_test_gets_a_token_and_reads_a_mailbox(graph_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", graph_conn(graph_emulator))
    ok, message = IceChatGraphHook().test_connection()
    assert ok, message
    assert f"the mailbox of {ALICE}" in message
    assert graph_emulator.client_secret not in message


def test_graph_test_accepts_a_certificate_pasted_into_one_line(graph_emulator, monkeypatch):
    # The form's password field drops line breaks from a pasted PEM.
    emu = graph_emulator
    extra = {
        "tenant_id": emu.tenant_id,
        "certificate": emu.certificate_pem.replace("\n", ""),
        "thumbprint": emu.thumbprint,
        "authority_host": emu.authority_host,
        "graph_url": emu.graph_url,
        "ca_bundle": emu.ca_bundle,
    }
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", graph_conn(emu, password=None, extra=extra))
    ok, message = IceChatGraphHook().test_connection()
    assert ok, message


def test_graph_test_with_a_wrong_secret_says_so_without_the_secret(graph_emulator, monkeypatch):
    wrong = "not-the-secret-0042"
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_OTHER", graph_conn(graph_emulator, password=wrong))
    ok, message = IceChatGraphHook("icechat_other").test_connection()
    assert not ok
    assert "refused a token" in message and "client secret" in message
    assert wrong not in message


def test_graph_test_of_an_app_without_mail_permission_names_it(graph_emulator, monkeypatch):
    emu = graph_emulator
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_GRAPH",
        graph_conn(emu, login=emu.nomail_client_id, password=emu.nomail_client_secret),
    )
    ok, message = IceChatGraphHook().test_connection()
    assert not ok
    assert "grant Mail.ReadWrite (application) with admin consent" in message
    assert emu.nomail_client_secret not in message


def test_graph_test_without_tenant_says_what_to_set(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_GRAPH",
        json.dumps({"conn_type": "icechat_graph", "login": "app", "password": "pw-123456"}),
    )
    ok, message = IceChatGraphHook().test_connection()
    assert not ok and "tenant_id" in message and "pw-123456" not in message


def pgp_conn(secret_armored, passphrase):
    return json.dumps(
        {
            "conn_type": "icechat_pgp",
            "password": passphrase,
            "extra": {"private_key": secret_armored},
        }
    )


def test_pgp_test_opens_the_key_with_its_passphrase(pgp_keypair, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_PGP", pgp_conn(pgp_keypair.secret_armored, pgp_keypair.passphrase)
    )
    ok, message = IceChatPgpHook().test_connection()
    assert ok, message
    assert pgp_keypair.keyid in message


def test_pgp_test_with_a_wrong_passphrase_fails(pgp_keypair, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_PGP", pgp_conn(pgp_keypair.secret_armored, "wrong-passphrase-77")
    )
    ok, message = IceChatPgpHook().test_connection()
    assert not ok
    assert "passphrase does not unlock" in message
    assert "wrong-passphrase-77" not in message and pgp_keypair.passphrase not in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({"private_key": "not a key at all"}, "holds no OpenPGP secret key"), ({}, "no private_key")],
)
def test_pgp_test_without_a_usable_key_says_what_to_paste(
    pgp_keypair, monkeypatch, extra, expected
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_PGP",
        json.dumps({"conn_type": "icechat_pgp", "password": "pw", "extra": extra}),
    )
    ok, message = IceChatPgpHook().test_connection()
    assert not ok and expected in message


def test_pgp_test_of_a_public_key_only_is_refused(pgp_keypair, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_PGP", pgp_conn(pgp_keypair.public_armored, pgp_keypair.passphrase)
    )
    ok, message = IceChatPgpHook().test_connection()
    assert not ok and "secret key" in message
