"""Switchable limits and faults: the throttling and failures a Graph client must survive.

Per (app, mailbox): at most ``max_concurrent`` requests in flight and ``window_requests``
per ``window_seconds``; beyond that, 429 ``ApplicationThrottled`` with ``Retry-After``.
At random (seeded): 503s, and 429s for creates that were in fact stored.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FaultConfig:
    """Emulator limits and fault rates; every field can be changed at run time."""

    latency_ms: int = 0
    max_concurrent: int | None = 4
    window_requests: int | None = None
    window_seconds: float = 1.0
    retry_after: int = 1
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
        for rate in (new.rate_503, new.rate_429_after_success):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"a rate must be between 0 and 1, got {rate}")
        if new.retry_after < 0 or new.latency_ms < 0:
            raise ValueError("retry_after and latency_ms must not be negative")
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


class Limiter:
    """Admission control per (app, mailbox) and the seeded dice for random faults."""

    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        """Apply new settings (the dice are re-seeded)."""
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)
            self._windows.clear()

    def enter(self, key: tuple[str, str]) -> Throttle | None:
        """Admit a request, or say why not; an admitted request must call ``leave``."""
        config = self.config
        with self._lock:
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
                start, count = self._windows.get(key, (now, 0))
                if now - start >= config.window_seconds:
                    start, count = now, 0
                if count >= config.window_requests:
                    wait = max(1, math.ceil(start + config.window_seconds - now))
                    return Throttle(
                        429,
                        "ApplicationThrottled",
                        "Application is over its MailboxRequests limit.",
                        wait,
                    )
                self._windows[key] = (start, count + 1)
            if config.rate_503 and self._random.random() < config.rate_503:
                return Throttle(
                    503,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable. Please retry later.",
                    config.retry_after,
                )
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
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
