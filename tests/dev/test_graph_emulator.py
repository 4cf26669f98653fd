"""The emulator's Graph surface, driven with requests: directory, folders, messages, $batch."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from icechat.dev.graph_emulator import MAX_REQUEST_BYTES
from icechat.dev.graph_emulator.store import Store
from icechat.graph.properties import (
    ARCHIVED_MESSAGE_FLAGS,
    DEDUPE_KEY,
    MSGFLAG_UNSENT,
)
from tests.support.emulator_calls import FOLDER, chat_message, make_folder, new_folder_messages
from tests.support.fixtures.graph_emulator import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    FRANK,
    GraphEmulatorHandle,
)

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


def test_directory_filter_of_more_than_15_or_clauses_is_refused(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    def clauses(n: int) -> str:
        return " or ".join(f"mail eq 'user{i}@contoso.example'" for i in range(n - 1)) + (
            f" or userPrincipalName eq '{BOB}'"
        )

    allowed = graph_emulator.graph("GET", "/users", params={"$filter": clauses(15)})
    assert [u["userPrincipalName"] for u in allowed.json()["value"]] == [BOB]
    refused = graph_emulator.graph("GET", "/users", params={"$filter": clauses(16)})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "Request_UnsupportedQuery"
    assert "'OR' operators: 16. Max allowed: 15" in error["message"]


def test_user_without_mailbox_answers_mail_requests_with_404(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    assert graph_emulator.graph("GET", f"/users/{DAVE}").status_code == 200
    response = graph_emulator.graph("GET", f"/users/{DAVE}/mailFolders")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    unknown = graph_emulator.graph("GET", "/users/nobody@contoso.example/mailFolders")
    assert unknown.json()["error"]["code"] == "ErrorInvalidUser"


@pytest.mark.parametrize("path", ["mailFolders/msgfolderroot", "messages"])
def test_some_users_without_mailbox_answer_resource_not_found(
    graph_emulator: GraphEmulatorHandle, path: str
) -> None:
    assert graph_emulator.graph("GET", f"/users/{FRANK}").status_code == 200
    response = graph_emulator.graph("GET", f"/users/{FRANK}/{path}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"
    assert response.json()["error"]["message"] == "Resource could not be discovered."


def test_unknown_no_mailbox_answer_is_refused(graph_emulator: GraphEmulatorHandle) -> None:
    with pytest.raises(requests.HTTPError):
        graph_emulator.add_users(
            [{"userPrincipalName": "x@contoso.example", "noMailboxAnswer": "Gone"}]
        )


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


@pytest.mark.parametrize("path", ["mailFolders", "mailFolders/msgfolderroot/childFolders"])
def test_hidden_folders_are_listed_only_when_asked_for(
    graph_emulator: GraphEmulatorHandle, path: str
) -> None:
    base = f"/users/{ALICE}/{path}"
    created = graph_emulator.graph("POST", base, json={"displayName": FOLDER, "isHidden": True})
    assert created.status_code == 201 and created.json()["isHidden"] is True
    query = {"$filter": f"displayName eq '{FOLDER}'"}
    assert graph_emulator.graph("GET", base, params=query).json()["value"] == []
    listed = graph_emulator.graph("GET", base, params={**query, "includeHiddenFolders": "true"})
    assert [(f["id"], f["isHidden"]) for f in listed.json()["value"]] == [
        (created.json()["id"], True)
    ]
    every = graph_emulator.graph("GET", base, params={"includeHiddenFolders": "true"})
    assert FOLDER in {f["displayName"] for f in every.json()["value"]}
    assert FOLDER not in {
        f["displayName"] for f in graph_emulator.graph("GET", base).json()["value"]
    }


def test_a_hidden_folder_takes_its_name(graph_emulator: GraphEmulatorHandle) -> None:
    path = f"/users/{ALICE}/mailFolders/msgfolderroot/childFolders"
    hidden = graph_emulator.graph("POST", path, json={"displayName": FOLDER, "isHidden": True})
    assert hidden.status_code == 201
    again = graph_emulator.graph("POST", path, json={"displayName": FOLDER})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ErrorFolderExists"
    bad = graph_emulator.graph("POST", path, json={"displayName": "Other", "isHidden": "yes"})
    assert bad.status_code == 400


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
    path = new_folder_messages(graph_emulator)
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
    path = new_folder_messages(graph_emulator)
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
    path = new_folder_messages(graph_emulator)
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


def _over_four_megabytes(key: str) -> dict[str, Any]:
    return chat_message(key) | {
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "big.bin",
                "contentBytes": base64.b64encode(b"x" * (MAX_REQUEST_BYTES * 3 // 4)).decode(),
            }
        ]
    }


@pytest.mark.parametrize("path", ["mailFolders/{folder}/messages", "messages"])
def test_a_message_create_over_four_megabytes_is_a_bad_request(
    graph_emulator: GraphEmulatorHandle, path: str
) -> None:
    folder_id = make_folder(graph_emulator)
    response = graph_emulator.graph(
        "POST", f"/users/{ALICE}/{path.format(folder=folder_id)}", json=_over_four_megabytes("m")
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "BadRequest",
        "The maximum request length supported is 4MB.",
    )
    assert graph_emulator.message_count(ALICE) == 0


def test_other_requests_over_four_megabytes_are_too_large(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    part = {
        "id": "1",
        "method": "POST",
        "url": f"/users/{ALICE}/mailFolders/{folder_id}/messages",
        "headers": {"Content-Type": "application/json"},
        "body": _over_four_megabytes("b"),
    }
    response = graph_emulator.graph("POST", "/$batch", json={"requests": [part]})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "RequestEntityTooLarge"
    assert graph_emulator.message_count(ALICE) == 0


def test_four_megabytes_are_counted_in_bytes_not_characters(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    # 1.5 million CJK characters: under 4 MB as characters, 4.5 MB as UTF-8.
    body = chat_message("cjk") | {"body": {"contentType": "text", "content": "漢" * 1_500_000}}
    data = json.dumps(body, ensure_ascii=False).encode()
    assert len(data.decode()) < MAX_REQUEST_BYTES < len(data)
    response = graph_emulator.graph(
        "POST",
        f"/users/{ALICE}/mailFolders/{folder_id}/messages",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The maximum request length supported is 4MB."
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
    url = new_folder_messages(graph_emulator)
    requests_ = [_sub(str(i), url, chat_message(f"b{i}")) for i in range(3)]
    requests_.append(_sub("3", f"/users/{DAVE}/mailFolders/inbox/messages", chat_message("d")))
    requests_.append(_sub("4", url, {"bogus": 1}))
    response = graph_emulator.graph("POST", "/$batch", json={"requests": requests_})
    assert response.status_code == 200
    statuses = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert statuses == {"0": 201, "1": 201, "2": 201, "3": 404, "4": 400}
    assert graph_emulator.message_count(ALICE) == 3
    subs = [r for r in graph_emulator.requests_log() if r["batch_of"]]
    assert len(subs) == 5 and all(r["client"] == graph_emulator.client_id for r in subs)


def test_sequential_batch_skips_what_follows_a_failure(graph_emulator: GraphEmulatorHandle) -> None:
    url = new_folder_messages(graph_emulator)
    requests_ = [
        _sub("a", url, chat_message("s0")),
        _sub("b", url, {"bogus": 1}, dependsOn=["a"]),
        _sub("c", url, chat_message("s2"), dependsOn=["b"]),
    ]
    response = graph_emulator.graph("POST", "/$batch", json={"requests": requests_})
    statuses = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert statuses == {"a": 201, "b": 400, "c": 424}
    assert graph_emulator.message_count(ALICE) == 1


@pytest.mark.parametrize(
    "depends",
    [
        # Four interleaved chains: what the client used to send.
        {n: [str(n - 4)] for n in range(4, 8)},
        # Some parts depend on the one before, others on nothing.
        {1: ["0"], 3: ["2"]},
        # A part that depends on two.
        {1: ["0"], 2: ["0", "1"]},
        # The first part depends on nothing, the rest on a part other than the first.
        {2: ["1"], 3: ["1"]},
    ],
    ids=["interleaved-chains", "partly-sequential", "two-dependencies", "all-on-second"],
)
def test_batch_neither_parallel_nor_sequential_is_refused_whole(
    graph_emulator: GraphEmulatorHandle, depends: dict[int, list[str]]
) -> None:
    url = new_folder_messages(graph_emulator)
    requests_ = [
        _sub(
            str(n),
            url,
            chat_message(f"m{n}"),
            **({"dependsOn": depends[n]} if n in depends else {}),
        )
        for n in range(8)
    ]
    response = graph_emulator.graph("POST", "/$batch", json={"requests": requests_})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"] == "Batch should be either fully sequential or fully parallel."
    assert graph_emulator.message_count(ALICE) == 0


def test_batch_where_every_part_depends_on_the_first_runs(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    url = new_folder_messages(graph_emulator)
    requests_ = [_sub("0", url, chat_message("f0"))]
    requests_ += [_sub(str(n), url, chat_message(f"f{n}"), dependsOn=["0"]) for n in range(1, 6)]
    response = graph_emulator.graph("POST", "/$batch", json={"requests": requests_})
    assert response.status_code == 200
    assert sorted(r["status"] for r in response.json()["responses"]) == [201] * 6
    assert graph_emulator.message_count(ALICE) == 6


def _concurrent_batches(
    emu: GraphEmulatorHandle, batches: list[list[dict[str, Any]]]
) -> list[list[int]]:
    """Send the batches at the same moment; each batch's part statuses."""
    token = emu.token()
    barrier = threading.Barrier(len(batches))
    results: list[list[int]] = [[] for _ in batches]

    def send(n: int) -> None:
        with emu.session() as session:
            barrier.wait()
            answer = session.post(
                f"{emu.graph_url}/$batch",
                json={"requests": batches[n]},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        results[n] = [r["status"] for r in answer.json()["responses"]]

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_parallel_batch_parts_each_take_a_slot_of_the_mailbox(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    graph_emulator.set_faults(latency_ms=300)
    url = f"/users/{ALICE}/mailFolders/inbox"
    parallel = [_sub(str(n), url) for n in range(4)]
    results = _concurrent_batches(graph_emulator, [parallel, parallel])
    statuses = sorted(results[0] + results[1])
    assert statuses.count(429) >= 1 and statuses.count(200) >= 4
    assert graph_emulator.peak_concurrency()[ALICE] > 4


def test_sequential_batches_hold_one_slot_each(graph_emulator: GraphEmulatorHandle) -> None:
    graph_emulator.set_faults(latency_ms=100)
    url = f"/users/{ALICE}/mailFolders/inbox"
    sequential = [_sub("0", url)] + [_sub(str(n), url, dependsOn=[str(n - 1)]) for n in (1, 2)]
    results = _concurrent_batches(graph_emulator, [sequential] * 4)
    assert [status for statuses in results for status in statuses] == [200] * 12
    assert graph_emulator.peak_concurrency()[ALICE] == 4


def test_a_parallel_batch_of_twenty_runs_four_parts_at_a_time(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    url = f"/users/{ALICE}/mailFolders/inbox"
    response = graph_emulator.graph(
        "POST", "/$batch", json={"requests": [_sub(str(n), url) for n in range(20)]}
    )
    assert sorted(r["status"] for r in response.json()["responses"]) == [200] * 20
    assert graph_emulator.peak_concurrency()[ALICE] <= 4


def test_parallel_batch_answers_come_in_the_order_the_parts_finish(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    # Two parts are admitted and take 300 ms; the third is throttled and answered at once.
    graph_emulator.set_faults(latency_ms=300, window_requests=2, window_seconds=30)
    url = f"/users/{ALICE}/mailFolders/inbox"
    response = graph_emulator.graph(
        "POST", "/$batch", json={"requests": [_sub(str(n), url) for n in range(3)]}
    )
    assert [r["status"] for r in response.json()["responses"]] == [429, 200, 200]


def test_batch_part_ids_follow_the_part_own_prefer_header(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    url = new_folder_messages(graph_emulator)
    immutable = {"Content-Type": "application/json", "Prefer": 'IdType="ImmutableId"'}
    requests_ = [
        _sub("plain", url, chat_message("p")),
        _sub("immutable", url, chat_message("i")) | {"headers": immutable},
    ]
    response = graph_emulator.graph(
        "POST",
        "/$batch",
        json={"requests": requests_},
        headers={"Prefer": 'IdType="ImmutableId"'},  # applies to the batch POST only
    )
    ids = {r["id"]: r["body"]["id"] for r in response.json()["responses"]}
    stored = {m["internetMessageId"]: m["id"] for m in graph_emulator.messages(ALICE)}
    assert ids["immutable"] == stored["<i@icechat-archiver.invalid>"]
    assert ids["immutable"].startswith("AAkALgAA")
    assert ids["plain"] != stored["<p@icechat-archiver.invalid>"]
    assert ids["plain"].startswith("AAMkAG")


def test_rest_id_changes_when_the_item_moves_and_immutable_id_does_not(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    url = new_folder_messages(graph_emulator)
    rest = graph_emulator.graph("POST", url, json=chat_message("mv")).json()["id"]
    immutable = graph_emulator.graph(
        "GET", f"/users/{ALICE}/messages/{rest}", headers={"Prefer": 'IdType="ImmutableId"'}
    ).json()["id"]
    assert rest != immutable
    assert graph_emulator.graph("DELETE", f"/users/{ALICE}/messages/{rest}").status_code == 204
    assert graph_emulator.graph("GET", f"/users/{ALICE}/messages/{rest}").status_code == 404
    moved = graph_emulator.graph("GET", f"/users/{ALICE}/messages/{immutable}")
    assert moved.status_code == 200
    assert moved.json()["id"] not in (rest, immutable)  # the REST id of its new folder


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
    path = new_folder_messages(graph_emulator)
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
    path = new_folder_messages(graph_emulator)
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


def test_state_from_before_hidden_folders_still_opens(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "graph.sqlite3") as db:
        db.execute(
            "CREATE TABLE folders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, parent_id TEXT,"
            " well_known TEXT, display_name TEXT NOT NULL COLLATE NOCASE, seq INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO folders VALUES ('f1', 'u1', 'root', NULL, 'ICE Chat', 1)")
    db.close()
    store = Store(tmp_path)
    try:
        assert store.child_folders("u1", "root", include_hidden=False)[0]["isHidden"] is False
    finally:
        store.close()
