"""Per-mailbox leases in the ledger database, on SQLite and Postgres, with an injected clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from icechat.leases import MailboxLeases
from icechat.ledger import Ledger

START = datetime(2026, 11, 27, 0, 5, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_one_holder_at_a_time_and_a_released_mailbox_is_free_at_once(ledger: Ledger) -> None:
    clock = Clock()
    day_a = MailboxLeases(ledger, "import day A", clock=clock)
    day_b = MailboxLeases(ledger, "import day B", clock=clock)
    assert day_a.acquire(["Alice@X.test", "bob@x.test"]) == {"Alice@X.test", "bob@x.test"}
    assert day_b.acquire(["alice@x.test", "carol@x.test"]) == {"carol@x.test"}
    assert day_a.acquire(["alice@x.test"]) == {"alice@x.test"}, "its own lease, again"
    holder = day_b.holders(["ALICE@x.test"])["alice@x.test"]
    assert holder.holder == day_a.holder and holder.holder.startswith("import day A (pid ")
    assert holder.expires_at == START + timedelta(seconds=45)
    day_a.release(["alice@x.test"])
    assert day_b.acquire(["alice@x.test"]) == {"alice@x.test"}
    assert day_a.acquire(["alice@x.test"]) == set()


def test_a_killed_holders_lease_is_taken_over_once_it_runs_out(ledger: Ledger) -> None:
    clock = Clock()
    killed = MailboxLeases(ledger, "worker killed mid-import", clock=clock)
    waiting = MailboxLeases(ledger, "next day", clock=clock)
    assert killed.acquire(["alice@x.test"])
    clock.advance(44)
    assert waiting.acquire(["alice@x.test"]) == set()
    clock.advance(1)
    assert waiting.acquire(["alice@x.test"]) == {"alice@x.test"}
    assert waiting.holders(["alice@x.test"])["alice@x.test"].holder == waiting.holder


def test_renewing_keeps_a_lease_and_a_lost_one_is_logged(ledger: Ledger, caplog) -> None:
    clock = Clock()
    working = MailboxLeases(ledger, "long import", clock=clock)
    other = MailboxLeases(ledger, "other day", clock=clock)
    working.acquire(["alice@x.test", "bob@x.test"])
    for _ in range(10):  # 5 minutes of work, renewed every 30 s
        clock.advance(30)
        working.renew()
        assert other.acquire(["alice@x.test"]) == set()
    working.release(["bob@x.test"])
    clock.advance(60)  # stalled past the lease: the other day takes it over
    assert other.acquire(["alice@x.test"]) == {"alice@x.test"}
    assert working.holds("alice@x.test")
    working.renew()
    assert "lease of mailbox alice@x.test ran out and was taken over" in caplog.text
    assert "bob@x.test" not in caplog.text, "a released lease is not a lost one"
    assert not working.holds("alice@x.test"), "the next lane must take the lease again"
    assert other.holders(["alice@x.test"])["alice@x.test"].holder == other.holder


def test_leaving_the_renewing_block_releases_what_is_held(ledger: Ledger) -> None:
    done = MailboxLeases(ledger, "finished import")
    with done.renewing():
        done.acquire(["alice@x.test"])
    assert ledger.leases(["alice@x.test"]) == {}


def test_holders_racing_for_one_mailbox_exactly_one_wins(ledger: Ledger) -> None:
    holders = [MailboxLeases(ledger, f"racer {n}") for n in range(8)]
    won: list[str] = []
    barrier = threading.Barrier(len(holders))

    def race(leases: MailboxLeases) -> None:
        barrier.wait()
        if leases.acquire(["alice@x.test"]):
            won.append(leases.holder)

    threads = [threading.Thread(target=race, args=(h,)) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert ledger.leases(["alice@x.test"])["alice@x.test"].holder == won[0]
