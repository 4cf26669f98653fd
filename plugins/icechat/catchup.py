"""Days missed while the scheduler was down or the DAG paused, found from the go-live day.

The DAG runs with ``catchup=False``, so Airflow runs only the latest day when the scheduler
comes back or the DAG is unpaused; ICE keeps a day on its site only for a while. Each
scheduled run therefore looks back to ``icechat_go_live`` and starts a run for every day
before its own that has neither a report nor a run: nothing before the go-live day, so
a first unpause starts no flood of runs.

A run is known by its logical date (scheduled, backfilled and caught-up runs fall on the
day's midnight) or by the marker every run leaves under ``runs/{day}/`` when it begins: a
run triggered for a day by its ``day`` param, or at another time of day, has no logical date
to find it by, and a day whose such run failed or is still running must not be started again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def missed_days(go_live: date, before: date, handled: Callable[[date], bool]) -> list[date]:
    """The days from ``go_live`` up to, not including, ``before`` that ``handled`` says were
    never run, oldest first."""
    days = [go_live + timedelta(days=n) for n in range((before - go_live).days)]
    return [day for day in days if not handled(day)]


def started_dir(data_dir: Path, day: date) -> Path:
    """``{data_dir}/runs/{YYYY-MM-DD}``: a marker for each run begun for the day."""
    return data_dir / "runs" / day.isoformat()


def started_marker(data_dir: Path, day: date, run_id: str) -> Path:
    """The marker of run ``run_id`` in :func:`started_dir` (characters a file name or an object
    key could mistake written as ``_``; the marker's content holds the run id as it is)."""
    return started_dir(data_dir, day) / f"{_UNSAFE.sub('_', run_id)}.json"
