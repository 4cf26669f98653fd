"""Throttling, faults, the request log and its Retry-After violations, state, export, CLI."""

from __future__ import annotations

import email
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests

from tests.support.emulator_calls import chat_message, make_folder
from tests.support.fixtures.graph_emulator import ALICE, BOB, GraphEmulatorHandle
from tests.support.paths import PLUGINS


def _post(emu: GraphEmulatorHandle, folder_id: str, key: str) -> requests.Response:
    return emu.graph(
        "POST", f"/users/{ALICE}/mailFolders/{folder_id}/messages", json=chat_message(key)
    )


def test_fifth_concurrent_request_to_a_mailbox_gets_429_with_retry_after(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(latency_ms=400, retry_after=2)
    token = graph_emulator.token()
    results: list[requests.Response] = []
    start = threading.Barrier(6)

    def call(key: str) -> None:
        with graph_emulator.session() as session:
            start.wait()
            results.append(
                session.post(
                    f"{graph_emulator.graph_url}/users/{ALICE}/mailFolders/{folder_id}/messages",
                    json=chat_message(key),
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
            )

    threads = [threading.Thread(target=call, args=(f"c{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    throttled = [r for r in results if r.status_code == 429]
    assert len([r for r in results if r.status_code == 201]) == 4
    assert len(throttled) == 2
    assert all(r.headers["Retry-After"] == "2" for r in throttled)
    assert throttled[0].json()["error"]["code"] == "ApplicationThrottled"
    assert graph_emulator.message_count(ALICE) == 4
    other_mailbox = graph_emulator.graph("GET", f"/users/{BOB}/mailFolders")
    assert other_mailbox.status_code == 200


def test_window_limit_throttles_and_recovers(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(window_requests=2, window_seconds=1)
    statuses = [_post(graph_emulator, folder_id, f"w{i}").status_code for i in range(3)]
    assert statuses == [201, 201, 429]
    time.sleep(1.05)
    assert _post(graph_emulator, folder_id, "w3").status_code == 201


def test_window_slides_so_no_stretch_of_it_holds_more(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(window_requests=2, window_seconds=1)
    assert _post(graph_emulator, folder_id, "s0").status_code == 201
    time.sleep(0.6)
    assert _post(graph_emulator, folder_id, "s1").status_code == 201
    time.sleep(0.6)
    # A window counted from the first request would have restarted and taken two more; the
    # last second holds s1, so only one more fits.
    assert _post(graph_emulator, folder_id, "s2").status_code == 201
    refused = _post(graph_emulator, folder_id, "s3")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert graph_emulator.message_count(ALICE) == 3


def test_503_fault_stores_nothing(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(rate_503=1.0)
    response = _post(graph_emulator, folder_id, "x")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ServiceUnavailable"
    assert "Retry-After" in response.headers
    assert graph_emulator.message_count(ALICE) == 0


@pytest.mark.parametrize(
    ("rate", "status", "code"),
    [("rate_500", 500, "InternalServerError"), ("rate_502", 502, "BadGateway")],
)
def test_500_and_502_faults_store_nothing(
    graph_emulator: GraphEmulatorHandle, rate: str, status: int, code: str
) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(**{rate: 1.0})
    response = _post(graph_emulator, folder_id, "x")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert graph_emulator.message_count(ALICE) == 0


def test_upload_bytes_per_window_throttle_writes_of_that_mailbox_only(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    alice_folder = make_folder(graph_emulator)
    bob_folder = make_folder(graph_emulator, BOB)
    size = len(json.dumps(chat_message("u0")).encode())
    graph_emulator.set_faults(upload_bytes=2 * size + 10, upload_seconds=60)
    statuses = [_post(graph_emulator, alice_folder, f"u{i}").status_code for i in range(2)]
    refused = _post(graph_emulator, alice_folder, "u2")
    assert statuses == [201, 201] and refused.status_code == 429
    assert refused.json()["error"]["message"] == "Application is over its IncomingBytes limit."
    assert 50 < int(refused.headers["Retry-After"]) <= 60
    assert graph_emulator.message_count(ALICE) == 2
    assert graph_emulator.graph("GET", f"/users/{ALICE}/mailFolders").status_code == 200
    to_bob = graph_emulator.graph(
        "POST", f"/users/{BOB}/mailFolders/{bob_folder}/messages", json=chat_message("b")
    )
    assert to_bob.status_code == 201


def test_429_after_success_has_stored_the_message(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(rate_429_after_success=1.0, retry_after=0)
    response = _post(graph_emulator, folder_id, "stored")
    assert response.status_code == 429
    assert graph_emulator.message_count(ALICE) == 1
    found = graph_emulator.graph(
        "GET",
        f"/users/{ALICE}/mailFolders/{folder_id}/messages",
        params={"$filter": "internetMessageId eq '<stored@icechat-archiver.invalid>'"},
    )
    assert len(found.json()["value"]) == 1


def test_seeded_faults_repeat(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)

    def run() -> list[int]:
        graph_emulator.set_faults(rate_503=0.5, seed=7, retry_after=0)
        return [_post(graph_emulator, folder_id, f"s{i}").status_code for i in range(12)]

    first = run()
    assert run() == first
    assert {201, 503} == set(first)


def test_retry_before_retry_after_is_flagged_and_waiting_is_not(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(rate_503=1.0, retry_after=1)
    assert _post(graph_emulator, folder_id, "v").status_code == 503
    graph_emulator.set_faults(rate_503=0.0)
    assert _post(graph_emulator, folder_id, "v").status_code == 201  # too early
    violations = graph_emulator.violations()
    assert len(violations) == 1
    assert violations[0]["mailbox"] == ALICE
    assert violations[0]["client"] == graph_emulator.client_id
    assert 0 < violations[0]["early_by_s"] <= 1
    log = graph_emulator.requests_log()
    assert [r["violation"] for r in log if r["mailbox"] == ALICE][-2:] == [False, True]

    time.sleep(1.05)
    assert _post(graph_emulator, folder_id, "w").status_code == 201
    assert graph_emulator.graph("GET", f"/users/{BOB}/mailFolders").status_code == 200
    assert len(graph_emulator.violations()) == 1


def test_429_inside_batch_carries_retry_after_and_is_recorded(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    graph_emulator.set_faults(window_requests=2, window_seconds=30)
    url = f"/users/{ALICE}/mailFolders/{folder_id}/messages"
    batch = {
        "requests": [
            {
                "id": str(i),
                "method": "POST",
                "url": url,
                "headers": {"Content-Type": "application/json"},
                "body": chat_message(f"q{i}"),
            }
            for i in range(3)
        ]
    }
    responses = graph_emulator.graph("POST", "/$batch", json=batch).json()["responses"]
    assert sorted(r["status"] for r in responses) == [201, 201, 429]
    (throttled,) = [r for r in responses if r["status"] == 429]
    assert int(throttled["headers"]["Retry-After"]) > 0
    assert graph_emulator.violations() == []  # siblings in one batch are not retries
    graph_emulator.graph("POST", "/$batch", json=batch)
    assert len(graph_emulator.violations()) == 3


def test_retry_after_in_a_batch_runs_from_the_batch_answer(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    """A request sent before the batch answered cannot have ignored its Retry-After."""
    graph_emulator.set_faults(window_requests=1, window_seconds=30, retry_after=2)
    alice = f"/users/{ALICE}/mailFolders/inbox"
    parts = [{"id": "0", "method": "GET", "url": alice}, {"id": "1", "method": "GET", "url": alice}]
    # Parts for Bob keep the batch open after Alice's 429 is decided.
    parts += [
        {"id": str(n), "method": "GET", "url": f"/users/{BOB}/mailFolders/inbox"}
        for n in range(2, 10)
    ]
    graph_emulator.set_faults(latency_ms=150)
    batch = threading.Thread(
        target=graph_emulator.graph, args=("POST", "/$batch"), kwargs={"json": {"requests": parts}}
    )
    batch.start()
    recorder = graph_emulator.emulator.recorder
    for _ in range(1000):  # poll until Alice's 429 is decided, inside the running batch
        if any(r["status"] == 429 for r in recorder.records()):
            break
        time.sleep(0.01)
    assert batch.is_alive()
    graph_emulator.graph("GET", alice)  # the client has not seen the 429 yet
    batch.join()
    assert graph_emulator.violations() == []
    graph_emulator.graph("GET", alice)  # now it has, and 2 s have not passed
    (violation,) = graph_emulator.violations()
    assert violation["mailbox"] == ALICE and violation["early_by_s"] > 1


def test_state_survives_restart(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    assert _post(graph_emulator, folder_id, "keep").status_code == 201
    token = graph_emulator.token()
    graph_emulator.restart()
    assert graph_emulator.message_count(ALICE) == 1
    with graph_emulator.session() as session:
        response = session.get(
            f"{graph_emulator.graph_url}/users/{ALICE}/mailFolders/{folder_id}/messages",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    assert response.status_code == 200  # tokens outlive a restart, as Entra ID's do
    assert [m["internetMessageId"] for m in response.json()["value"]] == [
        "<keep@icechat-archiver.invalid>"
    ]


def test_eml_export_of_a_folder(graph_emulator: GraphEmulatorHandle) -> None:
    folder_id = make_folder(graph_emulator)
    for key in ("e1", "e2"):
        _post(graph_emulator, folder_id, key)
    with zipfile.ZipFile(io.BytesIO(graph_emulator.eml_zip(ALICE))) as archive:
        names = archive.namelist()
        first = email.message_from_bytes(archive.read(names[0]))
    assert len(names) == 2
    assert first["Message-ID"] == "<e1@icechat-archiver.invalid>"
    assert first["From"] == f"Bob Jones <{BOB}>"
    assert first["Date"] == "Thu, 26 Nov 2026 09:29:59 +0000"


def test_state_shows_messages_and_reset_empties_mailboxes(
    graph_emulator: GraphEmulatorHandle,
) -> None:
    folder_id = make_folder(graph_emulator)
    _post(graph_emulator, folder_id, "s")
    messages = graph_emulator.messages(ALICE)
    assert [m["internetMessageId"] for m in messages] == ["<s@icechat-archiver.invalid>"]
    assert graph_emulator.client_secret not in json.dumps(graph_emulator.state())
    with graph_emulator.session() as session:
        session.post(f"{graph_emulator.authority_host}/_emulator/reset", timeout=10)
    assert graph_emulator.message_count(ALICE) == 0
    assert graph_emulator.requests_log() == []


def test_cli_serves_until_terminated(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text(
        json.dumps(
            {"users": [{"userPrincipalName": ALICE}], "apps": [{"client_id": "c1", "secret": "s"}]}
        )
    )
    env = dict(os.environ, PYTHONPATH=str(PLUGINS))
    env["ICECHAT_GRAPH_EMULATOR_FAULTS"] = json.dumps({"rate_503": 0.1, "latency_ms": 5})
    command = [sys.executable, "-m", "icechat", "graph-emulator", "--port", "0"]
    command += ["--users", str(users), "--state", str(tmp_path / "state"), "--rate-503", "0.5"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        with requests.Session() as session:
            session.trust_env = False
            session.verify = info["ca_bundle"]
            config = session.get(f"{info['admin']}/config", timeout=10).json()
            state = session.get(f"{info['admin']}/state", timeout=10).json()
        assert (config["rate_503"], config["latency_ms"]) == (0.5, 5)
        assert [u["userPrincipalName"] for u in state["users"]] == [ALICE]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_cli_rejects_a_bad_users_file(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text(json.dumps([{"mail": "no-upn@contoso.example"}]))
    env = dict(os.environ, PYTHONPATH=str(PLUGINS))
    command = [sys.executable, "-m", "icechat", "graph-emulator", "--port", "0"]
    command += ["--users", str(users), "--state", str(tmp_path / "state")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 1
    assert "users[0] needs a 'userPrincipalName'" in result.stderr
    assert str(users) in result.stderr
