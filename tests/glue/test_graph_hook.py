"""The Airflow glue turns the icechat_graph connection into GraphSettings and masks secrets."""

from __future__ import annotations

import json

import pytest
from airflow.sdk._shared.secrets_masker import redact

from icechat.exceptions import GraphSettingsError
from icechat.glue.graph_hook import graph_settings


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
