"""Every request the emulator answered, and the ones that ignored a ``Retry-After``.

A request from an app to a mailbox is a violation when it arrives after an answer carrying
a ``Retry-After`` for that app and mailbox was sent, and before that wait ran out. The wait
starts when the HTTP answer carrying it leaves the emulator: for a ``$batch`` part that is
the whole batch's answer, so the part's siblings (sent with it) and requests the client
sent before it could read the answer are not violations.
"""

from __future__ import annotations

import threading
import time
from typing import Any

_MAX_RECORDS = 200_000

_Key = tuple[str, str]


class Recorder:
    """The request log and the violation list, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._violations: list[dict[str, Any]] = []
        self._blocks: dict[_Key, list[tuple[float, float, int]]] = {}
        self._unsent: dict[str, list[tuple[_Key, int, int]]] = {}
        self._seq = 0

    def clear(self) -> None:
        """Forget every record, violation and pending Retry-After."""
        with self._lock:
            self._records.clear()
            self._violations.clear()
            self._blocks.clear()
            self._unsent.clear()

    def record(
        self,
        *,
        arrived: float,
        method: str,
        path: str,
        client: str | None,
        mailbox: str | None,
        status: int,
        retry_after: int | None,
        answer: str,
        batch_of: str | None = None,
    ) -> int:
        """Log one answered request (or ``$batch`` part); returns its sequence number.

        ``answer`` is the id of the HTTP request whose answer carries this one (the batch's
        for a part): its ``Retry-After`` runs from ``sent(answer)``.
        """
        answered = time.time()
        with self._lock:
            self._seq += 1
            entry: dict[str, Any] = {
                "seq": self._seq,
                "time": arrived,
                "answered": answered,
                "method": method,
                "path": path,
                "client": client,
                "mailbox": mailbox,
                "status": status,
                "retry_after": retry_after,
                "batch_of": batch_of,
                "violation": False,
            }
            if client and mailbox:
                key = (client, mailbox)
                blocks = [b for b in self._blocks.get(key, []) if b[1] > arrived - 60]
                self._blocks[key] = blocks
                early = next((b for b in blocks if b[0] < arrived < b[1]), None)
                if early is not None:
                    entry["violation"] = True
                    self._violations.append(
                        {
                            "seq": self._seq,
                            "client": client,
                            "mailbox": mailbox,
                            "method": method,
                            "path": path,
                            "time": arrived,
                            "retry_after_given_by": early[2],
                            "retry_after_until": early[1],
                            "early_by_s": round(early[1] - arrived, 3),
                        }
                    )
                if retry_after:
                    self._unsent.setdefault(answer, []).append((key, retry_after, self._seq))
            if len(self._records) >= _MAX_RECORDS:
                del self._records[: _MAX_RECORDS // 10]
            self._records.append(entry)
            return self._seq

    def sent(self, answer: str) -> None:
        """The HTTP answer ``answer`` left: the ``Retry-After`` waits it carries start now."""
        now = time.time()
        with self._lock:
            for key, retry_after, seq in self._unsent.pop(answer, []):
                self._blocks.setdefault(key, []).append((now, now + retry_after, seq))

    def records(self, since: int = 0) -> list[dict[str, Any]]:
        """Records with a sequence number above ``since``."""
        with self._lock:
            return [r for r in self._records if r["seq"] > since]

    def violations(self) -> list[dict[str, Any]]:
        """Requests that came before the Retry-After they were given had passed."""
        with self._lock:
            return list(self._violations)
