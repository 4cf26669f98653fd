"""When to retry a Graph request and how long to wait: a pure value, no sleeping.

Like urllib3's ``Retry``: the policy says whether an outcome is transient and what delay
comes next; the caller owns the clock and the sleep (so tests and the per-mailbox gate can
share one wait).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime

# Throttling, and the transient server faults Graph and Exchange answer (Microsoft's Dev Proxy
# GraphRandomErrorPlugin models the same set, bar 507 Insufficient Storage, which waiting
# does not cure).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Transient statuses, exponential backoff with jitter, and a total time budget.

    ``budget`` bounds the time from the first attempt to the start of the last one;
    a ``Retry-After`` from the server is obeyed exactly (never shortened) and replaces the
    backoff for that attempt.
    """

    budget: float = 600.0
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    statuses: frozenset[int] = RETRY_STATUSES

    def is_transient(self, status: int) -> bool:
        """Whether an HTTP status is worth another attempt."""
        return status in self.statuses

    def backoff(self, attempt: int, jitter: float) -> float:
        """Delay before retry number ``attempt`` (1-based); ``jitter`` is uniform in [0, 1)."""
        ceiling: float = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + jitter / 2)

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        """The wait before retry ``attempt``: the server's ``Retry-After``, else backoff."""
        if retry_after is not None:
            return retry_after
        return self.backoff(attempt, jitter)

    def allows(self, elapsed: float, delay: float) -> bool:
        """Whether a retry after ``delay`` more seconds still starts within the budget."""
        return elapsed + delay <= self.budget


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
