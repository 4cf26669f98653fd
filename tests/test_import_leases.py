"""Days importing into the same mailboxes at once stay within Graph's 4 requests per mailbox."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from icechat import importer as importer_module
from icechat.graph.client import GraphClient
from icechat.importer import Importer, ImportResult, Status
from icechat.leases import MailboxLeases
from icechat.ledger import Ledger
from tests.support import import_worker
from tests.support.fixtures.graph_emulator import ALICE, BOB, ERIN
from tests.support.graph_import_helpers import assert_exactly_once, copies, emulator_settings

MAILBOXES = [ALICE, BOB, ERIN]
PER_MAILBOX = 120


def test_two_days_in_two_processes_share_each_mailboxs_four_requests(
    graph_emulator: Any, ledger_target: tuple[str, str | None]
) -> None:
    graph_emulator.set_faults(latency_ms=30)
    url, schema = ledger_target
    Ledger(url, schema=schema).close()  # the schema exists before the two race
    settings = emulator_settings(graph_emulator)
    base = {
        "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
        "ledger": url,
        "schema": schema,
        "mailboxes": MAILBOXES,
        "per_mailbox": PER_MAILBOX,
        "batch": True,
    }
    days = [
        import_worker.start({**base, "run_id": f"scheduled__{day}", "attempt": 0, "prefix": day})
        for day in ("2026-11-25", "2026-11-26")
    ]
    for proc in days:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out.splitlines()[-1]) == {"imported": PER_MAILBOX * len(MAILBOXES)}
    assert_exactly_once(graph_emulator, dict.fromkeys(MAILBOXES, 2 * PER_MAILBOX))
    peaks = graph_emulator.peak_concurrency()
    assert set(peaks) >= set(MAILBOXES)
    assert max(peaks.values()) <= 4, peaks
    refused = [r for r in graph_emulator.requests_log() if r["status"] == 429]
    assert refused == [], "no request was over the mailbox's limit"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


def test_a_mailbox_leased_elsewhere_waits_while_the_others_are_imported(
    graph_emulator: Any, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    other_day = MailboxLeases(ledger, "import scheduled__2026-11-25 attempt 0")
    assert other_day.acquire([ALICE])
    done: list[ImportResult] = []
    caplog.set_level(logging.INFO, logger="icechat.importer")

    def run() -> None:
        with GraphClient(emulator_settings(graph_emulator)) as client:
            importer = Importer(client, ledger, run_id="manual__2026-11-26", lease_retry=0.05)
            done.append(importer.run(copies([ALICE, BOB, ERIN], 30)))

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while graph_emulator.message_count(BOB) + graph_emulator.message_count(ERIN) < 60:
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.05)
    time.sleep(0.3)  # a few more tries at Alice's lease, all refused
    assert graph_emulator.message_count(ALICE) == 0
    assert f"mailbox {ALICE} is being imported by {other_day.holder} until " in caplog.text
    assert "working on other mailboxes" in caplog.text
    other_day.release([ALICE])
    worker.join(timeout=60)
    assert done and done[0].counts[Status.IMPORTED] == 90
    assert_exactly_once(graph_emulator, {ALICE: 30, BOB: 30, ERIN: 30})
    assert ledger.leases([ALICE, BOB, ERIN]) == {}


class HandClock:
    """The importer's clock; it moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_import_waiting_for_a_mailbox_still_logs_its_progress(
    graph_emulator: Any,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No copy finishes while Alice's lease is held elsewhere; the task log shows it is alive."""
    monkeypatch.setattr(importer_module, "TICK", 0.02)  # real seconds between looks at the clock
    # Held until the test lets go: a lease of the default length could run out on a slow
    # machine before the progress line is seen, and the import would then simply finish.
    other_day = MailboxLeases(ledger, "import scheduled__2026-11-25 attempt 0", ttl=3600)
    assert other_day.acquire([ALICE])
    caplog.set_level(logging.INFO, logger="icechat.importer")
    clock = HandClock()
    batch = copies([ALICE, BOB], 20)

    def run() -> None:
        with GraphClient(emulator_settings(graph_emulator)) as client:
            Importer(
                client, ledger, run_id="manual__2026-11-26", lease_retry=0.05, clock=clock
            ).run(batch, total=len(batch))

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while graph_emulator.message_count(BOB) < 20:
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.05)
    clock.now += 31.0
    while "import progress: 20 of 40 copies (50%)" not in caplog.text:
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.02)
    assert graph_emulator.message_count(ALICE) == 0
    other_day.release([ALICE])
    worker.join(timeout=60)
    assert_exactly_once(graph_emulator, {ALICE: 20, BOB: 20})
