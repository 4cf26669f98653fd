"""Days missed while the scheduler was down or the DAG paused, found from the go-live day.

The DAG runs with ``catchup=False``, so Airflow runs only the latest day when the scheduler
comes back or the DAG is unpaused; ICE keeps a day on its site only for a while. Each
scheduled run therefore looks back to ``icechat_go_live`` and starts a run for every day
before its own that has neither a report nor a run: nothing before the go-live day, so
a first unpause starts no flood of runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta


def missed_days(go_live: date, before: date, handled: Callable[[date], bool]) -> list[date]:
    """The days from ``go_live`` up to, not including, ``before`` that ``handled`` says were
    never run, oldest first."""
    days = [go_live + timedelta(days=n) for n in range((before - go_live).days)]
    return [day for day in days if not handled(day)]
