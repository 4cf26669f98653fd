"""An import entry point for the crash test: ``python -m tests.support.import_worker SPEC``.

SPEC (JSON) holds the GraphSettings fields, the ledger URL, the mailboxes, the copies per
mailbox, the run id and whether to batch. Prints ``ready`` once imports are done and the
work is about to start, then the outcome counts as JSON.
"""

from __future__ import annotations

import json
import sys

from icechat.graph.client import GraphClient
from icechat.graph.settings import GraphSettings
from icechat.importer import Importer
from icechat.ledger import Ledger
from tests.support.graph_import_helpers import copies


def main(spec: dict[str, object]) -> int:
    settings = GraphSettings(**spec["settings"])  # type: ignore[arg-type]
    with (
        GraphClient(settings) as client,
        Ledger(str(spec["ledger"])) as ledger,
    ):
        work = copies(list(spec["mailboxes"]), int(spec["per_mailbox"]))  # type: ignore[call-overload]
        print("ready", flush=True)
        importer = Importer(client, ledger, run_id=str(spec["run_id"]), batch=bool(spec["batch"]))
        result = importer.run(work)
    print(json.dumps(dict(result.counts)), flush=True)
    return 0 if not result.failures else 1


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
