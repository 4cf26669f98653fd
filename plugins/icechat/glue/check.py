"""``icechat check`` in a deployment: each check's core objects, built from the connections.

Runs in a plain process (no task), so it reads connections as ``airflow connections test``
does: environment variables, any secrets backend, and the metadata database.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from airflow.sdk import BaseHook, Variable
from airflow.sdk.exceptions import AirflowNotFoundException

from icechat.checks import (
    CheckResult,
    Status,
    check_graph_app,
    check_graph_mailbox,
    check_ledger,
    check_pgp,
    check_sftp,
    failed,
    passed,
)
from icechat.exceptions import IceChatError
from icechat.glue.connections import (
    GRAPH_CONN_ID,
    SFTP_CONN_ID,
    TEST_POLICY,
    graph_settings,
    ledger_url,
    load_settings,
    mapping_table,
    open_site,
    pgp_key,
)
from icechat.graph.client import GraphClient
from icechat.settings import GRAPH_POOL, Settings, graph_pool


def _metadata_db_ready() -> bool:
    """Whether this process reaches an initialised Airflow metadata database."""
    from airflow import settings

    try:
        # Airflow leaves get_engine unannotated; it returns the configured SQLAlchemy Engine.
        with settings.get_engine().connect() as conn:  # type: ignore[no-untyped-call]
            return bool(sa.inspect(conn).has_table("connection"))
    except sa.exc.SQLAlchemyError:
        return False


def use_metadata_connections() -> None:
    """Let a command outside a task read connections from the metadata database too.

    As ``airflow connections test`` does; environment variables and secrets backends count
    either way.
    """
    if _metadata_db_ready():
        os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"


def _missing(conn_id: str) -> bool:
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return True
    return False


def _sftp(settings: Settings) -> CheckResult:
    if _missing(SFTP_CONN_ID):
        return failed(
            "sftp",
            f"connection {SFTP_CONN_ID} is not defined: add it (type sftp; host, port, login = "
            "firm code, private_key or password, host_key = the server's public key)",
        )
    return check_sftp(lambda: open_site(connect_attempts=1), settings.remote_dir)


def _pgp() -> CheckResult:
    try:
        key = pgp_key()
    except IceChatError as exc:
        return failed("pgp", str(exc))
    return check_pgp(key)


def _graph(settings: Settings, mailbox: str | None) -> list[CheckResult]:
    if _missing(GRAPH_CONN_ID):
        return [
            failed(
                "graph",
                f"connection {GRAPH_CONN_ID} is not defined: add it (login = application id, "
                "password = client secret, extra tenant_id)",
            )
        ]
    try:
        if mailbox is None and (table := mapping_table(settings)) is not None and table.entries:
            mailbox = next(iter(table.entries.values()))[0]
        with GraphClient(graph_settings(), policy=TEST_POLICY) as client:
            app = check_graph_app(client)
            if not app.ok:
                return [app]
            if mailbox is None:
                skipped = CheckResult(
                    "graph mailbox",
                    Status.SKIP,
                    "no mailbox to try creating items in: pass --mailbox ADDRESS "
                    "(or set variable icechat_mapping_csv)",
                )
                return [app, skipped]
            return [app, check_graph_mailbox(client, mailbox, settings.folder_name)]
    except IceChatError as exc:
        return [failed("graph", str(exc))]


def _ledger(settings: Settings) -> CheckResult:
    try:
        url = ledger_url(settings)
    except IceChatError as exc:
        return failed("ledger", str(exc))
    return check_ledger(url)


def _pool() -> CheckResult:
    """Whether the pool ``icechat_graph_pool`` names exists.

    Airflow never starts a task of a missing pool and says so only in the scheduler's log,
    so the import would wait without a word.
    """
    try:
        name = graph_pool(lambda var: Variable.get(var, default=None))
    except IceChatError as exc:
        return failed("pool", str(exc))
    if name is None:
        return passed("pool", f"{GRAPH_POOL} is not set: the Graph tasks run in default_pool")
    if not _metadata_db_ready():
        return CheckResult(
            "pool",
            Status.SKIP,
            f"{GRAPH_POOL} names pool {name!r}, but Airflow's metadata database is not "
            "reachable from here to look it up: run icechat check in an Airflow container",
        )
    from airflow.models.pool import Pool

    pool: Pool | None = Pool.get_pool(name)
    if pool is None:
        return failed(
            "pool",
            f"{GRAPH_POOL} names pool {name!r}, which does not exist, so the import would "
            f'never start: `airflow pools set {name} 16 "Microsoft Graph import"`, or '
            "delete the variable to run in default_pool",
        )
    return passed("pool", f"{GRAPH_POOL}: pool {name!r} exists with {pool.slots} slot(s)")


def run_checks(mailbox: str | None = None) -> list[CheckResult]:
    """Every check, in the order a run meets the systems."""
    use_metadata_connections()
    try:
        settings = load_settings()
    except IceChatError as exc:
        return [failed("settings", str(exc))]
    return [_sftp(settings), _pgp(), *_graph(settings, mailbox), _ledger(settings), _pool()]
