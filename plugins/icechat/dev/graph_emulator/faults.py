"""Switchable limits and faults: the throttling and failures a Graph client must survive.

Per (app, mailbox), as Outlook counts them (https://learn.microsoft.com/en-us/graph/
throttling-limits#outlook-service-limits): at most ``max_concurrent`` requests in flight,
``window_requests`` in any ``window_seconds`` (a sliding window: Microsoft does not say how
its window is measured, and a sliding one is the strictest reading) and ``upload_bytes``
of PATCH/POST/PUT bodies per ``upload_seconds`` (150 MB per 5 minutes); beyond that,
429 ``ApplicationThrottled`` with ``Retry-After``. At random (seeded): 500s, 502s and 503s
(statuses Graph answers, https://learn.microsoft.com/en-us/microsoft-cloud/dev/dev-proxy/technical-reference/
graphrandomerrorplugin), and 429s for creates that were in fact stored.

The peak of requests in flight per (app, mailbox) is kept, counting refused ones too, so a
test can show a client never asked for more than Exchange admits.

Each answer waits ``latency_ms``, or a delay drawn evenly between ``latency_ms`` and
``latency_max_ms`` when that is larger (Graph's answers vary; the bench uses 100-300 ms).
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FaultConfig:
    """Emulator limits and fault rates; every field can be changed at run time."""

    latency_ms: int = 0
    latency_max_ms: int = 0
    max_concurrent: int | None = 4
    window_requests: int | None = None
    window_seconds: float = 1.0
    upload_bytes: int | None = 150 * 1024 * 1024
    upload_seconds: float = 300.0
    retry_after: int = 1
    rate_500: float = 0.0
    rate_502: float = 0.0
    rate_503: float = 0.0
    rate_429_after_success: float = 0.0
    seed: int | None = None
    token_lifetime_s: int = 3599

    def updated(self, changes: Mapping[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; raises ValueError for an unknown or bad field."""
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(f"unknown emulator setting(s) {unknown}; known: {sorted(names)}")
        new = dataclasses.replace(self, **changes)
        for rate in (new.rate_500, new.rate_502, new.rate_503, new.rate_429_after_success):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"a rate must be between 0 and 1, got {rate}")
        if new.retry_after < 0 or new.latency_ms < 0:
            raise ValueError("retry_after and latency_ms must not be negative")
        if new.latency_max_ms and new.latency_max_ms < new.latency_ms:
            raise ValueError(
                f"latency_max_ms ({new.latency_max_ms}) must be 0 (no spread) or at least "
                f"latency_ms ({new.latency_ms})"
            )
        return new

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Throttle:
    """Why a request is refused, and for how long the client must wait."""

    status: int
    code: str
    message: str
    retry_after: int


# The random faults, in the order they are rolled: status, Graph error code, message.
_FAULTS = (
    ("rate_500", 500, "InternalServerError", "An internal server error occurred."),
    ("rate_502", 502, "BadGateway", "The gateway got no valid answer from the service."),
    (
        "rate_503",
        503,
        "ServiceUnavailable",
        "The service is temporarily unavailable. Please retry later.",
    ),
)


class Limiter:
    """Admission control per (app, mailbox) and the seeded dice for random faults."""

    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._uploads: dict[tuple[str, str], deque[tuple[float, int]]] = {}
        self._peaks: dict[tuple[str, str], int] = {}
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        """Apply new settings (the dice are re-seeded)."""
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)
            self._latency_random = random.Random(config.seed)
            self._windows.clear()
            self._uploads.clear()

    def forget_peaks(self) -> None:
        """Start counting peak concurrency afresh (the emulator reset)."""
        with self._lock:
            self._peaks.clear()

    def peaks(self) -> dict[tuple[str, str], int]:
        """The most requests ever in flight at once per (app, mailbox), refused ones included."""
        with self._lock:
            return dict(self._peaks)

    def latency(self) -> float:
        """Seconds the next answer waits: ``latency_ms``, or drawn up to ``latency_max_ms``."""
        config = self.config
        low = config.latency_ms / 1000
        if config.latency_max_ms <= config.latency_ms:
            return low
        with self._lock:
            return self._latency_random.uniform(low, config.latency_max_ms / 1000)

    def enter(self, key: tuple[str, str], upload: int = 0) -> Throttle | None:
        """Admit a request (``upload``: its body bytes if it writes), or say why not.

        An admitted request must call ``leave``.
        """
        config = self.config
        with self._lock:
            self._peaks[key] = max(self._peaks.get(key, 0), self._in_flight.get(key, 0) + 1)
            if (
                config.max_concurrent is not None
                and self._in_flight.get(key, 0) >= config.max_concurrent
            ):
                return Throttle(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    config.retry_after,
                )
            if config.window_requests is not None:
                now = time.monotonic()
                admitted = self._windows.setdefault(key, deque())
                while admitted and admitted[0] <= now - config.window_seconds:
                    admitted.popleft()
                if len(admitted) >= config.window_requests:
                    # Until enough of the window's requests age out for one more.
                    oldest = admitted[len(admitted) - config.window_requests]
                    wait = max(1, math.ceil(oldest + config.window_seconds - now))
                    return Throttle(
                        429,
                        "ApplicationThrottled",
                        "Application is over its MailboxRequests limit.",
                        wait,
                    )
                admitted.append(now)
            if upload and config.upload_bytes is not None:
                refused = self._over_upload(key, upload, config)
                if refused is not None:
                    return refused
            for name, status, code, message in _FAULTS:
                rate = getattr(config, name)
                if rate and self._random.random() < rate:
                    return Throttle(status, code, message, config.retry_after)
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return None

    def _over_upload(
        self, key: tuple[str, str], upload: int, config: FaultConfig
    ) -> Throttle | None:
        """Count ``upload`` bytes against the window, or refuse them (caller holds the lock)."""
        assert config.upload_bytes is not None
        now = time.monotonic()
        sent = self._uploads.setdefault(key, deque())
        while sent and sent[0][0] <= now - config.upload_seconds:
            sent.popleft()
        total = sum(size for _, size in sent)
        if sent and total + upload > config.upload_bytes:
            # Wait until enough of the window's bytes have aged out for this body to fit.
            freed, until = 0, now
            for when, size in sent:
                freed += size
                until = when + config.upload_seconds
                if total - freed + upload <= config.upload_bytes:
                    break
            return Throttle(
                429,
                "ApplicationThrottled",
                "Application is over its IncomingBytes limit.",
                max(1, math.ceil(until - now)),
            )
        sent.append((now, upload))
        return None

    def leave(self, key: tuple[str, str]) -> None:
        """A request admitted by ``enter`` has its answer."""
        with self._lock:
            self._in_flight[key] -= 1

    def throttle_after_success(self) -> Throttle | None:
        """Roll for a 429 sent although the create was stored."""
        config = self.config
        with self._lock:
            hit = config.rate_429_after_success and (
                self._random.random() < config.rate_429_after_success
            )
        if not hit:
            return None
        return Throttle(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            config.retry_after,
        )
