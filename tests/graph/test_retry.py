"""The retry policy as a value: which statuses retry, how long to wait, the total budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechat.graph.retry import RetryPolicy, parse_retry_after


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (507, False),
        (400, False),
        (404, False),
        (413, False),
    ],
)
def test_only_throttling_and_transient_server_faults_are_transient(
    status: int, transient: bool
) -> None:
    assert RetryPolicy().is_transient(status) is transient


def test_retry_after_is_obeyed_exactly_and_replaces_backoff() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4)
    assert policy.delay(1, 7.0, jitter=0.0) == 7.0
    assert policy.delay(9, 0.0, jitter=0.99) == 0.0


@given(attempt=st.integers(1, 60), jitter=st.floats(0, 0.999999))
def test_backoff_grows_with_jitter_and_is_capped(attempt: int, jitter: float) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30)
    ceiling = min(30, 0.5 * 2 ** (attempt - 1))
    assert ceiling / 2 <= policy.delay(attempt, None, jitter) <= ceiling


def test_budget_bounds_the_total_wait() -> None:
    policy = RetryPolicy(budget=10)
    assert policy.allows(elapsed=4, delay=6)
    assert not policy.allows(elapsed=4, delay=6.5)


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=20), usegmt=True), now) == 20.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=20), usegmt=True), now) == 0.0
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
