"""Per-mailbox leases: one process at a time sends to a mailbox, across every run and worker.

Graph admits 4 concurrent requests per application and mailbox, counted across all of the
application's processes; a :class:`icechat.graph.client.GraphClient` keeps its own requests
within that, so a mailbox may only be worked on by one client at a time. A lease is a row in
the ledger database (mailbox, holder, expires_at): taken in one statement when it is free or
expired, renewed every ``ttl / 3`` seconds by a background thread while its holder works,
released when the work on that mailbox ends. A killed worker stops renewing, so its leases
run out after ``ttl`` seconds and another process takes them over. A holder never waits
for a lease while holding another, so two processes cannot wait for each other.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from icechat.ledger import LeaseRecord, Ledger

log = logging.getLogger(__name__)

LEASE_SECONDS = 45.0  # a dead holder's mailboxes are free again within a minute
HOLDER_LENGTH = 250  # the column's width


def _utcnow() -> datetime:
    return datetime.now(UTC)


def holder_name(label: str) -> str:
    """A holder id unique to one lease set, readable in a waiting importer's log."""
    suffix = f" (pid {os.getpid()} on {socket.gethostname()}, {uuid.uuid4().hex[:8]})"
    return label[: HOLDER_LENGTH - len(suffix)] + suffix


class MailboxLeases:
    """One holder's leases on mailboxes in the ledger database; safe to share between threads.

    Mailboxes are compared case-insensitively. ``clock`` gives the current UTC time (tests
    pass their own; nothing here sleeps to a deadline).
    """

    def __init__(
        self,
        ledger: Ledger,
        label: str,
        *,
        ttl: float = LEASE_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.ledger = ledger
        self.holder = holder_name(label)
        self.ttl = ttl
        self.clock = clock
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def _until(self) -> datetime:
        return self.clock() + timedelta(seconds=self.ttl)

    def acquire(self, mailboxes: Iterable[str]) -> set[str]:
        """Take the leases that are free or expired; the mailboxes (as given) now held."""
        given = {m.casefold(): m for m in mailboxes}
        now = self.clock()
        got = self.ledger.acquire_leases(
            given, self.holder, now=now, until=now + timedelta(seconds=self.ttl)
        )
        with self._lock:
            self._held |= got
        return {given[m] for m in got}

    def release(self, mailboxes: Iterable[str]) -> None:
        """Give leases up, so other processes can work on those mailboxes at once."""
        keys = {m.casefold() for m in mailboxes}
        with self._lock:
            self._held -= keys
        self.ledger.release_leases(keys, self.holder)

    def holds(self, mailbox: str) -> bool:
        """Whether this holder has the mailbox's lease (as far as its last renewal knows)."""
        with self._lock:
            return mailbox.casefold() in self._held

    def holders(self, mailboxes: Iterable[str]) -> dict[str, LeaseRecord]:
        """Who holds each mailbox's lease (by case-folded mailbox), to say why we wait."""
        return self.ledger.leases(m.casefold() for m in mailboxes)

    def renew(self) -> None:
        """Extend every lease held; one lost (it ran out and was taken over) is logged."""
        with self._lock:
            held = set(self._held)
        kept = self.ledger.renew_leases(held, self.holder, until=self._until())
        with self._lock:
            lost = (held - kept) & self._held  # not released meanwhile: taken over
            self._held -= lost
        for mailbox in sorted(lost):
            log.warning(
                "lease of mailbox %s ran out and was taken over (this worker stalled over %.0fs)",
                mailbox,
                self.ttl,
            )

    @contextmanager
    def renewing(self) -> Iterator[MailboxLeases]:
        """Renew the leases held every ``ttl / 3`` seconds while the block runs; at its end,
        release whatever is still held."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.ttl / 3):
                try:
                    self.renew()
                except Exception:  # a database hiccup: try again next round, the lease has slack
                    log.warning("renewing mailbox leases failed; trying again", exc_info=True)

        thread = threading.Thread(target=loop, name="icechat-leases", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            with self._lock:
                left = set(self._held)
            self.release(left)
