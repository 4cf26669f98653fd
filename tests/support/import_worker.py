"""An import entry point for tests that run importers as processes:
``python -m tests.support.import_worker SPEC``.

SPEC (JSON) holds the GraphSettings fields, the ledger URL (and optionally its ``schema``),
the mailboxes, the copies per mailbox (optionally with an item key ``prefix``, one per day),
the run id, optionally its ``attempt``, whether to batch, and optionally ``lease_seconds``
(how soon a killed worker's mailbox leases run out). Prints ``ready`` once imports
are done and the work is about to start, then the outcome counts as JSON. Tests start it
with :func:`start`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from icechat.graph.client import GraphClient
from icechat.graph.settings import GraphSettings
from icechat.importer import Importer
from icechat.leases import LEASE_SECONDS, MailboxLeases
from icechat.ledger import Ledger
from tests.support.graph_import_helpers import copies
from tests.support.paths import REPO


def main(spec: dict[str, Any]) -> int:
    settings = GraphSettings(**spec["settings"])
    with (
        GraphClient(settings) as client,
        Ledger(str(spec["ledger"]), schema=spec.get("schema")) as ledger,
    ):
        work = copies(list(spec["mailboxes"]), int(spec["per_mailbox"]), spec.get("prefix", "item"))
        print("ready", flush=True)
        run_id = str(spec["run_id"])
        leases = MailboxLeases(
            ledger, f"worker {run_id}", ttl=float(spec.get("lease_seconds", LEASE_SECONDS))
        )
        importer = Importer(
            client,
            ledger,
            run_id=run_id,
            attempt=spec.get("attempt"),
            batch=bool(spec["batch"]),
            leases=leases,
            lease_retry=0.2,
        )
        result = importer.run(work)
    print(json.dumps(dict(result.counts)), flush=True)
    return 0 if not result.failures else 1


def start(spec: dict[str, Any]) -> subprocess.Popen[str]:
    """This module on ``spec`` in a process of its own, its output piped, as text."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.import_worker", json.dumps(spec)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
