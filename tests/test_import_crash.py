"""SIGKILL the import at random points, 20 times, restart it: every copy lands exactly once,
and the finishing try of the same run attempt counts every copy as imported."""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from icechat.ledger import CopyState, Ledger
from tests.support import import_worker
from tests.support.fixtures.graph_emulator import ALICE, BOB, ERIN
from tests.support.graph_import_helpers import DAY, assert_exactly_once

MAILBOXES = [ALICE, BOB, ERIN]
PER_MAILBOX = 250


def _stored(graph_emulator: Any) -> int:
    return sum(len(graph_emulator.messages(m)) for m in MAILBOXES)


def _wait_for_more_than(graph_emulator: Any, stored: int, proc: subprocess.Popen[str]) -> None:
    """Until the mailboxes hold more than ``stored`` copies, or the try ended by itself."""
    deadline = time.monotonic() + 120
    while _stored(graph_emulator) <= stored and proc.poll() is None:
        assert time.monotonic() < deadline, f"no copy stored in 120 s beyond {stored}"
        time.sleep(0.01)


def test_killed_twenty_times_then_finished_every_copy_exactly_once(
    graph_emulator: Any, tmp_path: Path
) -> None:
    graph_emulator.set_faults(latency_ms=40, rate_429_after_success=0.05, retry_after=0, seed=9)
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    spec: dict[str, Any] = {
        "settings": {
            "client_id": graph_emulator.client_id,
            "tenant_id": graph_emulator.tenant_id,
            "client_secret": graph_emulator.client_secret,
            "authority_host": graph_emulator.authority_host,
            "graph_url": graph_emulator.graph_url,
            "ca_bundle": graph_emulator.ca_bundle,
        },
        "ledger": ledger_url,
        "mailboxes": MAILBOXES,
        "per_mailbox": PER_MAILBOX,
        "run_id": "scheduled__2026-11-26",
        "attempt": 0,
        # Each killed try leaves its mailbox leases behind: the next may take them at once.
        "lease_seconds": 0.3,
    }
    rng = random.Random(20261126)
    total = PER_MAILBOX * len(MAILBOXES)
    stored_before: list[int] = [0]
    for attempt in range(20):
        proc = import_worker.start({**spec, "batch": attempt % 2 == 0})
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr and proc.stderr.read()
        # Killed once this try has stored something (however slow the machine), at a random
        # point after that: each kill lands at a new place in the import.
        _wait_for_more_than(graph_emulator, stored_before[-1], proc)
        time.sleep(rng.uniform(0.0, 0.2))
        proc.kill()
        proc.communicate(timeout=30)
        stored_before.append(_stored(graph_emulator))
        if stored_before[-1] == total:
            break
    mid_import = {n for n in stored_before if 0 < n < total}
    assert len(mid_import) >= 5, f"kills must land mid-import: {stored_before}"
    final = import_worker.start({**spec, "batch": True})
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err
    # Task retries inside one attempt: what the killed tries created is still this attempt's.
    assert json.loads(out.splitlines()[-1]) == {"imported": total}
    assert_exactly_once(graph_emulator, dict.fromkeys(MAILBOXES, PER_MAILBOX))
    with Ledger(ledger_url) as ledger:
        copies = list(ledger.copies(DAY))
        assert Counter(c.state for c in copies)[CopyState.DONE] == total
        assert {c.attempt for c in copies} == {0}
