"""The archive day by day: each day's state from its report and its latest run, and the gaps."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from icechat.overview import (
    DayState,
    RunState,
    day_of_run,
    day_rows,
    day_state,
    default_range,
)
from icechat.report import DaySummary

D = date(2026, 11, 26)


def summary(day: date = D, **changes: object) -> DaySummary:
    values = {
        "day": day,
        "items": 200,
        "copies": 804,
        "imported": 323,
        "already_present": 0,
        "not_mapped": 481,
        "failed": 0,
        "imported_with_notice": 0,
        "balanced": True,
        "run_id": "manual__1",
    }
    return DaySummary(**{**values, **changes})


@pytest.mark.parametrize(
    ("report", "run", "state"),
    [
        (summary(), RunState("r", "success"), DayState.ARCHIVED),
        (summary(), None, DayState.ARCHIVED),  # a report without a run in Airflow
        (summary(imported_with_notice=2), RunState("r", "success"), DayState.NOTICES),
        (summary(failed=1), RunState("r", "failed"), DayState.FAILED),
        (summary(balanced=False), None, DayState.FAILED),
        (summary(), RunState("r2", "failed"), DayState.FAILED),  # a later run failed
        (None, RunState("r", "running", waiting_for_ice=True), DayState.WAITING),
        (summary(), RunState("r", "queued"), DayState.RUNNING),
        (None, RunState("r", "success"), DayState.FAILED),  # its report is missing
        (None, None, DayState.NEVER_RUN),
    ],
)
def test_day_state(report: DaySummary | None, run: RunState | None, state: DayState) -> None:
    assert day_state(report, run)[0] is state


def test_notes_say_what_the_state_does_not() -> None:
    assert day_state(summary(), RunState("r2", "failed"))[1] == "an earlier run's report is shown"
    assert "without a report" in day_state(None, RunState("r", "success"))[1]


def test_rows_cover_the_range_newest_first_with_gaps_as_never_run() -> None:
    rows = day_rows(
        date(2026, 11, 23),
        D,
        {D: summary(), date(2026, 11, 24): summary(date(2026, 11, 24))},
        {date(2026, 11, 25): RunState("r", "running", waiting_for_ice=True)},
    )
    assert [(r.day.day, r.state) for r in rows] == [
        (26, DayState.ARCHIVED),
        (25, DayState.WAITING),
        (24, DayState.ARCHIVED),
        (23, DayState.NEVER_RUN),
    ]
    assert rows[0].summary == summary() and rows[1].run is not None


def test_default_range_starts_at_the_first_known_day_and_ends_yesterday() -> None:
    today = date(2026, 11, 30)
    assert default_range([D, date(2026, 11, 24)], today) == (date(2026, 11, 24), date(2026, 11, 29))
    assert default_range([], today) == (date(2026, 10, 30), date(2026, 11, 29))
    assert default_range([date(2026, 11, 30)], today) == (date(2026, 11, 30), date(2026, 11, 30))
    assert default_range([date(2020, 1, 1)], today) == (date(2025, 11, 29), date(2026, 11, 29))


def test_a_run_processes_its_day_param_else_the_utc_date_of_its_logical_date() -> None:
    late = datetime(2026, 11, 25, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert day_of_run({"day": "2026-11-24"}, late) == date(2026, 11, 24)
    assert day_of_run({"day": None}, late) == D
    assert day_of_run(None, late) == D
    assert day_of_run({"day": "yesterday"}, late) is None
    assert day_of_run({}, None) is None
