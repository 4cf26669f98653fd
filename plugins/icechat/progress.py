"""A progress line every so often: copies done of total, rate, time left, throttling waits.

An import that runs for minutes logs one of these about every 30 seconds, so its task log
shows it is alive (and whether Graph is holding it back). The clock is injected so a test
can pass 30 seconds without waiting for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

EVERY = 30.0  # seconds between progress lines


def _duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Counts work done and logs a line when ``every`` seconds of ``clock`` have passed.

    ``total`` may be unknown (None): the line then has no percentage or time left.
    ``throttled`` returns (Retry-After answers so far, seconds they asked for).
    Thread-safe: workers call :meth:`done`, the driving thread may call :meth:`tick`.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        unit: str,
        *,
        total: int | None,
        clock: Callable[[], float],
        throttled: Callable[[], tuple[int, float]],
        every: float = EVERY,
    ) -> None:
        self._log = logger
        self._what = what
        self._unit = unit
        self._total = total
        self._clock = clock
        self._throttled = throttled
        self._every = every
        self._lock = threading.Lock()
        self._started = clock()
        self._last = self._started
        self.count = 0

    def done(self, n: int = 1) -> None:
        """Count ``n`` more done, and log if it is time."""
        with self._lock:
            self.count += n
        self.tick()

    def tick(self) -> None:
        """Log a progress line if ``every`` seconds passed since the last one."""
        now = self._clock()
        with self._lock:
            if now - self._last < self._every:
                return
            self._last = now
            count = self.count
        self._log.info("%s", self.line(count, now - self._started))

    def line(self, count: int, elapsed: float) -> str:
        """The progress line for ``count`` done after ``elapsed`` seconds."""
        rate = count / elapsed if elapsed > 0 else 0.0
        head = f"{self._what} progress: {count}"
        if self._total is not None:
            share = 100 * count / self._total if self._total else 100.0
            head += f" of {self._total} {self._unit} ({share:.0f}%)"
        else:
            head += f" {self._unit}"
        parts = [head, f"{rate:.1f} {self._unit}/s"]
        if self._total is not None:
            left = self._total - count
            parts.append(f"about {_duration(left / rate)} left" if rate else "time left unknown")
        waits, seconds = self._throttled()
        parts.append(
            f"throttled {waits} time(s), {_duration(seconds)} of Retry-After"
            if waits
            else "not throttled"
        )
        return ", ".join(parts)
