"""ICE Chat archive: one UTC day of ICE Chat into Microsoft 365 mailboxes.

wait for the day's export on the ICE SFTP site -> fetch into ``raw/`` -> decrypt and unpack ->
parse and render -> map participants to mailboxes -> import into each mailbox's **ICE Chat**
folder (one task per mailbox shard, capped by the ``icechat_graph`` pool) -> reconcile: the
day's report accounts for every copy, and the run fails if one failed.

The run for day D starts after D ends (its logical date is D). Trigger a day by hand with
the ``day`` param (``YYYY-MM-DD``), or backfill a range. Re-running a day imports only what is
missing. This file only wires tasks; the work is in the ``icechat`` package.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task

from icechat.glue.sensor import IceChatDeliverySensor


@dag(
    dag_id="icechat_archive",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
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

        return tasks.day_of(context).isoformat()

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

    @task(pool="icechat_graph", retries=5, max_active_tis_per_dagrun=8)
    def import_shard(shard: str, day: str, **context: object) -> dict:
        from icechat.glue import tasks

        return tasks.import_shard(tasks.parse_day(day), shard, context)

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def reconcile(day: str, upstream: dict, results: list, **context: object) -> dict:
        from icechat.glue import tasks

        shard_results = [results[i] for i in range(len(results))] if results else []
        return tasks.reconcile(tasks.parse_day(day), upstream, shard_results, context)

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
