"""Mailbox lanes: one that cannot start yet is tried again while the others run."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from icechat.lanes import LaneRunner


def test_a_lane_that_cannot_start_is_tried_again_after_the_others():
    order: list[str] = []
    tries = {"busy": 0}
    lock = threading.Lock()

    def work(mailbox: str, lane: list[int]) -> bool:
        with lock:
            if mailbox == "busy" and tries["busy"] < 3:
                tries["busy"] += 1
                return False
            order.append(mailbox)
            return True

    with ThreadPoolExecutor(2) as pool:
        lanes: LaneRunner[int] = LaneRunner(pool, work, limit=4, retry=0.01)
        for mailbox in ("busy", "a", "b", "c"):
            lanes.submit(mailbox, [1])
        lanes.join()
    assert order[-1] == "busy" and sorted(order) == ["a", "b", "busy", "c"]
    assert tries["busy"] == 3


def test_every_lane_runs_before_the_first_error_is_raised():
    ran: list[str] = []

    def work(mailbox: str, lane: list[int]) -> bool:
        if mailbox == "broken":
            raise RuntimeError("ledger unreachable")
        ran.append(mailbox)
        return True

    with ThreadPoolExecutor(1) as pool:
        lanes: LaneRunner[int] = LaneRunner(pool, work, limit=1, retry=0.01)
        for mailbox in ("a", "broken", "b"):
            lanes.submit(mailbox, [1])
        with pytest.raises(RuntimeError, match="ledger unreachable"):
            lanes.join()
    assert ran == ["a", "b"]


def test_join_looks_at_the_clock_while_a_lane_waits_for_its_mailbox():
    free = threading.Event()
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 3:
            free.set()  # the other process lets go of the mailbox

    with ThreadPoolExecutor(1) as pool:
        lanes: LaneRunner[int] = LaneRunner(
            pool, lambda _m, _lane: free.is_set(), limit=1, retry=0.01
        )
        lanes.submit("busy", [1])
        lanes.join(tick=tick, every=0.01)
    assert ticks >= 3


def test_a_mailboxs_lanes_run_in_turn_on_one_thread_and_it_is_let_go_once():
    first_running = threading.Event()
    release_first = threading.Event()
    threads: dict[str, set[int]] = {}
    ran: list[tuple[str, int]] = []
    idle: list[str] = []

    def work(mailbox: str, lane: list[int]) -> bool:
        threads.setdefault(mailbox, set()).add(threading.get_ident())
        if lane == [0]:
            first_running.set()
            release_first.wait(5)
        ran.append((mailbox, lane[0]))
        return True

    with ThreadPoolExecutor(4) as pool:
        lanes: LaneRunner[int] = LaneRunner(pool, work, limit=8, retry=0.01, idle=idle.append)
        lanes.submit("heavy", [0])
        first_running.wait(5)
        for n in (1, 2, 3):
            lanes.submit("Heavy", [n])  # the same mailbox, in another case
        lanes.submit("light", [9])
        release_first.set()
        lanes.join()
    assert [n for m, n in ran if m != "light"] == [0, 1, 2, 3]
    assert sorted(threads) == ["heavy", "light"] and len(threads["heavy"]) == 1
    assert sorted(idle) == ["heavy", "light"]
