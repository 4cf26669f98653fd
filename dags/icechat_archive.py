"""ICE Chat archive: one UTC day of ICE Chat into Microsoft 365 mailboxes.

wait for the day's export on the ICE SFTP site -> fetch into ``raw/`` -> decrypt and unpack ->
parse and render -> map participants to mailboxes -> import into each mailbox's **ICE Chat**
folder (one task per mailbox shard) -> reconcile: the day's report accounts for every copy,
and the run fails if one failed.

The run for day D starts after D ends (its logical date is D). Trigger a day by hand with
the ``day`` param (``YYYY-MM-DD``), or backfill a range. Days run side by side (a day waiting
for ICE holds no worker slot); one mailbox is imported into by one day at a time. A scheduled
run also starts a run for each day since ``icechat_go_live`` that has no report and no run
(days missed while the scheduler was down or the DAG paused). Re-running a day imports only
what is missing. This file only wires tasks; the work is in the ``icechat`` package.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task

from icechat.glue.limits import graph_task_limits
from icechat.glue.sensor import IceChatDeliverySensor
from icechat.mapping.shards import MAX_SHARDS

DAG_ID = "icechat_archive"
DAYS_AT_ONCE = 8  # runs in progress at once (scheduled, manual, catch-up); backfills count apart
# Import tasks at once across all runs (a day's shards, all at once), unless
# icechat_graph_pool names a pool.
IMPORT_TASKS = MAX_SHARDS


@dag(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=DAYS_AT_ONCE,
    doc_md=__doc__,
    tags=["icechat", "compliance"],
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Day (UTC)",
            description="The ICE export day to process; empty = the run's logical date.",
        ),
    },
    default_args={
        "owner": "compliance",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
)
def icechat_archive() -> None:
    @task
    def resolve_day(**context: object) -> str:
        from icechat.glue import tasks

        return tasks.start_day(context).isoformat()

    @task
    def fetch(day: str) -> dict:
        from icechat.glue import tasks

        return tasks.fetch(tasks.parse_day(day))

    @task
    def decrypt(day: str, fetched: dict) -> list:
        from icechat.glue import tasks

        return tasks.decrypt_and_unpack(tasks.parse_day(day), fetched)

    @task
    def parse_render(day: str, parts: list) -> dict:
        from icechat.glue import tasks

        return tasks.parse_and_render(tasks.parse_day(day), parts)

    @task
    def map_participants(day: str, rendered: dict, **context: object) -> dict:
        from icechat.glue import tasks

        return tasks.plan(tasks.parse_day(day), rendered, context)

    @task
    def shards(plan: dict) -> list:
        return plan["shards"]

    @task(retries=5, max_active_tis_per_dagrun=MAX_SHARDS, **graph_task_limits(IMPORT_TASKS))
    def import_shard(shard: str, day: str, **context: object) -> dict:
        from icechat.glue import tasks

        return tasks.import_shard(tasks.parse_day(day), shard, context)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def reconcile(day: str, upstream: dict, results: list, **context: object) -> dict:
        from icechat.glue import tasks

        shard_results = [results[i] for i in range(len(results))] if results else []
        return tasks.reconcile(tasks.parse_day(day), upstream, shard_results, context)

    @task
    def missed_days(**context: object) -> list:
        from icechat.glue import tasks

        return tasks.missed_days(context)

    TriggerDagRunOperator.partial(
        task_id="catch_up", trigger_dag_id=DAG_ID, skip_when_already_exists=True, retries=0
    ).expand_kwargs(missed_days())

    day = resolve_day()
    wait = IceChatDeliverySensor(task_id="wait_for_export", day=day, retries=0)
    fetched = fetch(day)
    wait >> fetched
    parts = decrypt(day, fetched)
    rendered = parse_render(day, parts)
    plan = map_participants(day, rendered)
    imported = import_shard.partial(day=day).expand(shard=shards(plan))
    # Each result by its task's id, in DAG order; None names the task the day stopped at.
    upstream = (wait.output, fetched, parts, rendered, plan)
    reconcile(
        day, upstream={result.operator.task_id: result for result in upstream}, results=imported
    )


icechat_archive()
