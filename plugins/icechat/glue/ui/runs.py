"""The ``icechat_archive`` runs from Airflow's metadata database, as the overview needs them.

The API server may read its own database; the REST API would give the same through a
second HTTP hop.
"""

from __future__ import annotations

from datetime import date

from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from sqlalchemy import select
from sqlalchemy.orm import Session

from icechat.overview import RunState, day_of_run

DAG_ID = "icechat_archive"
SENSOR = "wait_for_export"
# The sensor's states while it is still looking for the day's export.
LOOKING = frozenset({"scheduled", "queued", "running", "up_for_reschedule", "deferred"})
UNFINISHED = frozenset({"queued", "running"})


def latest_runs(session: Session) -> dict[date, RunState]:
    """The latest run (highest id) of each day, with whether it waits for ICE."""
    rows = session.execute(
        select(DagRun.id, DagRun.run_id, DagRun.state, DagRun.conf, DagRun.logical_date)
        .where(DagRun.dag_id == DAG_ID)
        .order_by(DagRun.id)
    ).all()
    latest: dict[date, tuple[str, str]] = {}
    for _id, run_id, state, conf, logical_date in rows:
        day = day_of_run(conf, logical_date)
        if day is not None:
            latest[day] = (run_id, str(state))
    looking = _looking(
        session, [run_id for run_id, state in latest.values() if state in UNFINISHED]
    )
    return {
        day: RunState(run_id, state, waiting_for_ice=run_id in looking)
        for day, (run_id, state) in latest.items()
    }


def run_of(session: Session, dag_id: str, run_id: str) -> tuple[date | None, RunState] | None:
    """One run: the day it processes and its state; None if there is no such run."""
    row = session.execute(
        select(DagRun.state, DagRun.conf, DagRun.logical_date).where(
            DagRun.dag_id == dag_id, DagRun.run_id == run_id
        )
    ).one_or_none()
    if row is None:
        return None
    state, conf, logical_date = row
    waiting = dag_id == DAG_ID and str(state) in UNFINISHED and bool(_looking(session, [run_id]))
    return day_of_run(conf, logical_date), RunState(run_id, str(state), waiting)


def _looking(session: Session, run_ids: list[str]) -> set[str]:
    """Of these runs, those whose sensor is still looking for the export."""
    if not run_ids:
        return set()
    found = session.scalars(
        select(TaskInstance.run_id).where(
            TaskInstance.dag_id == DAG_ID,
            TaskInstance.task_id == SENSOR,
            TaskInstance.run_id.in_(run_ids),
            TaskInstance.state.in_(LOOKING),
        )
    )
    return set(found)
