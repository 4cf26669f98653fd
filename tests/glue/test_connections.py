"""Connections as core values: icechat_graph as GraphSettings (secrets masked), the ledger URL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk._shared.secrets_masker import redact

from icechat.exceptions import GraphSettingsError, SettingsError, StoreError
from icechat.glue.connections import data_store, graph_settings, ledger_url
from icechat.retention import parse_retention
from icechat.settings import Settings


def test_connection_with_secret_and_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "generic",
        "login": "11111111-2222-3333-4444-555555555555",
        "password": "client-secret-value-123",
        "extra": {
            "tenant_id": "contoso.onmicrosoft.com",
            "authority_host": "https://127.0.0.1:9443",
            "graph_url": "https://127.0.0.1:9443/v1.0",
            "ca_bundle": "/etc/ssl/test-ca.pem",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps(conn))
    settings = graph_settings()
    assert settings.client_id == conn["login"]
    assert settings.client_secret == "client-secret-value-123"
    assert settings.authority == "https://127.0.0.1:9443/contoso.onmicrosoft.com"
    assert settings.ca_bundle == "/etc/ssl/test-ca.pem"
    assert settings.token_scope == "https://graph.microsoft.com/.default"
    assert "client-secret-value-123" not in str(redact("token client-secret-value-123 leaked"))


def test_connection_defaults_to_microsoft_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "generic",
        "login": "app",
        "extra": {"tenant_id": "t", "certificate": "PEM-KEY-AND-CERT", "thumbprint": "AB"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps(conn))
    settings = graph_settings()
    assert settings.graph_url == "https://graph.microsoft.com/v1.0"
    assert settings.is_microsoft_authority
    assert settings.certificate_pem == "PEM-KEY-AND-CERT"


def test_connection_without_tenant_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ICECHAT_GRAPH",
        json.dumps({"conn_type": "generic", "login": "a", "password": "secret!"}),
    )
    with pytest.raises(GraphSettingsError, match="tenant_id"):
        graph_settings()


def test_scope_extra_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "generic",
        "login": "app",
        "password": "secret!",
        "extra": {
            "tenant_id": "t",
            "graph_url": "https://graph-gateway.contoso.example/v1.0",
            "scope": "https://graph.microsoft.us/.default",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps(conn))
    assert graph_settings().token_scope == "https://graph.microsoft.us/.default"


def test_mailbox_rate_extras_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "generic", "login": "app", "password": "secret!"}
    extra: dict[str, Any] = {"tenant_id": "t"}
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps({**conn, "extra": extra}))
    default = graph_settings()
    assert (default.mailbox_requests, default.mailbox_window_seconds) == (10_000, 600.0)
    extra.update(mailbox_requests="600", mailbox_window_seconds=60)
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps({**conn, "extra": extra}))
    scaled = graph_settings()
    assert (scaled.mailbox_requests, scaled.mailbox_window_seconds) == (600, 60.0)
    extra.update(mailbox_requests="lots")
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_GRAPH", json.dumps({**conn, "extra": extra}))
    with pytest.raises(GraphSettingsError, match="mailbox_requests is 'lots'"):
        graph_settings()


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        (
            {
                "conn_type": "postgres",
                "host": "db",
                "login": "u",
                "password": "p",
                "schema": "l",
                "port": 5432,
            },
            "postgresql://u:p@db:5432/l",
        ),
        (
            {"conn_type": "generic", "host": "sqlite:////var/icechat/ledger.db"},
            "sqlite:////var/icechat/ledger.db",
        ),
        ({"conn_type": "generic", "extra": {"url": "postgresql://x@h/d"}}, "postgresql://x@h/d"),
    ],
)
def test_ledger_connection_to_url(monkeypatch, tmp_path, conn, expected):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", json.dumps(conn))
    assert ledger_url(Settings(data_dir=tmp_path)) == expected


def test_no_ledger_connection_means_sqlite_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_LEDGER", raising=False)
    assert ledger_url(Settings(data_dir=tmp_path)) == f"sqlite:///{tmp_path}/ledger.sqlite"


def test_a_ledger_connection_without_url_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", json.dumps({"conn_type": "generic"}))
    with pytest.raises(SettingsError, match="put the URL in its host or its extra 'url'"):
        ledger_url(Settings(data_dir=tmp_path))


def test_object_storage_without_a_ledger_connection_is_refused_saying_what_to_create(
    monkeypatch,
):
    monkeypatch.delenv("AIRFLOW_CONN_ICECHAT_LEDGER", raising=False)
    settings = Settings(data_url="s3://archive_aws@bank-archive/icechat")
    for refused in (ledger_url, data_store):  # data_store: before the day's first task fetches
        with pytest.raises(SettingsError) as err:
            refused(settings)
        message = str(err.value)
        assert "'s3://archive_aws@bank-archive/icechat', object storage" in message
        assert "Create the connection icechat_ledger (type postgres)" in message


def test_the_data_store_is_the_bucket_of_the_url_through_its_connection(
    monkeypatch, s3_bucket, tmp_path
):
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVE_S3", s3_bucket.server.connection_env())
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", "postgresql://u:p@db:5432/l")
    store = data_store(Settings(data_url=s3_bucket.url("icechat", conn_id="archive_s3")))
    (tmp_path / "r.json").write_text("{}")
    store.upload(tmp_path / "r.json", "reports/2026-11-26.json")
    listed = s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]
    assert [o["Key"] for o in listed] == ["icechat/reports/2026-11-26.json"]


def test_retention_is_refused_before_anything_where_nothing_can_be_locked(
    monkeypatch, s3_plain_bucket, tmp_path
):
    with pytest.raises(StoreError, match="cannot lock files"):
        data_store(Settings(data_dir=tmp_path, raw_retention=parse_retention("7y", "v")))
    monkeypatch.setenv("AIRFLOW_CONN_ARCHIVE_S3", s3_plain_bucket.server.connection_env())
    monkeypatch.setenv("AIRFLOW_CONN_ICECHAT_LEDGER", "postgresql://u:p@db:5432/l")
    url = s3_plain_bucket.url("icechat", conn_id="archive_s3")
    with pytest.raises(StoreError, match=f"bucket {s3_plain_bucket.name} .*Object Lock"):
        data_store(Settings(data_url=url, raw_retention=parse_retention("7y", "v")))
