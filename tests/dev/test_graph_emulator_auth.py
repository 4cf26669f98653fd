"""Entra ID as the emulator serves it, driven by the real MSAL: discovery, secrets, certificates."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from icechat.dev.graph_emulator import make_app_certificate
from tests.support.fixtures.graph_emulator import ALICE, GRAPH_SCOPE, GraphEmulatorHandle


def get_alice(
    graph_emulator: GraphEmulatorHandle, authorization: str | None, path: str = ""
) -> requests.Response:
    """``GET /users/ALICE{path}`` on the emulator's Graph with ``authorization`` as the
    Authorization header (None: without one)."""
    headers = {"Authorization": authorization} if authorization else {}
    with graph_emulator.session() as session:
        return session.get(
            f"{graph_emulator.graph_url}/users/{ALICE}{path}", headers=headers, timeout=10
        )


def test_discovery_document_points_at_the_emulator(graph_emulator: GraphEmulatorHandle) -> None:
    url = f"{graph_emulator.authority}/v2.0/.well-known/openid-configuration"
    with graph_emulator.session() as session:
        doc = session.get(url, timeout=10).json()
    assert doc["token_endpoint"] == f"{graph_emulator.authority}/oauth2/v2.0/token"
    assert doc["issuer"] == f"{graph_emulator.authority}/v2.0"


def test_unknown_tenant_fails_discovery_in_msal(graph_emulator: GraphEmulatorHandle) -> None:
    import msal

    with pytest.raises(ValueError, match="authority configuration"):
        msal.ConfidentialClientApplication(
            graph_emulator.client_id,
            client_credential=graph_emulator.client_secret,
            authority=f"{graph_emulator.authority_host}/no-such-tenant.example",
            instance_discovery=False,
            http_client=graph_emulator.session(),
        )


def test_tenant_domain_works_as_authority(graph_emulator: GraphEmulatorHandle) -> None:
    import msal

    app = msal.ConfidentialClientApplication(
        graph_emulator.client_id,
        client_credential=graph_emulator.client_secret,
        authority=f"{graph_emulator.authority_host}/contoso.example",
        instance_discovery=False,
        http_client=graph_emulator.session(),
    )
    assert "access_token" in app.acquire_token_for_client(GRAPH_SCOPE)


def test_instance_discovery_url_is_served(graph_emulator: GraphEmulatorHandle) -> None:
    import msal

    app = msal.ConfidentialClientApplication(
        graph_emulator.client_id,
        client_credential=graph_emulator.client_secret,
        authority=graph_emulator.authority,
        instance_discovery=f"{graph_emulator.authority_host}/common/discovery/instance",
        http_client=graph_emulator.session(),
    )
    assert "access_token" in app.acquire_token_for_client(GRAPH_SCOPE)


def test_client_secret_token_works_and_wrong_secret_is_refused(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    ok = graph_emulator.msal_app().acquire_token_for_client(GRAPH_SCOPE)
    assert ok["token_type"] == "Bearer" and ok["expires_in"] > 0
    bad = graph_emulator.msal_app(credential="not-the-secret").acquire_token_for_client(GRAPH_SCOPE)
    assert bad["error"] == "invalid_client"
    assert bad["error_codes"] == [7000215]
    assert "not-the-secret" not in bad["error_description"]


def test_unknown_app_is_refused(graph_emulator: GraphEmulatorHandle) -> None:
    result = graph_emulator.msal_app(
        "00000000-0000-0000-0000-000000000000"
    ).acquire_token_for_client(GRAPH_SCOPE)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]


@pytest.mark.parametrize("form", ["public_certificate", "thumbprint"])
def test_certificate_assertion_gets_a_token_that_graph_accepts(
    graph_emulator: GraphEmulatorHandle, form: str
) -> None:
    cert = graph_emulator.app_certificate
    credential = {"private_key": cert.private_key_pem}
    credential[form] = cert.certificate_pem if form == "public_certificate" else cert.thumbprint
    result = graph_emulator.msal_app(credential=credential).acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in result, result.get("error_description")
    response = get_alice(graph_emulator, f"Bearer {result['access_token']}")
    assert response.status_code == 200


def test_unregistered_certificate_is_refused(graph_emulator: GraphEmulatorHandle) -> None:
    other = make_app_certificate("someone-else")
    credential = {"private_key": other.private_key_pem, "thumbprint": other.thumbprint}
    result = graph_emulator.msal_app(credential=credential).acquire_token_for_client(GRAPH_SCOPE)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert other.thumbprint in result["error_description"]


def test_key_that_does_not_match_the_thumbprint_is_refused(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    other = make_app_certificate("forger")
    credential = {
        "private_key": other.private_key_pem,
        "thumbprint": graph_emulator.app_certificate.thumbprint,
    }
    result = graph_emulator.msal_app(credential=credential).acquire_token_for_client(GRAPH_SCOPE)
    assert result["error_codes"] == [700027]
    assert "signature" in result["error_description"]


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Access token is empty."),
        ("forged", "Invalid signature"),
        ("Bearer garbage", "not well formed"),
    ],
)
def test_graph_rejects_missing_or_bad_tokens(
    graph_emulator: GraphEmulatorHandle, authorization: str | None, message: str
) -> None:
    if authorization == "forged":
        authorization = f"Bearer {graph_emulator.token()[:-6]}AAAAAA"
    response = get_alice(graph_emulator, authorization)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert message in error["message"]
    assert error["innerError"]["request-id"] == response.headers["request-id"]


def test_expired_token_is_rejected(graph_emulator: GraphEmulatorHandle) -> None:
    graph_emulator.set_faults(token_lifetime_s=-1)
    token = graph_emulator.token()
    response = get_alice(graph_emulator, f"Bearer {token}")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_app_without_mail_permission_gets_access_denied(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    token = graph_emulator.token(graph_emulator.nomail_client_id)
    user = get_alice(graph_emulator, f"Bearer {token}")
    folders = get_alice(graph_emulator, f"Bearer {token}", "/mailFolders")
    assert user.status_code == 200
    assert folders.status_code == 403
    assert folders.json()["error"]["code"] == "ErrorAccessDenied"


def test_thumbprint_registration_trusts_the_sent_certificate(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    cert = make_app_certificate("by-thumbprint")
    directory = {"apps": [{"client_id": "thumb-app", "thumbprint": cert.thumbprint}]}
    with graph_emulator.session() as session:
        added = session.post(
            f"{graph_emulator.authority_host}/_emulator/users", json=directory, timeout=10
        )
    assert added.json() == {"users": 0, "apps": 1}
    with_x5c = {"private_key": cert.private_key_pem, "public_certificate": cert.certificate_pem}
    result = graph_emulator.msal_app("thumb-app", with_x5c).acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in result, result.get("error_description")
    without_x5c = {"private_key": cert.private_key_pem, "thumbprint": cert.thumbprint}
    result = graph_emulator.msal_app("thumb-app", without_x5c).acquire_token_for_client(GRAPH_SCOPE)
    assert result["error_codes"] == [700027]


@pytest.mark.parametrize(
    "resource",
    [
        "https://graph.microsoft.com",
        "https://graph.microsoft.us",
        "https://dod-graph.microsoft.us",
        "https://microsoftgraph.chinacloudapi.cn",
    ],
)
def test_tokens_are_issued_for_each_clouds_graph_with_it_as_audience(
    graph_emulator: GraphEmulatorHandle, resource: str
) -> None:
    result = graph_emulator.msal_app().acquire_token_for_client([f"{resource}/.default"])
    assert "access_token" in result, result.get("error_description")
    claims = result["access_token"].split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["aud"] == (
        resource
    )


def test_a_scope_for_the_graph_servers_own_address_is_refused(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    scope = f"{graph_emulator.authority_host}/.default"
    result = graph_emulator.msal_app().acquire_token_for_client([scope])
    assert result["error"] == "invalid_resource"
    assert result["error_codes"] == [500011]
    assert (
        f"resource principal named {graph_emulator.authority_host} was not found"
        in (result["error_description"])
    )


def test_scopes_of_two_resources_are_refused(graph_emulator: GraphEmulatorHandle) -> None:
    scopes = ["https://graph.microsoft.com/.default", "https://graph.microsoft.us/.default"]
    result = graph_emulator.msal_app().acquire_token_for_client(scopes)
    assert result["error"] == "invalid_scope"
    assert result["error_codes"] == [28000]


def test_graph_refuses_a_token_for_another_clouds_graph(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    result = graph_emulator.msal_app().acquire_token_for_client(
        ["https://graph.microsoft.us/.default"]
    )
    response = get_alice(graph_emulator, f"Bearer {result['access_token']}")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "Access token validation failure. Invalid audience."
    )
