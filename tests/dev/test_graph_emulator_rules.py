"""The rows of docs/graph-emulator.md that no other emulator test asserts, one test per rule.

Every request here is real HTTPS to the ``graph_emulator`` fixture; each negative case sits
beside a positive control, so a test fails if the emulator stops refusing or stops accepting.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from icechat.dev.graph_emulator.faults import FaultConfig, Limiter
from icechat.dev.graph_emulator.tls import AppCertificate, thumbprints
from icechat.graph.properties import MESSAGE_FLAGS
from tests.support.emulator_calls import chat_message, make_folder
from tests.support.fixtures.graph_emulator import (
    ALICE,
    BOB,
    GRAPH_SCOPE,
    SEED_USERS,
    GraphEmulatorHandle,
)

# --- helpers -----------------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _token_url(emu: GraphEmulatorHandle, tenant: str | None = None) -> str:
    return f"{emu.authority_host}/{tenant or emu.tenant_id}/oauth2/v2.0/token"


def _post_token(
    emu: GraphEmulatorHandle, form: dict[str, str], tenant: str | None = None
) -> requests.Response:
    base = {"client_id": emu.client_id, "grant_type": "client_credentials"}
    base |= {"scope": GRAPH_SCOPE[0]}
    with emu.session() as session:
        return session.post(_token_url(emu, tenant), data=base | form, timeout=10)


def _assertion(emu: GraphEmulatorHandle, cert: AppCertificate, **claims: Any) -> str:
    """An RS256 client assertion with ``x5t``, as the certificate-credentials page shapes it."""
    now = int(time.time())
    body = {
        "aud": _token_url(emu),
        "iss": emu.client_id,
        "sub": emu.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
    } | claims
    header = {"alg": "RS256", "typ": "JWT", "x5t": thumbprints(cert.certificate_pem)[0]}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(body).encode())}"
    key = serialization.load_pem_private_key(cert.private_key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _assertion_form(assertion: str) -> dict[str, str]:
    return {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


def _add_app(emu: GraphEmulatorHandle, client_id: str, permissions: list[str]) -> str:
    """Register an app with ``permissions``; returns a bearer token for it."""
    app = {"client_id": client_id, "secret": "s3cret", "permissions": permissions}
    with emu.session() as session:
        added = session.post(
            f"{emu.authority_host}/_emulator/users", json={"apps": [app]}, timeout=10
        )
    assert added.status_code == 200, added.text
    return emu.token(client_id, "s3cret")


def _call(
    emu: GraphEmulatorHandle, token: str, method: str, path: str, **kwargs: Any
) -> requests.Response:
    with emu.session() as session:
        return session.request(
            method,
            emu.graph_url + path,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            **kwargs,
        )


def _code(response: requests.Response) -> str:
    return str(response.json()["error"]["code"])


def _aadsts(response: requests.Response) -> tuple[int, str, list[int]]:
    body = response.json()
    return response.status_code, body["error"], body["error_codes"]


# --- Entra ID ----------------------------------------------------------------------------


def test_unknown_tenant_is_aadsts90002_at_discovery_and_token_endpoint(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    with graph_emulator.session() as session:
        discovery = session.get(
            f"{graph_emulator.authority_host}/nowhere.example/v2.0/.well-known/openid-configuration",
            timeout=10,
        )
    assert _aadsts(discovery) == (400, "invalid_tenant", [90002])
    token = _post_token(graph_emulator, {"client_secret": graph_emulator.client_secret})
    assert token.status_code == 200
    elsewhere = _post_token(
        graph_emulator, {"client_secret": graph_emulator.client_secret}, tenant="nowhere.example"
    )
    assert _aadsts(elsewhere) == (400, "invalid_request", [90002])


def test_entra_error_body_has_the_documented_fields(graph_emulator: GraphEmulatorHandle) -> None:
    response = _post_token(graph_emulator, {"grant_type": "password"})
    body = response.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error_description"].startswith("AADSTS70003: ")
    assert body["error_uri"].endswith("?code=70003")


def test_only_client_credentials_are_granted(graph_emulator: GraphEmulatorHandle) -> None:
    refused = _post_token(graph_emulator, {"grant_type": "password"})
    assert _aadsts(refused) == (400, "unsupported_grant_type", [70003])


@pytest.mark.parametrize(
    "scope", ["https://graph.microsoft.com/Mail.ReadWrite", "User.Read.All", ""]
)
def test_client_credentials_scope_must_end_with_default(
    graph_emulator: GraphEmulatorHandle, scope: str
) -> None:
    form = {"client_secret": graph_emulator.client_secret, "scope": scope}
    assert _aadsts(_post_token(graph_emulator, form)) == (400, "invalid_scope", [1002012])


def test_a_secret_or_an_assertion_is_required(graph_emulator: GraphEmulatorHandle) -> None:
    assert _aadsts(_post_token(graph_emulator, {})) == (401, "invalid_client", [7000218])


def test_assertion_type_must_be_jwt_bearer(graph_emulator: GraphEmulatorHandle) -> None:
    assertion = _assertion(graph_emulator, graph_emulator.app_certificate)
    form = _assertion_form(assertion) | {"client_assertion_type": "jwt"}
    assert _aadsts(_post_token(graph_emulator, form)) == (400, "invalid_request", [70002])


def test_hand_built_rs256_assertion_gets_a_token_graph_accepts(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    """The positive control for the assertion checks below: the same helper, valid claims."""
    assertion = _assertion(graph_emulator, graph_emulator.app_certificate)
    response = _post_token(graph_emulator, _assertion_form(assertion))
    assert response.status_code == 200, response.text
    me = _call(graph_emulator, response.json()["access_token"], "GET", f"/users/{ALICE}")
    assert me.status_code == 200


def test_malformed_assertion_is_aadsts50027(graph_emulator: GraphEmulatorHandle) -> None:
    response = _post_token(graph_emulator, _assertion_form("not-a-jwt"))
    assert _aadsts(response) == (401, "invalid_client", [50027])


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, 700212),
        ({"iss": "someone-else", "sub": "someone-else"}, 700021),
        ({"nbf": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, 700024),
    ],
    ids=["audience", "issuer", "expired"],
)
def test_assertion_claims_are_checked(
    graph_emulator: GraphEmulatorHandle, claims: dict[str, Any], code: int
) -> None:
    assertion = _assertion(graph_emulator, graph_emulator.app_certificate, **claims)
    response = _post_token(graph_emulator, _assertion_form(assertion))
    assert _aadsts(response) == (401, "invalid_client", [code])


# --- Graph: request and error shapes -----------------------------------------------------


def test_errors_carry_request_ids_and_echo_the_client_request_id(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    response = graph_emulator.graph(
        "GET", "/users/nobody@contoso.example", headers={"client-request-id": "abc-123"}
    )
    inner = response.json()["error"]["innerError"]
    assert response.status_code == 404
    assert response.headers["client-request-id"] == inner["client-request-id"] == "abc-123"
    assert response.headers["request-id"] == inner["request-id"]
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/groups", 400, "BadRequest"),
        ("GET", "/me/messages", 400, "BadRequest"),
        ("PATCH", f"/users/{ALICE}", 405, "Request_BadRequest"),
        ("PUT", f"/users/{ALICE}/mailFolders", 405, "Request_BadRequest"),
    ],
    ids=["unknown-segment", "me-app-only", "patch-user", "put-folders"],
)
def test_requests_graph_does_not_serve_are_refused(
    graph_emulator: GraphEmulatorHandle, method: str, path: str, status: int, code: str
) -> None:
    response = graph_emulator.graph(method, path, json={})
    assert (response.status_code, _code(response)) == (status, code)


def test_paths_outside_v1_are_not_found(graph_emulator: GraphEmulatorHandle) -> None:
    with graph_emulator.session() as session:
        response = session.get(f"{graph_emulator.authority_host}/beta/users", timeout=10)
    assert (response.status_code, _code(response)) == (404, "NotFound")


# --- Directory ---------------------------------------------------------------------------


def test_unparsable_user_filter_is_request_unsupported_query(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    response = graph_emulator.graph("GET", "/users", params={"$filter": "mail eq"})
    assert (response.status_code, _code(response)) == (400, "Request_UnsupportedQuery")


def test_reading_users_needs_a_directory_permission(graph_emulator: GraphEmulatorHandle) -> None:
    token = _add_app(graph_emulator, "mail-only-app", ["Mail.ReadWrite"])
    user = _call(graph_emulator, token, "GET", f"/users/{ALICE}")
    assert (user.status_code, _code(user)) == (403, "Authorization_RequestDenied")
    assert _call(graph_emulator, token, "GET", f"/users/{ALICE}/mailFolders").status_code == 200


def test_user_list_pages_with_next_link(graph_emulator: GraphEmulatorHandle) -> None:
    first = graph_emulator.graph("GET", "/users", params={"$top": "2"}).json()
    seen = [u["userPrincipalName"] for u in first["value"]]
    link = first["@odata.nextLink"]
    with graph_emulator.session() as session:
        while link:
            page = session.get(
                link, headers={"Authorization": f"Bearer {graph_emulator.token()}"}, timeout=10
            ).json()
            seen += [u["userPrincipalName"] for u in page["value"]]
            link = page.get("@odata.nextLink")
    everyone = graph_emulator.graph("GET", "/users").json()
    assert "@odata.nextLink" not in everyone
    assert seen == [u["userPrincipalName"] for u in everyone["value"]]
    assert len(seen) == len(SEED_USERS)


def test_directory_reads_are_not_counted_against_a_mailbox(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    graph_emulator.set_faults(window_requests=1, window_seconds=300)
    for _ in range(3):
        assert graph_emulator.graph("GET", f"/users/{ALICE}").status_code == 200
    assert graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders").status_code == 200
    second = graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders")
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) > 0


# --- Mailbox access ----------------------------------------------------------------------


def test_mail_read_permission_cannot_write(graph_emulator: GraphEmulatorHandle) -> None:
    token = _add_app(graph_emulator, "read-only-app", ["Mail.Read", "User.Read.All"])
    assert _call(graph_emulator, token, "GET", f"/users/{ALICE}/mailFolders").status_code == 200
    created = _call(
        graph_emulator,
        token,
        "POST",
        f"/users/{ALICE}/mailFolders/msgfolderroot/childFolders",
        json={"displayName": "ICE Chat"},
    )
    assert (created.status_code, _code(created)) == (403, "ErrorAccessDenied")
    assert graph_emulator.state()["users"][0]["folders"][-1]["displayName"] == "Junk Email"


def test_permission_is_checked_before_the_mailbox(graph_emulator: GraphEmulatorHandle) -> None:
    token = graph_emulator.token(graph_emulator.nomail_client_id)
    response = _call(graph_emulator, token, "GET", "/users/nobody@contoso.example/mailFolders")
    assert (response.status_code, _code(response)) == (403, "ErrorAccessDenied")


# --- Mail folders ------------------------------------------------------------------------


def test_well_known_folders_answer_by_name(graph_emulator: GraphEmulatorHandle) -> None:
    top = graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders").json()["value"]
    assert [f["displayName"] for f in top] == [
        "Inbox",
        "Drafts",
        "Sent Items",
        "Deleted Items",
        "Archive",
        "Junk Email",
    ]
    assert all(f["isHidden"] is False for f in top)
    root = graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders/msgfolderroot").json()
    assert root["childFolderCount"] == 6
    for name, shown in (
        ("inbox", "Inbox"),
        ("SentItems", "Sent Items"),
        ("junkemail", "Junk Email"),
    ):
        folder = graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders/{name}").json()
        assert (folder["displayName"], folder["parentFolderId"]) == (shown, root["id"])


def test_folder_counts_follow_creates(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}"
    assert graph_emulator.graph("GET", path).json()["totalItemCount"] == 0
    graph_emulator.graph("POST", f"{path}/messages", json=chat_message("count"))
    assert graph_emulator.graph("GET", path).json()["totalItemCount"] == 1
    root = graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders/msgfolderroot").json()
    assert root["childFolderCount"] == 7


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "ErrorInvalidRequest"),
        ({"displayName": "  "}, "ErrorInvalidRequest"),
        (b"{not json", "RequestBodyRead"),
    ],
    ids=["no-name", "blank-name", "not-json"],
)
def test_folder_create_needs_a_display_name(
    graph_emulator: GraphEmulatorHandle, body: Any, code: str
) -> None:
    path = f"/users/{ALICE}/mailFolders/msgfolderroot/childFolders"
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    kwargs["headers"] = {"Content-Type": "application/json"}
    response = graph_emulator.graph("POST", path, **kwargs)
    assert (response.status_code, _code(response)) == (400, code)


def test_unparsable_folder_filter_is_invalid_url_query_filter(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    path = f"/users/{ALICE}/mailFolders/msgfolderroot/childFolders"
    response = graph_emulator.graph("GET", path, params={"$filter": "displayName eq"})
    assert (response.status_code, _code(response)) == (400, "ErrorInvalidUrlQueryFilter")


# --- Messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/messages/AAMkAGnope"),
        ("DELETE", "/messages/AAMkAGnope"),
        ("GET", "/messages/AAMkAGnope/attachments"),
        ("GET", "/mailFolders/AAMkAGnope/messages"),
    ],
)
def test_unknown_item_ids_are_error_item_not_found(
    graph_emulator: GraphEmulatorHandle, method: str, path: str
) -> None:
    response = graph_emulator.graph(method, f"/users/{ALICE}{path}")
    assert (response.status_code, _code(response)) == (404, "ErrorItemNotFound")


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ([{"id": MESSAGE_FLAGS, "value": "seven"}], "ErrorInvalidExtendedPropertyValue"),
        ([{"id": MESSAGE_FLAGS, "value": 1}], "ErrorInvalidExtendedPropertyValue"),
        ([{"value": "x"}], "ErrorInvalidExtendedProperty"),
        ({"id": MESSAGE_FLAGS, "value": "1"}, "RequestBodyRead"),
    ],
    ids=["integer-text", "value-not-string", "no-id", "not-an-array"],
)
def test_bad_extended_properties_are_refused(
    graph_emulator: GraphEmulatorHandle, properties: Any, code: str
) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    good = chat_message("good")
    assert graph_emulator.graph("POST", path, json=good).status_code == 201
    bad = chat_message("bad") | {"singleValueExtendedProperties": properties}
    response = graph_emulator.graph("POST", path, json=bad)
    assert (response.status_code, _code(response)) == (400, code)
    assert graph_emulator.message_count(ALICE) == 1


def test_read_only_message_properties_are_refused(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    body = chat_message("ro") | {"receivedDateTime": "2026-11-26T09:30:00Z"}
    response = graph_emulator.graph(
        "POST", f"/users/{ALICE}/mailFolders/{folder_id}/messages", json=body
    )
    assert (response.status_code, _code(response)) == (400, "RequestBodyRead")
    assert "receivedDateTime" in response.json()["error"]["message"]


def _file(name: str | None = "a.txt", content: str = "aGk=", kind: str = "file") -> dict[str, Any]:
    attachment: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}Attachment"}
    if name is not None:
        attachment["name"] = name
    return attachment | {"contentBytes": content}


@pytest.mark.parametrize(
    ("attachment", "code"),
    [
        (_file(kind="item"), "ErrorInvalidRequest"),
        (_file(name=None), "ErrorInvalidRequest"),
        (_file(content="not base64!"), "RequestBodyRead"),
    ],
    ids=["item-attachment", "no-name", "bad-base64"],
)
def test_attachments_the_emulator_refuses(
    graph_emulator: GraphEmulatorHandle, attachment: dict[str, Any], code: str
) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    ok = graph_emulator.graph("POST", path, json=chat_message("ok") | {"attachments": [_file()]})
    assert ok.status_code == 201
    response = graph_emulator.graph(
        "POST", path, json=chat_message("x") | {"attachments": [attachment]}
    )
    assert (response.status_code, _code(response)) == (400, code)


def test_attachment_posted_to_a_draft_is_listed(graph_emulator: GraphEmulatorHandle) -> None:
    draft = graph_emulator.graph("POST", f"/users/{ALICE}/messages", json={"subject": "d"}).json()
    path = f"/users/{ALICE}/messages/{draft['id']}/attachments"
    added = graph_emulator.graph("POST", path, json=_file("note.txt", "aGVsbG8="))
    assert added.status_code == 201
    assert (added.json()["name"], added.json()["size"]) == ("note.txt", 5)
    listed = graph_emulator.graph("GET", path).json()["value"]
    assert [a["name"] for a in listed] == ["note.txt"]
    item = graph_emulator.graph("GET", f"/users/{ALICE}/messages/{draft['id']}").json()
    assert item["hasAttachments"] is True


def test_message_view_has_a_plain_text_preview_and_an_etag(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    item = graph_emulator.graph(
        "POST", f"/users/{ALICE}/mailFolders/{folder_id}/messages", json=chat_message("view")
    ).json()
    assert item["bodyPreview"] == "hello <b>"
    assert item["@odata.etag"] == f'W/"{item["changeKey"]}"'
    one = graph_emulator.graph(
        "GET", f"/users/{ALICE}/messages/{item['id']}", params={"$select": "subject"}
    ).json()
    assert set(one) == {"@odata.context", "@odata.etag", "id", "subject"}


@pytest.mark.parametrize(
    "params",
    [{"$expand": "mentions"}, {"$expand": "attachments($top=1)"}, {"$top": "ten"}],
    ids=["unknown-expand", "unsupported-expand-option", "top-not-integer"],
)
def test_query_options_the_emulator_does_not_understand_are_refused(
    graph_emulator: GraphEmulatorHandle, params: dict[str, str]
) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    graph_emulator.graph("POST", path, json=chat_message("q"))
    assert graph_emulator.graph("GET", path, params={"$expand": "attachments"}).status_code == 200
    response = graph_emulator.graph("GET", path, params=params)
    assert response.status_code == 400


# --- $batch ------------------------------------------------------------------------------


def _get(sub_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": sub_id, "method": "GET", "url": f"/users/{ALICE}/mailFolders"} | extra


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        {},
        {"requests": "all of them"},
        {"requests": []},
        {"requests": [_get("1"), _get("1")]},
        {"requests": [_get("")]},
        {"requests": [{"id": "1", "method": "GET"}]},
        {"requests": [_get("1", dependsOn=["2"]), _get("2")]},
    ],
    ids=[
        "not-json",
        "no-requests",
        "requests-not-a-list",
        "empty",
        "duplicate-id",
        "blank-id",
        "no-url",
        "depends-on-a-later-request",
    ],
)
def test_malformed_batches_are_refused_whole(
    graph_emulator: GraphEmulatorHandle, payload: Any
) -> None:
    ok = graph_emulator.graph("POST", "/$batch", json={"requests": [_get("1"), _get("2")]})
    assert [r["status"] for r in ok.json()["responses"]] == [200, 200]
    before = len(graph_emulator.requests_log())
    kwargs: dict[str, Any] = {"data": payload} if isinstance(payload, bytes) else {"json": payload}
    kwargs["headers"] = {"Content-Type": "application/json"}
    response = graph_emulator.graph("POST", "/$batch", **kwargs)
    assert (response.status_code, _code(response)) == (400, "BadRequest")
    assert not [r for r in graph_emulator.requests_log()[before:] if r["batch_of"]]


# --- Transport and the emulator's own endpoints -----------------------------------------


def test_tls_certificate_names_localhost_and_needs_the_emulator_ca(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    url = f"https://localhost:{graph_emulator.emulator.port}/_emulator/info"
    with graph_emulator.session() as session:
        assert session.get(url, timeout=10).status_code == 200
    with requests.Session() as session:
        session.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, timeout=10, verify=True)


def test_info_names_what_the_connection_needs(graph_emulator: GraphEmulatorHandle) -> None:
    with graph_emulator.session() as session:
        info = session.get(f"{graph_emulator.authority_host}/_emulator/info", timeout=10).json()
    assert info["graph_url"] == graph_emulator.graph_url
    assert info["authority"] == graph_emulator.authority
    assert info["ca_bundle"] == graph_emulator.ca_bundle


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/config", {"no_such_setting": 1}),
        ("/config", {"rate_503": 2}),
        ("/config", {"retry_after": -1}),
        ("/users", {"tenant_id": "another-tenant"}),
        ("/users", {"users": [{"mail": "no-upn@contoso.example"}]}),
    ],
)
def test_bad_emulator_settings_are_refused(
    graph_emulator: GraphEmulatorHandle, path: str, body: dict[str, Any]
) -> None:
    with graph_emulator.session() as session:
        response = session.post(
            f"{graph_emulator.authority_host}/_emulator{path}", json=body, timeout=10
        )
    assert (response.status_code, _code(response)) == (400, "BadRequest")
    assert graph_emulator.set_faults()["rate_503"] == 0.0


def test_latency_spreads_between_its_least_and_most(graph_emulator: GraphEmulatorHandle) -> None:
    config = FaultConfig(latency_ms=100, latency_max_ms=300, seed=4)
    limiter = Limiter(config)
    delays = [limiter.latency() for _ in range(200)]
    assert all(0.1 <= d <= 0.3 for d in delays)
    assert max(delays) - min(delays) > 0.15
    assert Limiter(FaultConfig(latency_ms=100)).latency() == 0.1
    with pytest.raises(ValueError, match="latency_max_ms"):
        FaultConfig().updated({"latency_ms": 200, "latency_max_ms": 100})
    graph_emulator.set_faults(latency_ms=200, latency_max_ms=250)
    started = time.monotonic()
    assert graph_emulator.graph("GET", f"/users/{BOB}/mailFolders").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_latency_delays_each_answer(graph_emulator: GraphEmulatorHandle) -> None:
    graph_emulator.set_faults(latency_ms=300)
    started = time.monotonic()
    assert graph_emulator.graph("GET", f"/users/{BOB}/mailFolders").status_code == 200
    assert time.monotonic() - started >= 0.3
    # A batch is delayed once, then each part as it runs: 8 parts, 4 at a time, 2 rounds.
    parts = [{"id": str(n), "method": "GET", "url": f"/users/{BOB}/mailFolders"} for n in range(8)]
    started = time.monotonic()
    assert graph_emulator.graph("POST", "/$batch", json={"requests": parts}).status_code == 200
    assert time.monotonic() - started >= 0.9
