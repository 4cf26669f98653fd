"""The emulator's Graph surface, driven with requests: directory, folders, messages, $batch."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from icechat.graph_emulator import MAX_REQUEST_BYTES
from icechat.graph_properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    DELIVERY_TIME,
    MESSAGE_FLAGS,
    MSGFLAG_UNSENT,
    SUBMIT_TIME,
)
from tests.fixtures.graph_emulator import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    GraphEmulatorHandle,
)

FOLDER = "ICE Chat"


def chat_message(key: str, *, flags: int | None = ARCHIVED_MESSAGE_FLAGS) -> dict[str, Any]:
    """A message body as the connector sends it."""
    props = [
        {"id": DELIVERY_TIME, "value": "2026-11-26T09:30:00Z"},
        {"id": SUBMIT_TIME, "value": "2026-11-26T09:29:59Z"},
        {"id": DEDUPE_KEY, "value": key},
    ]
    if flags is not None:
        props.append({"id": MESSAGE_FLAGS, "value": str(flags)})
    return {
        "subject": f"ICE Chat {key}",
        "body": {"contentType": "html", "content": "<p>hello &lt;b&gt;</p>"},
        "from": {"emailAddress": {"address": BOB, "name": "Bob Jones"}},
        "toRecipients": [{"emailAddress": {"address": ALICE, "name": "Alice Smith"}}],
        "internetMessageId": f"<{key}@icechat-archiver.invalid>",
        "singleValueExtendedProperties": props,
    }


def make_folder(emu: GraphEmulatorHandle, upn: str = ALICE) -> str:
    response = emu.graph(
        "POST", f"/users/{upn}/mailFolders/msgfolderroot/childFolders", json={"displayName": FOLDER}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- directory ---------------------------------------------------------------------------


def test_user_by_upn_and_by_id_with_selected_fields(graph_emulator: GraphEmulatorHandle) -> None:
    by_upn = graph_emulator.graph("GET", f"/users/{ALICE.upper()}").json()
    assert "accountEnabled" not in by_upn  # as in Graph: only with $select
    by_id = graph_emulator.graph(
        "GET",
        f"/users/{by_upn['id']}",
        params={"$select": "id,userPrincipalName,mail,proxyAddresses,accountEnabled"},
    ).json()
    assert by_id["userPrincipalName"] == ALICE
    assert by_id["accountEnabled"] is True
    assert "smtp:asmith@fabrikam.example" in by_id["proxyAddresses"]


def test_unknown_user_is_resource_not_found(graph_emulator: GraphEmulatorHandle) -> None:
    response = graph_emulator.graph("GET", "/users/nobody@contoso.example")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"


def test_disabled_user_is_reported_disabled(graph_emulator: GraphEmulatorHandle) -> None:
    user = graph_emulator.graph("GET", f"/users/{CAROL}", params={"$select": "accountEnabled"})
    assert user.json()["accountEnabled"] is False


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("mail eq 'erin@contoso.example'", ERIN),
        ("proxyAddresses/any(x:x eq 'smtp:asmith@fabrikam.example')", ALICE),
        ("proxyAddresses/any(x:x eq 'SMTP:ALICE.SMITH@contoso.example')", ALICE),
        (
            "mail eq 'asmith@fabrikam.example' or "
            "proxyAddresses/any(p:p eq 'smtp:asmith@fabrikam.example')",
            ALICE,
        ),
        ("userPrincipalName eq 'bob@contoso.example'", BOB),
    ],
)
def test_directory_lookup_by_mail_and_alias(
    graph_emulator: GraphEmulatorHandle, filter_: str, expected: str
) -> None:
    response = graph_emulator.graph("GET", "/users", params={"$filter": filter_})
    assert response.status_code == 200, response.text
    assert [u["userPrincipalName"] for u in response.json()["value"]] == [expected]


def test_user_without_mailbox_answers_mail_requests_with_404(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    assert graph_emulator.graph("GET", f"/users/{DAVE}").status_code == 200
    response = graph_emulator.graph("GET", f"/users/{DAVE}/mailFolders")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    unknown = graph_emulator.graph("GET", "/users/nobody@contoso.example/mailFolders")
    assert unknown.json()["error"]["code"] == "ErrorInvalidUser"


# --- folders -----------------------------------------------------------------------------


def test_folder_find_create_and_duplicate(graph_emulator: GraphEmulatorHandle) -> None:
    path = f"/users/{ALICE}/mailFolders/msgfolderroot/childFolders"
    query = {"$filter": f"displayName eq '{FOLDER}'"}
    assert graph_emulator.graph("GET", path, params=query).json()["value"] == []
    folder_id = make_folder(graph_emulator)
    found = graph_emulator.graph("GET", path, params=query).json()["value"]
    assert [f["id"] for f in found] == [folder_id]
    again = graph_emulator.graph("POST", path, json={"displayName": FOLDER.upper()})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ErrorFolderExists"


def test_sixteen_concurrent_creators_make_one_folder(graph_emulator: GraphEmulatorHandle) -> None:
    graph_emulator.set_faults(max_concurrent=None)
    token = graph_emulator.token()
    url = f"{graph_emulator.graph_url}/users/{ALICE}/mailFolders/msgfolderroot/childFolders"
    statuses: list[int] = []
    start = threading.Barrier(16)

    def create() -> None:
        with graph_emulator.session() as session:
            start.wait()
            response = session.post(
                url,
                json={"displayName": FOLDER},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 15
    names = [f["displayName"] for f in graph_emulator.state()["users"][0]["folders"]]
    assert names.count(FOLDER) == 1


# --- messages ----------------------------------------------------------------------------


def test_flags_without_unsent_bit_make_a_received_item_with_the_chat_times(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    created = graph_emulator.graph(
        "POST", f"/users/{ALICE}/mailFolders/{folder_id}/messages", json=chat_message("k1")
    )
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["isDraft"] is False
    assert item["isRead"] is True
    assert item["receivedDateTime"] == "2026-11-26T09:30:00Z"
    assert item["sentDateTime"] == "2026-11-26T09:29:59Z"
    assert item["parentFolderId"] == folder_id
    assert item["internetMessageId"] == "<k1@icechat-archiver.invalid>"
    assert "singleValueExtendedProperties" not in item


@pytest.mark.parametrize("flags", [None, ARCHIVED_MESSAGE_FLAGS | MSGFLAG_UNSENT])
def test_without_flags_or_with_unsent_bit_the_item_is_a_draft(
    graph_emulator: GraphEmulatorHandle, flags: int | None
) -> None:
    folder_id = make_folder(graph_emulator)
    item = graph_emulator.graph(
        "POST",
        f"/users/{ALICE}/mailFolders/{folder_id}/messages",
        json=chat_message("k2", flags=flags),
    ).json()
    assert item["isDraft"] is True


def test_bad_bodies_get_graph_errors(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    typo = graph_emulator.graph("POST", path, json={"subjekt": "x"})
    assert typo.status_code == 400
    assert "'subjekt' does not exist" in typo.json()["error"]["message"]
    bad_time = chat_message("k3")
    bad_time["singleValueExtendedProperties"][0]["value"] = "yesterday"
    response = graph_emulator.graph("POST", path, json=bad_time)
    assert response.json()["error"]["code"] == "ErrorInvalidExtendedPropertyValue"
    missing = graph_emulator.graph("POST", f"/users/{ALICE}/mailFolders/nope/messages", json={})
    assert missing.status_code == 404
    assert graph_emulator.message_count(ALICE) == 0


def test_filter_by_internet_message_id_and_by_dedupe_key(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    for key in ("a", "b", "c"):
        assert graph_emulator.graph("POST", path, json=chat_message(key)).status_code == 201
    by_id = graph_emulator.graph(
        "GET", path, params={"$filter": "internetMessageId eq '<b@icechat-archiver.invalid>'"}
    ).json()["value"]
    assert [m["subject"] for m in by_id] == ["ICE Chat b"]
    by_key = graph_emulator.graph(
        "GET",
        path,
        params={
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{DEDUPE_KEY}'"
            " and ep/value eq 'c')",
            "$expand": f"singleValueExtendedProperties($filter=id eq '{DEDUPE_KEY}')",
            "$select": "id,internetMessageId",
        },
    ).json()["value"]
    assert len(by_key) == 1
    assert by_key[0]["internetMessageId"] == "<c@icechat-archiver.invalid>"
    assert by_key[0]["singleValueExtendedProperties"] == [{"id": DEDUPE_KEY, "value": "c"}]
    assert "subject" not in by_key[0]
    none = graph_emulator.graph(
        "GET", path, params={"$filter": "internetMessageId eq '<zzz@icechat-archiver.invalid>'"}
    ).json()["value"]
    assert none == []


def test_listing_pages_with_next_link(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    for key in range(12):
        graph_emulator.graph("POST", path, json=chat_message(f"p{key}"))
    first = graph_emulator.graph("GET", path).json()
    assert len(first["value"]) == 10
    with graph_emulator.session() as session:
        second = session.get(
            first["@odata.nextLink"],
            headers={"Authorization": f"Bearer {graph_emulator.token()}"},
            timeout=10,
        ).json()
    assert len(second["value"]) == 2
    assert "@odata.nextLink" not in second


def test_attachments_are_stored_and_counted(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    body = chat_message("att") | {
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "trade.csv",
                "contentType": "text/csv",
                "contentBytes": base64.b64encode(b"a,b\n1,2\n").decode(),
            }
        ]
    }
    item = graph_emulator.graph(
        "POST", f"/users/{ALICE}/mailFolders/{folder_id}/messages", json=body
    ).json()
    assert item["hasAttachments"] is True
    listed = graph_emulator.graph("GET", f"/users/{ALICE}/messages/{item['id']}/attachments")
    assert [(a["name"], a["size"]) for a in listed.json()["value"]] == [("trade.csv", 8)]


def test_request_over_four_megabytes_is_refused(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    body = chat_message("big") | {
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "big.bin",
                "contentBytes": base64.b64encode(b"x" * (MAX_REQUEST_BYTES * 3 // 4)).decode(),
            }
        ]
    }
    response = graph_emulator.graph(
        "POST", f"/users/{ALICE}/mailFolders/{folder_id}/messages", json=body
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "RequestEntityTooLarge"
    assert graph_emulator.message_count(ALICE) == 0


def test_prefer_immutable_id_is_accepted(graph_emulator: GraphEmulatorHandle) -> None:
    response = graph_emulator.graph(
        "GET", f"/users/{ALICE}/mailFolders", headers={"Prefer": 'IdType="ImmutableId"'}
    )
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == 'IdType="ImmutableId"'


# --- $batch ------------------------------------------------------------------------------


def _sub(sub_id: str, url: str, body: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"id": sub_id, "method": "POST" if body else "GET", "url": url}
    if body is not None:
        request |= {"body": body, "headers": {"Content-Type": "application/json"}}
    return request | extra


def test_batch_creates_and_reports_each_status(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    url = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    requests_ = [_sub(str(i), url, chat_message(f"b{i}")) for i in range(3)]
    requests_.append(_sub("3", f"/users/{DAVE}/mailFolders/inbox/messages", chat_message("d")))
    requests_.append(_sub("4", url, {"bogus": 1}))
    requests_.append(_sub("5", url, chat_message("dep"), dependsOn=["4"]))
    response = graph_emulator.graph("POST", "/$batch", json={"requests": requests_})
    assert response.status_code == 200
    statuses = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert statuses == {"0": 201, "1": 201, "2": 201, "3": 404, "4": 400, "5": 424}
    assert graph_emulator.message_count(ALICE) == 3
    subs = [r for r in graph_emulator.requests_log() if r["batch_of"]]
    assert len(subs) == 6 and all(r["client"] == graph_emulator.client_id for r in subs)


def test_batch_limits(graph_emulator: GraphEmulatorHandle) -> None:
    url = f"/users/{ALICE}/mailFolders"
    too_many = [_sub(str(i), url) for i in range(21)]
    response = graph_emulator.graph("POST", "/$batch", json={"requests": too_many})
    assert response.status_code == 400
    no_type = [{"id": "1", "method": "POST", "url": url, "body": {"displayName": "x"}}]
    response = graph_emulator.graph("POST", "/$batch", json={"requests": no_type})
    assert response.status_code == 400
    assert "Content-Type" in response.json()["error"]["message"]


def test_message_posted_to_the_mailbox_is_a_draft_and_delete_moves_it(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    item = graph_emulator.graph("POST", f"/users/{ALICE}/messages", json={"subject": "note"})
    assert item.status_code == 201
    drafts = graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders/drafts").json()
    assert item.json()["parentFolderId"] == drafts["id"]
    assert item.json()["isDraft"] is True
    deleted = graph_emulator.graph("DELETE", f"/users/{ALICE}/messages/{item.json()['id']}")
    assert deleted.status_code == 204
    assert graph_emulator.message_count(ALICE, "Deleted Items") == 1
    assert graph_emulator.message_count(ALICE, "Drafts") == 0


def test_permanent_delete_purges_the_item_from_every_folder(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    first = graph_emulator.graph("POST", path, json=chat_message("gone")).json()["id"]
    second = graph_emulator.graph("POST", path, json=chat_message("gone-too")).json()["id"]
    purged = graph_emulator.graph("POST", f"/users/{ALICE}/messages/{first}/permanentDelete")
    assert purged.status_code == 204
    via_folder = graph_emulator.graph("POST", f"{path}/{second}/permanentDelete")
    assert via_folder.status_code == 204
    for item in (first, second):
        lost = graph_emulator.graph("GET", f"/users/{ALICE}/messages/{item}")
        assert lost.status_code == 404
        assert lost.json()["error"]["code"] == "ErrorItemNotFound"
    assert graph_emulator.message_count(ALICE) == 0
    assert graph_emulator.message_count(ALICE, "Deleted Items") == 0
    by_key = graph_emulator.graph(
        "GET",
        path,
        params={
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{DEDUPE_KEY}'"
            " and ep/value eq 'gone')"
        },
    )
    assert by_key.json()["value"] == []
    again = graph_emulator.graph("POST", f"/users/{ALICE}/messages/{first}/permanentDelete")
    assert again.status_code == 404


def test_listing_a_received_time_window_with_the_dedupe_key_expanded(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    """What verify sends: a day's window of one folder, ids, times and dedupe keys only."""
    folder_id = make_folder(graph_emulator)
    path = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    for key, when in (("in", "2026-11-26T09:30:00Z"), ("before", "2026-11-25T23:59:59Z")):
        body = chat_message(key)
        body["singleValueExtendedProperties"][0]["value"] = when
        assert graph_emulator.graph("POST", path, json=body).status_code == 201
    window = graph_emulator.graph(
        "GET",
        path,
        params={
            "$filter": "receivedDateTime ge 2026-11-26T00:00:00Z"
            " and receivedDateTime lt 2026-11-27T00:00:00Z",
            "$select": "id,receivedDateTime",
            "$expand": f"singleValueExtendedProperties($filter=id eq '{DEDUPE_KEY}')",
            "$top": "500",
        },
    ).json()["value"]
    assert [m["receivedDateTime"] for m in window] == ["2026-11-26T09:30:00Z"]
    assert window[0]["singleValueExtendedProperties"] == [{"id": DEDUPE_KEY, "value": "in"}]
    assert set(window[0]) == {
        "@odata.etag",
        "id",
        "receivedDateTime",
        "singleValueExtendedProperties",
    }
