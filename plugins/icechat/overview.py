"""The archive day by day, for the operator's view: what state each day is in, and the gaps.

A day's state comes from its latest run (what Airflow knows) and its report (what was
archived). A day in the range with neither was never run: a gap in the archive, the first
thing an auditor asks about, so the view makes it stand out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from icechat.report import DaySummary

DEFAULT_DAYS = 31  # the range shown when nothing was archived yet
MAX_DAYS = 366  # the longest default range


class DayState(StrEnum):
    """Where a day of the archive stands."""

    ARCHIVED = "archived and balanced"
    NOTICES = "imported with notices"
    FAILED = "failed"
    WAITING = "waiting for ICE"
    RUNNING = "running"
    NEVER_RUN = "never run"


@dataclass(frozen=True, slots=True)
class RunState:
    """The latest run of a day: its id, Airflow's state, and whether it waits for the export."""

    run_id: str
    state: str
    waiting_for_ice: bool = False


@dataclass(frozen=True, slots=True)
class DayRow:
    """One line of the overview; ``note`` says what the state alone does not."""

    day: date
    state: DayState
    summary: DaySummary | None
    run: RunState | None
    note: str = ""


def day_of_run(conf: Mapping[str, Any] | None, logical_date: datetime | None) -> date | None:
    """The day a run processes: its ``day`` param, else the UTC date of its logical date.

    The one owner of the rule: the DAG's tasks (``glue.tasks.day_of``) and the operator's
    view read it here. A run whose param is not a date, or that has neither, has no day.
    """
    given = (conf or {}).get("day")
    if given:
        try:
            return date.fromisoformat(str(given).strip())
        except ValueError:
            return None
    return logical_date.astimezone(UTC).date() if logical_date else None


def day_state(summary: DaySummary | None, run: RunState | None) -> tuple[DayState, str]:
    """A day's state and a note, from its report and its latest run (either may be absent)."""
    if run is not None and run.state in ("queued", "running", "up_for_retry", "restarting"):
        return (DayState.WAITING, "") if run.waiting_for_ice else (DayState.RUNNING, "")
    if run is not None and run.state == "failed":
        note = "an earlier run's report is shown" if summary is not None else ""
        return DayState.FAILED, note
    if summary is None:
        if run is not None:
            return DayState.FAILED, f"run ended {run.state} without a report in the data directory"
        return DayState.NEVER_RUN, ""
    if summary.failed or not summary.balanced:
        return DayState.FAILED, ""
    if summary.imported_with_notice:
        return DayState.NOTICES, ""
    return DayState.ARCHIVED, ""


def day_rows(
    start: date,
    end: date,
    summaries: Mapping[date, DaySummary],
    runs: Mapping[date, RunState],
) -> list[DayRow]:
    """Every day from ``end`` back to ``start`` (both included), newest first."""
    rows = []
    day = end
    while day >= start:
        summary, run = summaries.get(day), runs.get(day)
        state, note = day_state(summary, run)
        rows.append(DayRow(day, state, summary, run, note))
        day -= timedelta(days=1)
    return rows


def default_range(known: Iterable[date], today: date) -> tuple[date, date]:
    """From the first day anything is known of to the last finished day (yesterday, UTC).

    At most ``MAX_DAYS`` days; ``DEFAULT_DAYS`` when nothing is known yet. A known day after
    yesterday (a run for today) extends the end.
    """
    days = sorted(known)
    end = max([today - timedelta(days=1), *days[-1:]])
    start = days[0] if days else end - timedelta(days=DEFAULT_DAYS - 1)
    return max(start, end - timedelta(days=MAX_DAYS - 1)), end
