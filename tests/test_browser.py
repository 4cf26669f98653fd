"""Browser tests: an operator drives Airflow's own UI in Chromium, against the real services.

One Airflow (scheduler, dag-processor, triggerer, API server on a fresh Postgres database,
as in the system test: the DAG starts paused and is unpaused, no pool) serves the whole
module, with a real login: the operator signs in through the UI, triggers a day from the
Trigger form, backfills two days from the backfill dialog, reads a failed task's log, opens
the ICE Chat page, a run's report tab and the ledger search, and tests the Graph connection
from its form. Each test keeps a
screenshot in ``artifacts/screenshots/`` (CI keeps that folder). The tests share the
module's Airflow and run in file order; each waits for what it started.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; .ci/run installs it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect, sync_playwright

from icechat.dev.sample import own_people, write_day
from icechat.dev.sftpd import free_port
from icechat.ice.parser import read_part
from tests.support.airflow_env import (
    REPO,
    airflow_env,
    graph_connection,
    pgp_connection,
)
from tests.support.airflow_stack import (
    AirflowStack,
    airflow_services,
    login_env,
    postgres_database,
    service_env,
)
from tests.support.fixtures.graph_emulator import GraphEmulatorHandle, running_emulator
from tests.support.fixtures.sftp_server import running_sftp

pytestmark = pytest.mark.system

DAG = "icechat_archive"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
USER, PASSWORD = "operator", "operator-password-for-tests"
TODAY = datetime.now(UTC).date()
# Past days: triggered, backfilled (two), a gap nobody ran, encrypted to the wrong key.
TRIGGERED, BACKFILL_FROM, BACKFILL_TO, GAP, WRONG_KEY = (
    TODAY - timedelta(days=n) for n in (6, 5, 4, 3, 2)
)
MESSAGES = 30
TIMEOUT_MS = 30_000  # for every action and expectation: the machine may be busy
expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class World:
    """The running Airflow, the servers behind it, and what the tests read back."""

    stack: AirflowStack
    graph: GraphEmulatorHandle
    data: Path
    message_id: str  # of TRIGGERED, with a participant who has a mailbox: for the search


def _message_to(part: Path, mailboxes: set[str]) -> str:
    """The MessageID of the part's first chat item with a participant in ``mailboxes``."""
    with read_part(part) as items:
        for item in items.items():
            if any(p.email in mailboxes for p in item.participants):
                return item.message_id
    raise AssertionError(f"no chat item in {part} reaches {mailboxes}")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    ssh_client_key: Path,
    pgp_keypair: Any,
    other_pgp_keypair: Any,
    graph_emulator_material: Any,
) -> Iterator[World]:
    """The sample days on a test SFTP site, the Graph emulator and Airflow with a login."""
    root = tmp_path_factory.mktemp("browser")
    with (
        running_sftp(root / "sftp", ssh_client_key) as sftp,
        running_emulator(root / "graph-emulator", graph_emulator_material) as graph,
    ):
        firm, site = sftp.username, sftp.served
        mailboxes: dict[str, str] = {}
        for day in (TRIGGERED, BACKFILL_FROM, BACKFILL_TO):
            plain = write_day(root / "plain" / str(day), firm, day, MESSAGES, packaging="zip")
            people = own_people(firm, [day], MESSAGES)
            chosen = {e: people[e] for e in sorted(people)[:2]}
            mailboxes.update(chosen)
            if day == TRIGGERED:
                message_id = _message_to(plain.paths[0], set(chosen))
            public = pgp_keypair.public_file
            write_day(site, firm, day, MESSAGES, packaging="zip", encrypt_to=public, marker=True)
        public = other_pgp_keypair.public_file
        write_day(site, firm, WRONG_KEY, 10, encrypt_to=public, marker=True)
        graph.add_users([{"userPrincipalName": e, "displayName": n} for e, n in mailboxes.items()])

        home, data = root / "airflow", root / "data"
        base = airflow_env(
            home,
            data,
            icechat_sftp=sftp.connection(),
            icechat_pgp=pgp_connection(pgp_keypair),
            icechat_graph=graph_connection(graph),
        )
        base["AIRFLOW_VAR_ICECHAT_REMOTE_DIR"] = sftp.remote_dir
        base["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
        port = free_port()
        with postgres_database("icechat_ui") as database:
            env = login_env(service_env(base, database, port), home, USER, PASSWORD)
            with airflow_services(env, home, port) as stack:
                stack.login(USER, PASSWORD)
                stack.wait_until_ready(DAG)
                # As an operator does first: the DAG starts paused. Its scheduled run for
                # yesterday (no export on the site) waits beside the tests' runs; no pool
                # is needed and no icechat_go_live is set, so no day is caught up.
                stack.api("PATCH", f"/dags/{DAG}", json={"is_paused": False})
                yield World(stack, graph, data, message_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"the browser tests need {CHROMIUM}: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def signed_in(browser: Browser, world: World) -> dict[str, Any]:
    """The browser state of the operator, signed in through Airflow's login page."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(world.stack.base_url + "/")
    expect(page).to_have_url(re.compile(r"/auth/login"), timeout=TIMEOUT_MS)
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="ICE Chat")).to_be_visible(timeout=TIMEOUT_MS)
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(
    browser: Browser, signed_in: dict[str, Any], request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A signed-in page; its last view is kept as ``artifacts/screenshots/{test}.png``."""
    context = browser.new_context(
        storage_state=signed_in,  # type: ignore[arg-type]
        viewport={"width": 1400, "height": 1000},
    )
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"))
        context.close()


def runs(world: World, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = world.stack.api("GET", f"/dags/{DAG}/dagRuns", params=params)[
        "dag_runs"
    ]
    return found


def run_for_day(world: World, day: date) -> dict[str, Any]:
    """The run that processed ``day`` (its param, else its logical date)."""
    for run in runs(world):
        given = (run.get("conf") or {}).get("day")
        if given == str(day) or (not given and (run["logical_date"] or "")[:10] == str(day)):
            return run
    raise AssertionError(f"no run for {day}: {[r['dag_run_id'] for r in runs(world)]}")


def succeeded(world: World, run_id: str) -> None:
    run = world.stack.wait_for_run(DAG, run_id)
    assert run["state"] == "success", world.stack.task_states(DAG, run_id)


def report(world: World, day: date) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((world.data / "reports" / f"{day}.json").read_text())
    assert found["balanced"] is True and found["failed"] == 0
    return found


def open_trigger_dialog(page: Page, world: World) -> Locator:
    """The DAG's Trigger dialog (a modal; its date pickers are popovers, also role=dialog)."""
    page.goto(f"{world.stack.base_url}/dags/{DAG}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.locator("[role=dialog][data-scope=dialog]")
    expect(dialog).to_contain_text(f"Dag - {DAG}")
    return dialog


def test_trigger_a_day_from_the_trigger_form(page: Page, world: World) -> None:
    dialog = open_trigger_dialog(page, world)
    dialog.locator("#element_day").fill(str(TRIGGERED))
    dialog.get_by_role("button", name="Trigger").click()
    expect(dialog).to_be_hidden()
    run = run_for_day(world, TRIGGERED)
    assert run["run_type"] == "manual"
    succeeded(world, run["dag_run_id"])
    assert report(world, TRIGGERED)["imported"] > 0
    page.goto(f"{world.stack.base_url}/dags/{DAG}/runs/{quote(run['dag_run_id'])}")
    expect(page.get_by_text("Success").first).to_be_visible()


def test_backfill_two_days_from_the_backfill_dialog(page: Page, world: World) -> None:
    dialog = open_trigger_dialog(page, world)
    dialog.get_by_text("Backfill", exact=True).click()
    for n, day in enumerate((BACKFILL_FROM, BACKFILL_TO)):
        dialog.get_by_test_id("datetime-input").nth(n).click()
        picker = page.locator("[role=dialog][data-scope=popover][data-state=open]")
        picker.get_by_placeholder("YYYY/MM/DD").fill(day.strftime("%Y/%m/%d"))
        picker.get_by_placeholder("HH:mm").fill("00:00")
        page.keyboard.press("Escape")
    expect(dialog).to_contain_text("2 runs will be triggered")
    dialog.get_by_role("button", name="Run Backfill").click()
    expect(dialog).to_be_hidden(timeout=60_000)
    backfilled = runs(world, run_type="backfill")
    assert sorted(r["logical_date"][:10] for r in backfilled) == [
        str(BACKFILL_FROM),
        str(BACKFILL_TO),
    ]
    for run in backfilled:
        succeeded(world, run["dag_run_id"])
    for day in (BACKFILL_FROM, BACKFILL_TO):
        assert report(world, day)["items"] == MESSAGES
    page.goto(f"{world.stack.base_url}/dags/{DAG}/backfills")
    expect(page.get_by_text(str(BACKFILL_FROM)).first).to_be_visible()


def test_a_failed_tasks_log_says_what_to_do(page: Page, world: World) -> None:
    run = world.stack.api(
        "POST", f"/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": {"day": str(WRONG_KEY)}}
    )
    assert world.stack.wait_for_run(DAG, run["dag_run_id"])["state"] == "failed"
    assert world.stack.task_states(DAG, run["dag_run_id"])["decrypt"] == "failed"
    page.goto(f"{world.stack.base_url}/dags/{DAG}/runs/{quote(run['dag_run_id'])}/tasks/decrypt")
    advice = page.get_by_text("ask ICE to encrypt to the public key you sent them").first
    expect(advice).to_be_visible(timeout=60_000)
    advice.scroll_into_view_if_needed()


def ice_chat_frame(page: Page, name: str = "ICE Chat") -> FrameLocator:
    return page.frame_locator(f"iframe[title='{name}']")


def test_ice_chat_page_lists_the_days_with_their_figures_and_the_gaps(
    page: Page, world: World
) -> None:
    page.goto(world.stack.base_url + "/")
    page.get_by_role("link", name="ICE Chat").click()
    frame = ice_chat_frame(page)
    expect(frame.locator("h1")).to_have_text("ICE Chat archive, day by day")
    for day in (TRIGGERED, BACKFILL_FROM, BACKFILL_TO):
        figures = report(world, day)
        keys = ("items", "copies", "imported", "already_present", "not_mapped", "failed")
        cells = [str(day), "archived and balanced", *(str(figures[k]) for k in keys), "report"]
        run_id = run_for_day(world, day)["dag_run_id"]
        expect(frame.locator(f"tr[data-day='{day}'] td")).to_have_text([*cells, run_id])
    expect(frame.locator(f"tr[data-day='{WRONG_KEY}']")).to_contain_text("failed")
    expect(frame.locator(f"tr[data-day='{GAP}']")).to_contain_text("never run")
    expect(frame.locator("#gaps")).to_contain_text(str(GAP))
    frame.locator(f"tr[data-day='{TRIGGERED}']").get_by_role("link", name="report").click()
    expect(frame.locator("#verdict")).to_contain_text(
        f"Balanced: all {report(world, TRIGGERED)['copies']} copies of {MESSAGES} chat items"
    )
    frame.get_by_role("link", name="all days").click()
    expect(frame.locator("#tally")).to_be_visible()


def test_a_runs_report_tab_shows_the_days_figures(page: Page, world: World) -> None:
    run_id = run_for_day(world, BACKFILL_FROM)["dag_run_id"]
    page.goto(f"{world.stack.base_url}/dags/{DAG}/runs/{quote(run_id)}")
    page.get_by_text("ICE Chat report", exact=True).click()
    frame = ice_chat_frame(page, "ICE Chat report")
    figures = report(world, BACKFILL_FROM)
    expect(frame.locator("#note")).to_have_text(
        f"Run {run_id} processed {BACKFILL_FROM} and wrote this report."
    )
    for label, key in (("copies", "copies"), ("imported (by this run)", "imported")):
        row = frame.locator("#counts").get_by_role("row", name=f"{label} {figures[key]}")
        expect(row).to_be_visible()


def test_the_search_says_where_each_copy_of_a_chat_item_went(page: Page, world: World) -> None:
    page.goto(world.stack.base_url + "/plugin/icechat")
    frame = ice_chat_frame(page)
    frame.get_by_placeholder("MessageID, ImId or mailbox").fill(world.message_id)
    frame.get_by_role("button", name="Where did it go?").click()
    expect(frame.locator("#summary")).to_contain_text(f"for {world.message_id}")
    done = frame.locator("#hits tr").filter(has_text="done")
    expect(done.first).to_contain_text(str(TRIGGERED))
    expect(done.first.locator("code")).to_have_text(re.compile(r"\S{20,}"))  # the Graph id
    states = {t.strip() for t in frame.locator("#hits td.state").all_inner_texts()}
    assert states <= {"done", "not_mapped"}


def test_the_graph_connection_form_tests_the_connection(page: Page, world: World) -> None:
    graph, conn_id = world.graph, "icechat_graph_from_ui"
    page.goto(world.stack.base_url + "/connections")
    page.get_by_role("button", name=re.compile("Add Connection")).click()
    dialog = page.locator("[role=dialog][data-scope=dialog]")
    dialog.get_by_label("Connection ID").fill(conn_id)
    dialog.get_by_role("combobox").fill("ICE Chat: Microsoft Graph")
    page.keyboard.press("Enter")
    dialog.get_by_label("Application (client) ID").fill(graph.client_id)
    dialog.get_by_label("Client secret").fill(graph.client_secret)
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for field, value in (
        ("tenant_id", graph.tenant_id),
        ("authority_host", graph.authority_host),
        ("graph_url", graph.graph_url),
        ("ca_bundle", graph.ca_bundle),
    ):
        dialog.locator(f"#element_{field}").fill(value)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    saved = world.stack.api("GET", f"/connections/{conn_id}")
    assert saved["conn_type"] == "icechat_graph" and graph.client_secret not in json.dumps(saved)
    # Airflow tests the stored connection (the list holds no secret): see connection_test.py.
    row = page.get_by_role("row").filter(has_text=conn_id)
    row.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Test Connection Successful")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("got a token, read the directory and the mailbox of")).to_be_visible()


ENDPOINTS = (
    "/icechat/days",
    f"/icechat/reports/{TRIGGERED}",
    f"/icechat/runs/{DAG}/some-run",
    "/icechat/search?q=M-1",
    "/icechat/icon.svg",
)


def test_every_ice_chat_endpoint_refuses_anonymous_requests(world: World) -> None:
    anonymous = requests.Session()
    anonymous.trust_env = False
    for path in ENDPOINTS:
        answer = anonymous.get(world.stack.base_url + path, timeout=30)
        assert answer.status_code == 401, (path, answer.status_code)
        forged = anonymous.get(
            world.stack.base_url + path, cookies={"_token": "not-a-token"}, timeout=30
        )
        assert forged.status_code in (401, 403), (path, forged.status_code)
        signed = world.stack.http.get(world.stack.base_url + path, timeout=30)
        assert signed.status_code in (200, 404), (path, signed.status_code, signed.text[:300])
        assert "PRIVATE KEY" not in signed.text
