"""Graph settings: what a connection must hold, and that secrets stay out of repr."""

from __future__ import annotations

import pytest

from icechat.exceptions import GraphSettingsError
from icechat.graph.settings import GraphSettings


def test_secret_settings_derive_authority_and_scope() -> None:
    s = GraphSettings("app-id", "tenant-1", client_secret="s3cr3t-value")
    assert s.authority == "https://login.microsoftonline.com/tenant-1"
    assert s.token_scope == "https://graph.microsoft.com/.default"
    assert s.is_microsoft_authority
    assert "s3cr3t-value" not in repr(s)


def test_test_server_authority_is_not_microsoft() -> None:
    s = GraphSettings(
        "app-id",
        "t",
        certificate_pem="-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
        thumbprint="AB12",
        authority_host="https://127.0.0.1:8443/",
        graph_url="https://127.0.0.1:8443/v1.0",
    )
    assert s.authority == "https://127.0.0.1:8443/t"
    assert not s.is_microsoft_authority
    assert "PRIVATE KEY" not in repr(s)


@pytest.mark.parametrize(
    ("graph_url", "scope"),
    [
        ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
        ("https://dod-graph.microsoft.us/v1.0", "https://dod-graph.microsoft.us/.default"),
        (
            "https://microsoftgraph.chinacloudapi.cn/v1.0",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
        (
            "https://graph-gateway.contoso.example/graph/v1.0",
            "https://graph.microsoft.com/.default",
        ),
        ("https://127.0.0.1:8443/v1.0", "https://graph.microsoft.com/.default"),
    ],
)
def test_token_scope_is_graphs_whatever_host_graph_url_names(graph_url: str, scope: str) -> None:
    assert GraphSettings("a", "t", client_secret="x", graph_url=graph_url).token_scope == scope


def test_scope_extra_wins_over_the_derived_scope() -> None:
    s = GraphSettings(
        "a",
        "t",
        client_secret="x",
        graph_url="https://graph-proxy.contoso.example/v1.0",
        scope="https://graph.microsoft.us/.default",
    )
    assert s.token_scope == "https://graph.microsoft.us/.default"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"client_id": "", "tenant_id": "t", "client_secret": "x"}, "client\\) id"),
        ({"client_id": "a", "tenant_id": "t"}, "either password"),
        (
            {
                "client_id": "a",
                "tenant_id": "t",
                "client_secret": "x",
                "certificate_pem": "p",
                "thumbprint": "t",
            },
            "not both",
        ),
        ({"client_id": "a", "tenant_id": "t", "certificate_pem": "p"}, "thumbprint"),
        (
            {
                "client_id": "a",
                "tenant_id": "t",
                "client_secret": "x",
                "graph_url": "http://g/v1.0",
            },
            "graph_url must be an https",
        ),
        (
            {
                "client_id": "a",
                "tenant_id": "t",
                "client_secret": "x",
                "scope": "https://graph.microsoft.com/Mail.ReadWrite",
            },
            "extra scope .* is not a resource's .default scope",
        ),
    ],
)
def test_incomplete_settings_are_refused(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(GraphSettingsError, match=match):
        GraphSettings(**kwargs)
