"""Mailbox lanes on a thread pool, where a lane may have to wait for its mailbox.

A lane is a batch of one mailbox's copies. :meth:`LaneRunner.submit` blocks while ``limit``
lanes are outstanding (that bounds the copies in memory). A lane whose work answers
``False`` could not start (another process holds its mailbox's lease): it frees its thread
and is tried again ``retry`` seconds later, while the other lanes run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

Work = Callable[[str, list[T]], bool]


class LaneRunner(Generic[T]):
    """Runs lanes on ``pool``; :meth:`join` waits for all, then raises the first error."""

    def __init__(
        self, pool: ThreadPoolExecutor, work: Work[T], *, limit: int, retry: float
    ) -> None:
        self._pool = pool
        self._work = work
        self._retry = retry
        self._slots = threading.BoundedSemaphore(limit)
        self._done = threading.Condition()
        self._outstanding = 0
        self._error: BaseException | None = None
        self._stopped = False
        self._timers: set[threading.Timer] = set()

    def submit(self, mailbox: str, lane: list[T]) -> None:
        """Queue a lane (waits while ``limit`` lanes are outstanding)."""
        self._slots.acquire()
        with self._done:
            self._outstanding += 1
        self._start(mailbox, lane)

    def _start(self, mailbox: str, lane: list[T]) -> None:
        current = threading.current_thread()
        with self._done:
            if isinstance(current, threading.Timer):
                self._timers.discard(current)
            stopped = self._stopped
        if stopped:
            self._finish(None)
            return
        future = self._pool.submit(self._work, mailbox, lane)
        future.add_done_callback(lambda f: self._ended(mailbox, lane, f))

    def _ended(self, mailbox: str, lane: list[T], future: Future[bool]) -> None:
        error = future.exception()
        if error is None and future.result() is False:
            with self._done:
                if not self._stopped:
                    timer = threading.Timer(self._retry, self._start, (mailbox, lane))
                    timer.daemon = True
                    self._timers.add(timer)
                    timer.start()
                    return
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        with self._done:
            if error is not None and self._error is None:
                self._error = error
            self._outstanding -= 1
            self._done.notify_all()
        self._slots.release()

    def join(self, *, tick: Callable[[], None] | None = None, every: float | None = None) -> None:
        """Wait until every lane has run; raise the first lane's error, if any.

        While waiting, ``tick`` is called every ``every`` seconds and once at the end (a
        progress line needs a look at the clock even while no lane finishes).
        """
        finished = False
        while not finished:
            with self._done:
                finished = self._done.wait_for(lambda: self._outstanding == 0, timeout=every)
                error = self._error
            if tick is not None:
                tick()
        if error is not None:
            raise error

    def stop(self) -> None:
        """Start nothing more: lanes waiting to be tried again are dropped."""
        with self._done:
            self._stopped = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
