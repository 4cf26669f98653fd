"""Progress of an unfinished verification, so a re-run after a crash skips checked mailboxes.

One JSON line per mailbox checked, appended and flushed to disk as soon as it is known;
a line is used again only while the mailbox's ledger rows and the folder are what they were
(its fingerprint), and for at most ``MAX_AGE`` after it was checked: a verification resumed
days later reads the mailboxes again. A torn last line (a crash mid-write) is ignored. The
file is removed once the verification's report is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from icechat.ledger import CopyRecord
from icechat.verify.mailboxes import MailboxResult

NAME = "checkpoint.jsonl"
MAX_AGE = timedelta(hours=24)


def fingerprint(folder_name: str, rows: Iterable[CopyRecord]) -> str:
    """What a mailbox's result depends on: the folder and its ledger rows for the day."""
    digest = hashlib.sha256(folder_name.encode())
    for row in sorted(rows, key=lambda r: r.item_key):
        digest.update(f"\n{row.item_key}\t{row.state}\t{row.graph_id}".encode())
    return digest.hexdigest()


class Checkpoint:
    """The results already known for a verification of a day started at ``now``."""

    def __init__(self, work_dir: Path, now: datetime) -> None:
        self.path = work_dir / NAME
        self.now = now
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], MailboxResult] = {}
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        self._torn = bool(text) and not text.endswith("\n")
        for line in text.splitlines():
            try:
                data = json.loads(line)
                if now - datetime.fromisoformat(data["checked_at"]) > MAX_AGE:
                    continue
                self._known[(data["mailbox"], data["fingerprint"])] = MailboxResult.from_json(
                    data["result"]
                )
            except (ValueError, KeyError, TypeError):
                continue  # the line a crash cut short

    def get(self, mailbox: str, print_: str) -> MailboxResult | None:
        """The result recorded for the mailbox in this state, if any."""
        return self._known.get((mailbox, print_))

    def put(self, mailbox: str, print_: str, result: MailboxResult) -> None:
        """Record a mailbox's result durably (only complete results are worth keeping)."""
        if not result.complete:
            return
        line = json.dumps(
            {
                "mailbox": mailbox,
                "fingerprint": print_,
                "checked_at": self.now.isoformat(),
                "result": result.to_json(),
            },
            ensure_ascii=False,
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(("\n" if self._torn else "") + line + "\n")
                self._torn = False
                fh.flush()
                os.fsync(fh.fileno())
            self._known[(mailbox, print_)] = result

    def clear(self) -> None:
        """Forget the progress (the verification finished)."""
        self.path.unlink(missing_ok=True)
        self._known.clear()
