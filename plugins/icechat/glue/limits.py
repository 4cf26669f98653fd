"""Where the Graph tasks run and how many at once, read when a DAG file is parsed.

Without ``icechat_graph_pool`` they run in Airflow's ``default_pool``, at most ``cap`` of
each task at once across all runs of its DAG (``max_active_tis_per_dag``): a deployment that
never created a pool still imports. Naming a pool in the variable puts them in that pool
instead, whose slots then bound them across the deployment; create it first (Airflow never
starts a task of a pool that does not exist, and says so only in the scheduler's log).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Variable

from icechat.settings import graph_pool


def graph_task_limits(cap: int) -> dict[str, Any]:
    """The task arguments that bound a Graph task: the named pool, else ``cap`` at once."""
    pool = graph_pool(lambda name: Variable.get(name, default=None))
    if pool is not None:
        return {"pool": pool}
    return {"max_active_tis_per_dag": cap}
