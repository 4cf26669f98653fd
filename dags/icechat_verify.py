"""ICE Chat verify: proof that archived days are still whole, for an auditor.

For each day: the originals in ``raw/`` still hash to what was recorded; every copy the
ledger calls imported is in its mailbox's folder once, at its chat time, and nothing
unknown is there; every copy of the day is accounted for. Each day writes
``reports/verify-{day}.json`` and ``.html``; a day where anything differs fails its task.

The schedule (cron, UTC) and the days a run covers come from the variables
``icechat_verify_schedule``, ``icechat_verify_days`` and ``icechat_verify_lag_days``; a run
triggered by hand may name its ``days``. Missing copies are reported, never re-imported,
unless the run's ``repair`` param is true. This file only wires tasks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from icechat.glue.verify import verify_settings


@dag(
    dag_id="icechat_verify",
    schedule=CronTriggerTimetable(verify_settings().schedule, timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["icechat", "compliance", "audit"],
    params={
        "days": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "format": "date"},
            title="Days (UTC)",
            description="Days to verify; empty = the range the icechat_verify_* variables give.",
        ),
        "repair": Param(
            False,
            type="boolean",
            title="Re-import missing copies",
            description="Import again exactly the copies found missing (as verify --repair).",
        ),
    },
    default_args={
        "owner": "compliance",
        "retries": 3,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=60),
    },
)
def icechat_verify() -> None:
    @task
    def days_to_verify(**context: object) -> list:
        from icechat.glue import verify

        return verify.days_to_verify(context)

    @task(pool="icechat_graph", max_active_tis_per_dagrun=2)
    def verify_day(day: str, **context: object) -> dict:
        from icechat.glue import verify

        return verify.verify_task(day, context)

    verify_day.expand(day=days_to_verify())


icechat_verify()
