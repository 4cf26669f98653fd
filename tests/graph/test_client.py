"""The Graph client against the project's emulator: auth, typed errors, retries, $batch."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

import pytest

from icechat.dev.graph_payloads import archived_message
from icechat.exceptions import (
    GraphAuthError,
    GraphPermissionError,
    GraphRequestError,
    GraphUnavailableError,
    MailboxNotFoundError,
)
from icechat.graph.auth import access_token, msal_app
from icechat.graph.client import (
    REQUEST_LIMIT,
    GraphClient,
    GraphRequest,
    GraphResponse,
    MailboxGate,
    RequestWindow,
    batch_bytes,
    user_path,
)
from icechat.graph.mailbox import (
    create_request,
    ensure_folder,
    find_folder,
    found_id,
    lookup_request,
)
from icechat.graph.retry import RetryPolicy
from icechat.graph.settings import GraphSettings
from icechat.render import message_id_for
from icechat.settings import DEFAULT_FOLDER
from tests.support.fixtures.graph_emulator import ALICE, BOB, DAVE, FRANK
from tests.support.graph_import_helpers import emulator_settings


def test_secret_and_certificate_both_get_tokens(graph_emulator: Any) -> None:
    for certificate in (False, True):
        settings = emulator_settings(graph_emulator, certificate=certificate)
        with GraphClient(settings) as client:
            body = client.get(user_path(ALICE), mailbox=ALICE, params={"$select": "id"})
            assert body["id"]


def test_one_msal_app_per_settings_and_cached_token(graph_emulator: Any) -> None:
    settings = emulator_settings(graph_emulator)
    assert msal_app(settings) is msal_app(settings)
    before = [r for r in graph_emulator.requests_log() if "token" in r["path"]]
    assert access_token(settings) == access_token(settings)
    after = [r for r in graph_emulator.requests_log() if "token" in r["path"]]
    assert len(after) - len(before) <= 1


def test_wrong_secret_is_an_auth_error_without_the_secret(graph_emulator: Any) -> None:
    settings = GraphSettings(
        client_id=graph_emulator.client_id,
        tenant_id=graph_emulator.tenant_id,
        client_secret="not-the-right-secret-42",
        authority_host=graph_emulator.authority_host,
        graph_url=graph_emulator.graph_url,
        ca_bundle=graph_emulator.ca_bundle,
    )
    with pytest.raises(GraphAuthError, match="Entra ID refused a token") as caught:
        access_token(settings)
    assert "not-the-right-secret-42" not in str(caught.value)


def test_emulator_at_a_loopback_graph_url_takes_a_token_for_graph(graph_emulator: Any) -> None:
    settings = emulator_settings(graph_emulator)
    assert settings.graph_url.startswith("https://127.0.0.1:")
    assert settings.token_scope == "https://graph.microsoft.com/.default"
    with GraphClient(settings) as client:
        assert client.get(user_path(ALICE), mailbox=ALICE, params={"$select": "id"})["id"]


def test_a_scope_entra_does_not_know_is_refused_naming_scope_and_fix(graph_emulator: Any) -> None:
    scope = f"{graph_emulator.authority_host}/.default"
    settings = replace(emulator_settings(graph_emulator), scope=scope)
    with pytest.raises(GraphAuthError, match="AADSTS500011") as caught:
        access_token(settings)
    message = str(caught.value)
    assert f"for scope {scope}" in message
    assert "correct or clear the extra scope" in message
    assert caught.value.code == "invalid_resource"


def test_a_token_graph_does_not_accept_names_the_scope_asked_for(graph_emulator: Any) -> None:
    scope = "https://graph.microsoft.us/.default"
    settings = replace(emulator_settings(graph_emulator), scope=scope)
    with (
        GraphClient(settings) as client,
        pytest.raises(GraphPermissionError, match="Invalid audience") as caught,
    ):
        client.get(user_path(ALICE), mailbox=ALICE, params={"$select": "id"})
    assert f"asked for scope {scope}" in str(caught.value)
    assert caught.value.status == 401


def test_app_without_mail_permission_is_told_what_to_grant(graph_emulator: Any) -> None:
    settings = GraphSettings(
        client_id=graph_emulator.nomail_client_id,
        tenant_id=graph_emulator.tenant_id,
        client_secret=graph_emulator.nomail_client_secret,
        authority_host=graph_emulator.authority_host,
        graph_url=graph_emulator.graph_url,
        ca_bundle=graph_emulator.ca_bundle,
    )
    with (
        GraphClient(settings) as client,
        pytest.raises(GraphPermissionError, match=r"grant it Mail\.ReadWrite") as caught,
    ):
        find_folder(client, ALICE, DEFAULT_FOLDER)
    assert caught.value.status == 403 and caught.value.code == "ErrorAccessDenied"
    assert caught.value.request_id


@pytest.mark.parametrize("user", [DAVE, FRANK])  # MailboxNotEnabledForRESTAPI, ResourceNotFound
def test_user_without_mailbox_is_a_typed_error(graph_emulator: Any, user: str) -> None:
    with GraphClient(emulator_settings(graph_emulator)) as client:
        with pytest.raises(MailboxNotFoundError, match=f"no Exchange Online mailbox for {user}"):
            ensure_folder(client, user, DEFAULT_FOLDER)
        with pytest.raises(MailboxNotFoundError):
            find_folder(client, "nobody@contoso.example", DEFAULT_FOLDER)


def test_folder_created_exactly_once_by_16_concurrent_importers(graph_emulator: Any) -> None:
    graph_emulator.set_faults(latency_ms=20, max_concurrent=None)
    settings = emulator_settings(graph_emulator)
    ids: list[str] = []
    clients = [GraphClient(settings) for _ in range(16)]
    barrier = threading.Barrier(16)

    def run(client: GraphClient) -> None:
        barrier.wait()
        ids.append(ensure_folder(client, BOB, DEFAULT_FOLDER))

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in clients:
        client.close()
    assert len(ids) == 16 and len(set(ids)) == 1
    folders = [
        f
        for u in graph_emulator.state()["users"]
        if u["userPrincipalName"] == BOB
        for f in u["folders"]
        if f["displayName"] == "ICE Chat"
    ]
    assert len(folders) == 1
    creates = [r for r in graph_emulator.requests_log() if r["method"] == "POST"]
    assert len(creates) >= 2, "the test must make creators race"


def test_retry_after_holds_every_thread_of_the_mailbox(graph_emulator: Any) -> None:
    graph_emulator.set_faults(window_requests=3, window_seconds=1.0, max_concurrent=None)
    # One request in flight per mailbox, eight threads: a Retry-After told to one must stop all.
    with GraphClient(emulator_settings(graph_emulator), per_mailbox=1) as client:
        path = f"{user_path(ALICE)}/mailFolders/msgfolderroot/childFolders"
        threads = [
            threading.Thread(
                target=client.send, args=(GraphRequest.get(path, {}),), kwargs={"mailbox": ALICE}
            )
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = [r["status"] for r in graph_emulator.requests_log() if "childFolders" in r["path"]]
    assert 429 in statuses and statuses.count(200) == 8
    assert graph_emulator.violations() == []


def _lookups(folder: str, n: int) -> list[GraphRequest]:
    return [
        GraphRequest.get(f"{user_path(ALICE)}/mailFolders/{folder}", {"$select": "id"})
        for _ in range(n)
    ]


def test_batch_retries_throttled_parts_only(graph_emulator: Any) -> None:
    graph_emulator.set_faults(rate_503=0.3, seed=7, retry_after=0)
    with GraphClient(emulator_settings(graph_emulator)) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        outcomes = client.batch(_lookups(folder, 20), mailbox=ALICE)
    assert all(not isinstance(o, Exception) and o.body["id"] == folder for o in outcomes)
    log = graph_emulator.requests_log()
    assert any(r["status"] == 503 for r in log)


def _after_the_budget(graph_emulator: Any, status: int, budget: float) -> GraphUnavailableError:
    """What a folder lookup raises when Graph answers every request with ``status`` for longer
    than a retry budget of ``budget`` seconds."""
    graph_emulator.set_faults(**{f"rate_{status}": 1.0}, retry_after=0)
    policy = RetryPolicy(budget=budget, backoff_base=0.05)
    with (
        GraphClient(emulator_settings(graph_emulator), policy=policy) as client,
        pytest.raises(GraphUnavailableError) as caught,
    ):
        find_folder(client, ALICE, DEFAULT_FOLDER)
    return caught.value


def test_retry_budget_runs_out_as_a_typed_error(graph_emulator: Any) -> None:
    error = _after_the_budget(graph_emulator, 503, budget=0.3)
    assert "retry budget ran out" in str(error)
    assert error.status == 503


def test_no_secret_or_token_in_logs(
    graph_emulator: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = emulator_settings(graph_emulator)
    with GraphClient(settings) as client:
        ensure_folder(client, ALICE, DEFAULT_FOLDER)
        token = access_token(settings)
    out = capsys.readouterr()
    text = caplog.text + out.out + out.err
    assert caplog.records, "logging must have been captured"
    assert graph_emulator.client_secret not in text
    assert token not in text
    assert token.split(".")[-1] not in text


def test_batch_of_twenty_runs_as_graph_allows_four_parts_at_a_time(graph_emulator: Any) -> None:
    graph_emulator.set_faults(latency_ms=20)
    with GraphClient(emulator_settings(graph_emulator)) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        creates = [create_request(ALICE, folder, archived_message(f"k{n}", n)) for n in range(20)]
        outcomes = client.batch(creates, mailbox=ALICE)
    assert [o.status for o in outcomes if isinstance(o, GraphResponse)] == [201] * 20
    assert graph_emulator.message_count(ALICE) == 20
    assert graph_emulator.peak_concurrency()[ALICE] == 4


def test_below_four_per_mailbox_a_batch_is_sequential_and_holds_one_slot(
    graph_emulator: Any,
) -> None:
    graph_emulator.set_faults(latency_ms=20)
    with GraphClient(emulator_settings(graph_emulator), per_mailbox=1) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        outcomes = client.batch(_lookups(folder, 8), mailbox=ALICE)
    assert all(isinstance(o, GraphResponse) and o.body["id"] == folder for o in outcomes)
    assert graph_emulator.peak_concurrency()[ALICE] == 1


def test_every_batch_part_asks_for_immutable_ids(graph_emulator: Any) -> None:
    with GraphClient(emulator_settings(graph_emulator)) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        creates = [create_request(ALICE, folder, archived_message(f"i{n}", n)) for n in range(3)]
        created = client.batch(creates, mailbox=ALICE)
        found = client.batch(
            [lookup_request(ALICE, folder, f"i{n}") for n in range(3)], mailbox=ALICE
        )
    stored = {m["internetMessageId"]: m["id"] for m in graph_emulator.messages(ALICE)}
    expected = [stored[message_id_for(f"i{n}")] for n in range(3)]
    assert [o.body["id"] for o in created if isinstance(o, GraphResponse)] == expected
    assert [found_id(o) for o in found if isinstance(o, GraphResponse)] == expected


@pytest.mark.parametrize("status", [500, 502])
def test_500_and_502_are_retried_like_503(graph_emulator: Any, status: int) -> None:
    graph_emulator.set_faults(**{f"rate_{status}": 0.6}, seed=4, retry_after=0)
    policy = RetryPolicy(backoff_base=0.01)
    with GraphClient(emulator_settings(graph_emulator), policy=policy) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        assert find_folder(client, ALICE, DEFAULT_FOLDER) == folder
    statuses = [r["status"] for r in graph_emulator.requests_log() if r["mailbox"] == ALICE]
    assert status in statuses


def test_500_past_the_budget_is_unavailable_not_a_bad_request(graph_emulator: Any) -> None:
    error = _after_the_budget(graph_emulator, 500, budget=0.2)
    assert "re-run the task later" in str(error)
    assert error.status == 500


def test_retry_after_of_a_batch_part_holds_the_mailbox_even_when_the_caller_gives_up(
    graph_emulator: Any,
) -> None:
    with GraphClient(emulator_settings(graph_emulator)) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        graph_emulator.set_faults(window_requests=2, window_seconds=1)
        no_retries = GraphClient(emulator_settings(graph_emulator), policy=RetryPolicy(budget=0))
        with no_retries:
            outcomes = no_retries.batch(_lookups(folder, 3), mailbox=ALICE)
            assert sum(isinstance(o, GraphUnavailableError) for o in outcomes) == 1
            assert no_retries.gate(ALICE).wait_left() > 0
            graph_emulator.set_faults(window_requests=None)
            assert find_folder(no_retries, ALICE, DEFAULT_FOLDER) == folder
    assert graph_emulator.violations() == []


def test_a_batch_over_four_megabytes_of_utf8_is_not_sent(graph_emulator: Any) -> None:
    with GraphClient(emulator_settings(graph_emulator)) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        # 2 x 0.8 million CJK characters: 1.6 M characters, 4.8 MB as UTF-8.
        big = [
            create_request(
                ALICE,
                folder,
                archived_message(f"c{n}", n)
                | {"body": {"contentType": "text", "content": "漢" * 800_000}},
            )
            for n in range(2)
        ]
        assert batch_bytes(big) > REQUEST_LIMIT
        before = len(graph_emulator.requests_log())
        with pytest.raises(ValueError, match="bytes; Graph accepts"):
            client.batch(big, mailbox=ALICE)
    assert len(graph_emulator.requests_log()) == before


@pytest.mark.parametrize(
    ("target", "status"),
    [("messages", 400), ("mailFolders", 413)],
    ids=["message-create-400", "other-413"],
)
def test_a_request_graph_finds_too_large_fails_at_once_saying_so(
    graph_emulator: Any, target: str, status: int
) -> None:
    """Graph answers a body over 4 MB with 400 or 413: a permanent failure, not retried."""
    text = "漢" * 1_500_000  # 4.5 MB of UTF-8
    with GraphClient(emulator_settings(graph_emulator)) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        request = (
            create_request(ALICE, folder, archived_message("big", 1) | {"body": {"content": text}})
            if target == "messages"
            else GraphRequest("POST", f"{user_path(ALICE)}/mailFolders", {"displayName": text})
        )
        before = len(graph_emulator.requests_log())
        with pytest.raises(GraphRequestError, match="4 ?MB") as caught:
            client.send(request, mailbox=ALICE)
    assert caught.value.status == status
    assert str(caught.value).startswith(f"Graph rejected POST {request.path}")
    assert [r["status"] for r in graph_emulator.requests_log()[before:]] == [status]


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_mailbox_gets_at_most_its_requests_in_any_window() -> None:
    fake = FakeTime()
    gate = MailboxGate(4, fake.clock, fake.sleep, RequestWindow(5, 10.0))
    sent: list[float] = []
    for _ in range(12):
        with gate.slot():
            sent.append(fake.now)
            fake.now += 0.5  # the answer comes back half a second later
    assert fake.sleeps, "the sixth request must wait for the first to age out"
    for start in sent:
        assert sum(start <= t < start + 10.0 for t in sent) <= 5
    # A request counts until a window after its answer: the sixth goes at 0.5 + 10.
    assert sent[5] == pytest.approx(10.5)


def test_a_batch_takes_a_turn_per_part() -> None:
    fake = FakeTime()
    gate = MailboxGate(4, fake.clock, fake.sleep, RequestWindow(30, 60.0))
    with gate.slot(cost=4, turns=20):
        pass
    with gate.slot(cost=4, turns=20):  # 20 + 20 > 30: waits for the first batch to age out
        assert fake.now == pytest.approx(60.0)
    assert fake.sleeps == [pytest.approx(60.0)]


def test_turns_in_flight_count_until_answered() -> None:
    window = RequestWindow(2, 10.0)
    assert window.reserve(2, 0.0) == 0.0
    assert window.reserve(1, 1.0) is None  # only an answer can free a turn
    window.answered(2, 3.0)
    assert window.reserve(1, 4.0) == pytest.approx(9.0)
    assert window.reserve(1, 13.0) == 0.0


def test_client_paced_to_the_window_gets_no_429(graph_emulator: Any) -> None:
    graph_emulator.set_faults(window_requests=4, window_seconds=1.0)
    settings = replace(
        emulator_settings(graph_emulator), mailbox_requests=4, mailbox_window_seconds=1.0
    )
    path = f"{user_path(ALICE)}/mailFolders/msgfolderroot/childFolders"
    with GraphClient(settings) as client:
        threads = [
            threading.Thread(
                target=client.send, args=(GraphRequest.get(path, {}),), kwargs={"mailbox": ALICE}
            )
            for _ in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = [r["status"] for r in graph_emulator.requests_log() if "childFolders" in r["path"]]
    assert statuses == [200] * 10
    assert graph_emulator.violations() == []


def test_a_token_shorter_than_the_wait_is_taken_when_the_request_goes(graph_emulator: Any) -> None:
    # Tokens live 2 s; the pace makes requests wait about 2.5 s: a token taken before the
    # wait would have expired when it reached Graph.
    graph_emulator.set_faults(token_lifetime_s=2, window_requests=3, window_seconds=2.5)
    settings = replace(
        emulator_settings(graph_emulator), mailbox_requests=3, mailbox_window_seconds=2.5
    )
    with GraphClient(settings) as client:
        folder = ensure_folder(client, ALICE, DEFAULT_FOLDER)
        for n in range(5):
            payload = archived_message(f"short-token-{n}", n)
            assert client.send(create_request(ALICE, folder, payload), mailbox=ALICE).ok
    graph = [r for r in graph_emulator.requests_log() if r["path"].startswith("/v1.0/users")]
    assert len(graph) >= 7
    assert graph[-1]["time"] - graph[0]["time"] > 4.0, "the import must outlive tokens"
    assert {r["status"] for r in graph} <= {200, 201}
    assert graph_emulator.message_count(ALICE) == 5
