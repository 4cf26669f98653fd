"""Mailbox lanes on a thread pool: each mailbox's lanes one after another on one thread.

A lane is a batch of one mailbox's copies. :meth:`LaneRunner.submit` blocks while ``limit``
lanes are outstanding (that bounds the copies in memory). The first lane of a mailbox takes
a pool thread, and the lanes submitted for that mailbox meanwhile queue behind it: the
thread runs them in turn and only then lets the mailbox go (``idle``), so a busy mailbox
keeps its thread and its lease from its first lane to its last, and no thread waits for
another thread's mailbox. A lane whose work answers ``False`` could not start (another
process holds its mailbox's lease): it frees its thread and is tried again ``retry``
seconds later, its mailbox's queue kept, while the other mailboxes run.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

Work = Callable[[str, list[T]], bool]


class LaneRunner(Generic[T]):
    """Runs lanes on ``pool``; :meth:`join` waits for all, then raises the first error.

    ``idle(mailbox)`` is called on the mailbox's thread when it has no lane left to run
    (a lane submitted while it runs is still taken up by that thread).
    """

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        work: Work[T],
        *,
        limit: int,
        retry: float,
        idle: Callable[[str], None] | None = None,
    ) -> None:
        self._pool = pool
        self._work = work
        self._retry = retry
        self._idle = idle
        self._slots = threading.BoundedSemaphore(limit)
        self._done = threading.Condition()
        self._outstanding = 0
        self._error: BaseException | None = None
        self._stopped = False
        self._timers: set[threading.Timer] = set()
        # A mailbox with a lane running or waiting to be tried again, and the lanes behind it.
        self._queues: dict[str, deque[list[T]]] = {}

    def submit(self, mailbox: str, lane: list[T]) -> None:
        """Queue a lane (waits while ``limit`` lanes are outstanding)."""
        self._slots.acquire()
        with self._done:
            self._outstanding += 1
            queue = self._queues.get(mailbox.casefold())
            if queue is not None:
                queue.append(lane)
                return
            self._queues[mailbox.casefold()] = deque()
        self._start(mailbox, lane)

    def _start(self, mailbox: str, lane: list[T]) -> None:
        current = threading.current_thread()
        with self._done:
            if isinstance(current, threading.Timer):
                self._timers.discard(current)
            stopped = self._stopped
        if stopped:
            self._drop(mailbox, lane)
            return
        self._pool.submit(self._drive, mailbox, lane)

    def _drive(self, mailbox: str, lane: list[T]) -> None:
        """Run ``mailbox``'s lanes on this thread until none is left, then let it go."""
        current: list[T] | None = lane
        while current is not None:
            try:
                started = self._work(mailbox, current)
            except BaseException as exc:  # recorded; join() raises it after every lane ran
                self._finish(exc)
            else:
                if not started:
                    self._again(mailbox, current)
                    return
                self._finish(None)
            current = self._next(mailbox)
            if current is None:
                self._let_go(mailbox)
                current = self._next(mailbox, last=True)

    def _next(self, mailbox: str, *, last: bool = False) -> list[T] | None:
        """The mailbox's next queued lane; with ``last``, none means the mailbox is done."""
        with self._done:
            queue = self._queues[mailbox.casefold()]
            if queue and not self._stopped:
                return queue.popleft()
            if not last:
                return None
            del self._queues[mailbox.casefold()]
        for _ in queue:  # left by a stopped runner
            self._finish(None)
        return None

    def _let_go(self, mailbox: str) -> None:
        if self._idle is None:
            return
        try:
            self._idle(mailbox)
        except BaseException as exc:
            with self._done:
                self._error = self._error or exc

    def _again(self, mailbox: str, lane: list[T]) -> None:
        """Try the lane again later; its mailbox's queue waits with it."""
        with self._done:
            if not self._stopped:
                timer = threading.Timer(self._retry, self._start, (mailbox, lane))
                timer.daemon = True
                self._timers.add(timer)
                timer.start()
                return
        self._drop(mailbox, lane)

    def _drop(self, mailbox: str, lane: list[T]) -> None:
        """A stopped runner's lane, and those queued behind it, end without running."""
        with self._done:
            queue = self._queues.pop(mailbox.casefold(), deque())
        for _ in (lane, *queue):
            self._finish(None)

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
        """Start nothing more: lanes waiting to be tried again, or queued, are dropped."""
        with self._done:
            self._stopped = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
