"""The import ledger: one row per (mailbox, item key) and one per run, on SQLAlchemy Core.

It is the audit trail and what makes re-runs safe: a copy goes sent -> done (with the Graph
id), or ends not_mapped / failed with a reason; one row per run records the files it read,
its counts and timings. Each row names the run and the attempt (Airflow's clear number of
that run) that last wrote it; a done copy keeps the attempt that created it. The import
reads back the rows it needs (:meth:`Ledger.lookup`), verification a day's copies and runs.
SQLite by default, Postgres (or any SQLAlchemy URL) in deployment. The schema is versioned
in its own table; opening a ledger of an older version upgrades it. The same database holds
the per-mailbox leases (see :mod:`icechat.leases`).

So that it can answer "where did this chat item go?", the map step also records each
copy's route (item key, participant ImId -> mailbox and its address) and the MessageIDs
behind each item key; :class:`LedgerReader` searches them read-only. These two tables
were added without a schema version change: an older icechat ignores them (and opening an
older ledger narrows their routes-by-mailbox index, see :meth:`Ledger._upgrade`). A day's
millions of them are written :data:`ROWS_PER_COMMIT` at a time.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from icechat.chunks import batches, chunks
from icechat.exceptions import LedgerError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# Columns added since version 1, by table: what an upgrade adds to an older ledger.
_ADDED_COLUMNS = {"icechat_copies": ("attempt",), "icechat_runs": ("attempt",)}
# Keys per statement when looking up many copies at once (under SQLite's 999 binds).
CHUNK = 200
# Rows per transaction when recording a day's routes and MessageIDs (millions at a time).
ROWS_PER_COMMIT = 20_000
_LOCK_ID = 0x1CEC4A7  # Postgres advisory lock taken while creating the schema
# Routes by mailbox, for the search. It once also held the item key: as wide as the primary
# key and, keys being hashes, written at random places, it made recording a large day's
# routes slow; an upgrade replaces the old one.
_ROUTES_BY_MAILBOX = "ix_icechat_routes_mailbox"
# How long an SQLite connection waits for another one's lock (its busy timeout, seconds).
_SQLITE_WAIT = 60


class CopyState(StrEnum):
    """Where a copy stands in the import protocol."""

    SENT = "sent"
    DONE = "done"
    NOT_MAPPED = "not_mapped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CopyRecord:
    """A copy's ledger row."""

    mailbox: str
    item_key: str
    day: date
    state: CopyState
    graph_id: str | None
    reason: str | None
    run_id: str | None
    updated_at: datetime
    created_at: datetime | None = None
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """One copy to move to a state: its key, day, and the Graph id or reason if any."""

    item_key: str
    day: date
    graph_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file a run read: its name, size and SHA-256, and its retention lock if it has one."""

    name: str
    size: int
    sha256: str
    lock_mode: str | None = None
    retain_until: str | None = None


def _file_row(record: FileRecord) -> dict[str, Any]:
    row: dict[str, Any] = {"name": record.name, "size": record.size, "sha256": record.sha256}
    if record.lock_mode:
        row |= {"lock_mode": record.lock_mode, "retain_until": record.retain_until}
    return row


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a day: the files it read, its counts and timings."""

    run_id: str
    day: date
    started_at: datetime
    finished_at: datetime | None
    files: tuple[FileRecord, ...]
    counts: dict[str, int]
    timings: dict[str, float]
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """Who holds a mailbox's lease, and until when (UTC)."""

    mailbox: str
    holder: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Route:
    """Where one participant's copy of an item goes: a mailbox (its user id and address).

    ``mailbox`` is the ledger's mailbox of the copy (``unmapped:{ImId}`` when not mapped);
    ``address`` the mailbox's address, or the participant's own when not mapped.
    """

    item_key: str
    im_id: str
    mailbox: str
    address: str | None


@dataclass(frozen=True, slots=True)
class FoundCopy:
    """A search hit: one participant's copy of an item and what the ledger knows of it.

    ``state`` is None while the copy is routed but not yet imported.
    """

    day: date
    item_key: str
    message_ids: tuple[str, ...]
    im_id: str
    mailbox: str
    address: str | None
    state: CopyState | None
    reason: str | None
    run_id: str | None
    graph_id: str | None
    updated_at: datetime | None


def _tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table, sa.Table]:
    version = sa.Table(
        "icechat_schema_version",
        metadata,
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )
    copies = sa.Table(
        "icechat_copies",
        metadata,
        sa.Column("mailbox", sa.String(320), primary_key=True),
        sa.Column("item_key", sa.String(512), primary_key=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("graph_id", sa.String(512)),
        sa.Column("reason", sa.Text),
        sa.Column("run_id", sa.String(250)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer),
    )
    runs = sa.Table(
        "icechat_runs",
        metadata,
        sa.Column("run_id", sa.String(250), primary_key=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("attempt", sa.Integer),
    )
    leases = sa.Table(
        "icechat_mailbox_leases",
        metadata,
        sa.Column("mailbox", sa.String(320), primary_key=True),
        sa.Column("holder", sa.String(250), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    return version, copies, runs, leases


def _search_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    routes = sa.Table(
        "icechat_routes",
        metadata,
        sa.Column("item_key", sa.String(512), primary_key=True),
        sa.Column("im_id", sa.String(320), primary_key=True),
        sa.Column("mailbox", sa.String(320), primary_key=True),
        sa.Column("address", sa.String(320), index=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Index("ix_icechat_routes_im_id", "im_id"),
        sa.Index(_ROUTES_BY_MAILBOX, "mailbox"),
    )
    messages = sa.Table(
        "icechat_messages",
        metadata,
        sa.Column("message_id", sa.String(512), primary_key=True),
        sa.Column("item_key", sa.String(512), primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Index("ix_icechat_messages_item_key", "item_key"),
    )
    return routes, messages


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _execute_many(conn: sa.Connection, stmt: sa.Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute an insert ``stmt`` once per row; every row must have the same keys, all columns
    of the table (SQLAlchemy would silently drop an unknown one).

    On SQLite the rows go straight to the driver's ``executemany``: SQLAlchemy's per-row
    parameter handling cost as much as SQLite's own work on a day of millions of rows.
    Elsewhere (Postgres), or when a column left out has a default computed in Python,
    SQLAlchemy executes the rows itself (on Postgres batched into multi-row statements).
    """
    if not rows:
        return
    keys = rows[0].keys()
    if unknown := keys - stmt.table.c.keys():
        raise ValueError(
            f"rows to insert into {stmt.table} have keys {sorted(unknown)}: no columns"
        )
    if (odd := next((row for row in rows if row.keys() != keys), None)) is not None:
        raise ValueError(
            f"rows to insert into {stmt.table} differ in keys: {sorted(odd)}, {sorted(keys)}"
        )
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
    if conn.dialect.name != "sqlite" or compiled.insert_prefetch:
        conn.execute(stmt, rows)
        return
    # Each placeholder in order: from the row or fixed in the statement (a WHERE's value),
    # and how the dialect stores it (dates as SQLAlchemy's text on SQLite, not the driver's).
    dialect = conn.dialect
    binds = [compiled.binds[name] for name in compiled.positiontup or ()]
    order = [
        (
            b.key in keys,
            b.key,
            b.effective_value,
            b.type.dialect_impl(dialect).bind_processor(dialect),
        )
        for b in binds
    ]
    params = []
    for row in rows:
        values = []
        for from_row, key, fixed, process in order:
            value = row[key] if from_row else fixed
            values.append(process(value) if process else value)
        params.append(tuple(values))
    conn.exec_driver_sql(str(compiled), params)


def _enter_wal(dbapi_connection: sqlite3.Connection, wait: float = _SQLITE_WAIT) -> None:
    """Put a new SQLite connection in WAL mode, waiting out a peer that holds the file.

    While the last connection to a WAL database cleans up on close, or the first one after
    a crash recovers it, SQLite answers a newcomer "database is locked" at once, without
    its busy handler (sqlite.org/wal.html, "Sometimes Queries Return SQLITE_BUSY In WAL
    Mode"): tasks opening one ledger side by side would fail. Retry for the busy timeout.
    """
    deadline = time.monotonic() + wait
    pause = 0.005
    cursor = dbapi_connection.cursor()
    try:
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the ledger URL; SQLite files get WAL and a long busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"timeout": _SQLITE_WAIT, "check_same_thread": False},
            pool_size=8,
            max_overflow=-1,
        )
        sa.event.listen(engine, "connect", lambda conn, _record: _enter_wal(conn))
        return engine
    return sa.create_engine(url, pool_size=8, max_overflow=8, pool_timeout=600, pool_pre_ping=True)


def stored_schema_version(url: str, *, schema: str | None = None) -> int | None:
    """The schema version a ledger holds, ``None`` before its first run; reads, never writes."""
    where = sa.engine.make_url(url).render_as_string(hide_password=True)
    version, *_ = _tables(sa.MetaData(schema=schema))
    try:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(version.name, schema=schema):
                    return None
                found = conn.execute(sa.select(sa.func.max(version.c.version))).scalar()
        finally:
            engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise LedgerError(
            f"ledger at {where} cannot be read ({type(exc).__name__}: {reason}); check the "
            "icechat_ledger connection (host, port, login, password, database)"
        ) from exc
    return None if found is None else int(found)


class Ledger:
    """Reads and writes the ledger; safe to share between threads of one process.

    ``schema`` puts the tables in a database schema (Postgres), which must exist.
    """

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        backend = sa.engine.make_url(url).get_backend_name()
        if backend not in ("postgresql", "sqlite"):
            raise LedgerError(
                f"ledger URL for {backend!r}: only SQLite and Postgres ledgers are supported"
            )
        self.engine = make_engine(url)
        self._metadata = sa.MetaData(schema=schema)
        self._version, self._copies, self._runs, self._leases = _tables(self._metadata)
        self._routes, self._messages = _search_tables(self._metadata)
        self._insert = postgresql.insert if backend == "postgresql" else sqlite.insert
        # SQLite has one writer at a time and makes waiting writers poll with growing sleeps;
        # queueing this process's writers on a lock hands the database over at once.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if backend == "sqlite" else nullcontext()
        )
        self._ensure_schema()

    @property
    def where(self) -> str:
        """The ledger's URL with any password hidden, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the ledger's database connections."""
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        try:
            with self.engine.begin() as conn:
                # One writer creates the schema; the others wait and then find it complete.
                if self.engine.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_ID)))
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                self._metadata.create_all(conn, checkfirst=True)
                self._upgrade(conn)
                conn.execute(
                    self._insert(self._version)
                    .values(version=SCHEMA_VERSION, applied_at=_now())
                    .on_conflict_do_nothing()
                )
                found = conn.execute(sa.select(sa.func.max(self._version.c.version))).scalar()
        except sa.exc.OperationalError as exc:
            raise LedgerError(f"ledger at {self.where} cannot be opened: {exc.orig}") from exc
        if found != SCHEMA_VERSION:
            raise LedgerError(
                f"ledger at {self.where} has schema version {found}; this icechat "
                f"writes version {SCHEMA_VERSION}: upgrade icechat or use a new ledger"
            )

    def _upgrade(self, conn: sa.Connection) -> None:
        """Add the columns an older ledger lacks (its rows keep NULL there: attempt unknown),
        and narrow its routes-by-mailbox index to the mailbox."""
        inspector = sa.inspect(conn)
        for table in (self._copies, self._runs):
            present = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
            for name in _ADDED_COLUMNS[table.name]:
                if name in present:
                    continue
                column = table.c[name]
                target = conn.dialect.identifier_preparer.format_table(table)
                kind = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {target} ADD COLUMN {name} {kind}")
                log.info("ledger at %s: added column %s.%s", self.where, table.name, name)
        routes = self._routes
        by_mailbox = next(i for i in routes.indexes if i.name == _ROUTES_BY_MAILBOX)
        for index in inspector.get_indexes(routes.name, schema=routes.schema):
            if index["name"] == _ROUTES_BY_MAILBOX and index["column_names"] != ["mailbox"]:
                # Inside the schema transaction: every task opening the ledger waits for it.
                count = conn.execute(sa.select(sa.func.count()).select_from(routes)).scalar()
                log.warning(
                    "ledger at %s: rebuilding the routes index of %s rows; other tasks wait "
                    "until it ends (see the README's upgrade notes)",
                    self.where,
                    count,
                )
                by_mailbox.drop(conn)
                by_mailbox.create(conn)
                log.info(
                    "ledger at %s: narrowed index %s to the mailbox", self.where, index["name"]
                )

    # Copies

    def lookup(self, mailbox: str, keys: Iterable[str]) -> dict[str, CopyRecord]:
        """The ledger rows of ``mailbox`` for ``keys`` (absent keys are left out)."""
        c = self._copies
        found: dict[str, CopyRecord] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(dict.fromkeys(keys)), CHUNK):
                rows = conn.execute(
                    sa.select(c).where(c.c.mailbox == mailbox, c.c.item_key.in_(chunk))
                )
                for row in rows:
                    found[row.item_key] = self._record(row)
        return found

    def mark_sent(
        self, mailbox: str, marks: Sequence[Mark], run_id: str, *, attempt: int | None = None
    ) -> None:
        """Record that a create is about to be sent (never downgrades a done copy)."""
        self._write({mailbox: marks}, CopyState.SENT, run_id, attempt)

    def mark_done(
        self, mailbox: str, marks: Sequence[Mark], run_id: str, *, attempt: int | None = None
    ) -> None:
        """Record copies as in the mailbox, with their Graph ids, created by this run attempt."""
        self._write({mailbox: marks}, CopyState.DONE, run_id, attempt)

    def mark_failed(
        self, mailbox: str, marks: Sequence[Mark], run_id: str, *, attempt: int | None = None
    ) -> None:
        """Record copies that could not be imported, with the reason."""
        self._write({mailbox: marks}, CopyState.FAILED, run_id, attempt)

    def mark_not_mapped_in(
        self,
        by_mailbox: Mapping[str, Sequence[Mark]],
        run_id: str,
        *,
        attempt: int | None = None,
    ) -> None:
        """Record copies with no Microsoft 365 mailbox to go to, with the reason, for many
        mailboxes in one transaction (the map step's batches span hundreds of participants)."""
        self._write(by_mailbox, CopyState.NOT_MAPPED, run_id, attempt)

    def _write(
        self,
        by_mailbox: Mapping[str, Sequence[Mark]],
        state: CopyState,
        run_id: str,
        attempt: int | None,
    ) -> None:
        """Upsert the copies' rows in ``state``, in one transaction; a done copy is never
        changed again."""
        if not any(by_mailbox.values()):
            return
        c = self._copies
        now = _now()
        stmt = self._insert(c)
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.c.mailbox, c.c.item_key],
            set_={
                "state": stmt.excluded.state,
                "graph_id": stmt.excluded.graph_id,
                "reason": stmt.excluded.reason,
                "run_id": stmt.excluded.run_id,
                "attempt": stmt.excluded.attempt,
                "updated_at": stmt.excluded.updated_at,
            },
            where=c.c.state != CopyState.DONE.value,
        )
        rows = [
            {
                "mailbox": mailbox,
                "item_key": m.item_key,
                "day": m.day,
                "state": state.value,
                "graph_id": m.graph_id,
                "reason": m.reason,
                "run_id": run_id,
                "attempt": attempt,
                "created_at": now,
                "updated_at": now,
            }
            for mailbox, marks in by_mailbox.items()
            for m in marks
        ]
        with self._write_lock, self.engine.begin() as conn:
            _execute_many(conn, stmt, rows)

    def reopen(self, mailbox: str, marks: Sequence[Mark], run_id: str) -> None:
        """Turn done copies that verification found missing into failed ones, with the reason.

        The import protocol skips done copies; a reopened one is looked up and created again
        (``icechat verify --repair``). The Graph id of the lost item stays until then.
        """
        if not marks:
            return
        c = self._copies
        with self._write_lock, self.engine.begin() as conn:
            for m in marks:
                conn.execute(
                    sa.update(c)
                    .where(
                        c.c.mailbox == mailbox,
                        c.c.item_key == m.item_key,
                        c.c.state == CopyState.DONE.value,
                    )
                    .values(
                        state=CopyState.FAILED.value,
                        reason=m.reason,
                        run_id=run_id,
                        attempt=None,
                        updated_at=_now(),
                    )
                )

    def copies(self, day: date) -> Iterator[CopyRecord]:
        """Every copy of ``day``, by mailbox and key (streamed)."""
        c = self._copies
        with self.engine.connect() as conn:
            rows = conn.execution_options(yield_per=1000).execute(
                sa.select(c).where(c.c.day == day).order_by(c.c.mailbox, c.c.item_key)
            )
            for row in rows:
                yield self._record(row)

    @staticmethod
    def _record(row: sa.Row[Any]) -> CopyRecord:
        return CopyRecord(
            mailbox=row.mailbox,
            item_key=row.item_key,
            day=row.day,
            state=CopyState(row.state),
            graph_id=row.graph_id,
            reason=row.reason,
            run_id=row.run_id,
            updated_at=_aware(row.updated_at),
            created_at=_aware(row.created_at),
            attempt=row.attempt,
        )

    # What the search needs: routes and MessageIDs

    def record_routes(self, day: date, routes: Iterable[Route]) -> None:
        """Record where each participant's copy goes (a route already known is kept)."""
        rows = (
            {
                "item_key": r.item_key,
                "im_id": r.im_id,
                "mailbox": r.mailbox,
                "address": r.address.casefold() if r.address else None,
                "day": day,
            }
            for r in routes
        )
        self._insert_new(self._routes, ("item_key", "im_id", "mailbox"), rows)

    def routes(self, day: date) -> dict[tuple[str, str], list[str]]:
        """(mailbox, item key) -> the ImIds whose copy went there, as the day's mapping
        recorded them (empty for days archived before routes were recorded)."""
        r = self._routes
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(r.c.mailbox, r.c.item_key, r.c.im_id)
                .where(r.c.day == day)
                .order_by(r.c.mailbox, r.c.item_key, r.c.im_id)
            )
            for mailbox, key, im_id in rows:
                found[(mailbox, key)].append(im_id)
        return dict(found)

    def record_messages(self, day: date, pairs: Iterable[tuple[str, str]]) -> None:
        """Record the ICE MessageIDs behind each item key: (MessageID, item key) pairs."""
        rows = ({"message_id": m, "item_key": k, "day": day} for m, k in pairs)
        self._insert_new(self._messages, ("message_id", "item_key"), rows)

    def _insert_new(
        self, table: sa.Table, keys: tuple[str, ...], rows: Iterable[dict[str, Any]]
    ) -> None:
        """Insert the rows whose key is not there yet, :data:`ROWS_PER_COMMIT` per transaction.

        A day's millions of rows in one transaction grew SQLite's write-ahead log past 2 GB
        and kept every other writer out until the end; a write cut short between batches
        keeps the batches before it, and the same write again adds only the rest.
        """
        stmt = self._insert(table).on_conflict_do_nothing(index_elements=list(keys))
        for batch in batches(rows, ROWS_PER_COMMIT):
            with self._write_lock, self.engine.begin() as conn:
                _execute_many(conn, stmt, batch)

    # Runs

    def start_run(
        self,
        run_id: str,
        day: date,
        files: Sequence[FileRecord],
        *,
        attempt: int | None = None,
    ) -> None:
        """Record the start of a run of ``day`` over ``files`` (a re-start or a cleared
        re-run, the next ``attempt``, replaces it)."""
        r = self._runs
        values: dict[str, Any] = {
            "run_id": run_id,
            "attempt": attempt,
            "day": day,
            "started_at": _now(),
            "finished_at": None,
            "files": [_file_row(f) for f in files],
            "counts": {},
            "timings": {},
        }
        stmt = self._insert(r).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[r.c.run_id], set_={k: v for k, v in values.items() if k != "run_id"}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def finish_run(
        self, run_id: str, counts: Mapping[str, int], timings: Mapping[str, float]
    ) -> None:
        """Record a run's counts and timings (seconds per stage) as it ends."""
        r = self._runs
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(r)
                .where(r.c.run_id == run_id)
                .values(finished_at=_now(), counts=dict(counts), timings=dict(timings))
            ).rowcount
        if updated != 1:
            raise LedgerError(f"ledger has no run {run_id!r}: call start_run first")

    def runs(self, day: date) -> list[RunRecord]:
        """Every recorded run of ``day``, oldest first."""
        r = self._runs
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(r).where(r.c.day == day).order_by(r.c.started_at, r.c.run_id)
            ).all()
        return [self._run_record(row) for row in rows]

    @staticmethod
    def _run_record(row: sa.Row[Any]) -> RunRecord:
        return RunRecord(
            run_id=row.run_id,
            day=row.day,
            started_at=_aware(row.started_at),
            finished_at=_aware(row.finished_at) if row.finished_at else None,
            files=tuple(FileRecord(**f) for f in row.files),
            counts=dict(row.counts),
            timings=dict(row.timings),
            attempt=row.attempt,
        )

    # Mailbox leases (see icechat.leases)

    def acquire_leases(
        self, mailboxes: Iterable[str], holder: str, *, now: datetime, until: datetime
    ) -> set[str]:
        """Give ``holder`` the lease of each mailbox that is free, expired or already its own,
        until ``until``; the mailboxes ``holder`` holds afterwards.

        One upsert per mailbox (in a fixed order, so two holders never deadlock on Postgres):
        of two processes racing for a mailbox, exactly one gets it.
        """
        wanted = sorted(set(mailboxes))
        if not wanted:
            return set()
        lease = self._leases
        stmt = self._insert(lease)
        stmt = stmt.on_conflict_do_update(
            index_elements=[lease.c.mailbox],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=sa.or_(lease.c.expires_at <= now, lease.c.holder == holder),
        )
        rows = [{"mailbox": m, "holder": holder, "expires_at": until} for m in wanted]
        with self._write_lock, self.engine.begin() as conn:
            for row in rows:
                conn.execute(stmt, row)
            held = conn.execute(
                sa.select(lease.c.mailbox).where(
                    lease.c.mailbox.in_(wanted), lease.c.holder == holder
                )
            )
            return {m for (m,) in held}

    def renew_leases(self, mailboxes: Iterable[str], holder: str, *, until: datetime) -> set[str]:
        """Extend ``holder``'s leases of ``mailboxes``; those it still held (none taken over)."""
        wanted = sorted(set(mailboxes))
        if not wanted:
            return set()
        lease = self._leases
        mine = sa.and_(lease.c.mailbox.in_(wanted), lease.c.holder == holder)
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(sa.update(lease).where(mine).values(expires_at=until))
            return {m for (m,) in conn.execute(sa.select(lease.c.mailbox).where(mine))}

    def release_leases(self, mailboxes: Iterable[str], holder: str) -> None:
        """Give up ``holder``'s leases of ``mailboxes`` (another holder's are left alone)."""
        wanted = sorted(set(mailboxes))
        if not wanted:
            return
        lease = self._leases
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                sa.delete(lease).where(lease.c.mailbox.in_(wanted), lease.c.holder == holder)
            )

    def leases(self, mailboxes: Iterable[str]) -> dict[str, LeaseRecord]:
        """The recorded leases of ``mailboxes`` (expired ones included)."""
        lease = self._leases
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(lease).where(lease.c.mailbox.in_(sorted(set(mailboxes)))))
            return {
                row.mailbox: LeaseRecord(row.mailbox, row.holder, _aware(row.expires_at))
                for row in rows
            }


class LedgerReader:
    """Read-only queries for the operator's view; never creates or changes anything.

    A ledger whose search tables do not exist yet (no run of this icechat) finds nothing.
    """

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        parsed = sa.engine.make_url(url)
        # Connecting to a SQLite file that is not there would create it: look first.
        self._sqlite_file = (
            Path(parsed.database or "") if parsed.get_backend_name() == "sqlite" else None
        )
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._schema = schema
        metadata = sa.MetaData(schema=schema)
        _, self._copies, _, _ = _tables(metadata)
        self._routes, self._messages = _search_tables(metadata)

    @property
    def where(self) -> str:
        """The ledger's URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def search(self, text: str, *, limit: int = 500) -> list[FoundCopy]:
        """Copies of the item with this MessageID or key, of this ImId, or in this mailbox.

        ``text`` is matched exactly (a mailbox address in any case). At most ``limit``
        hits, by day, item and address.
        """
        text = text.strip()
        if not text or (self._sqlite_file is not None and not self._sqlite_file.is_file()):
            return []
        r, c, m = self._routes, self._copies, self._messages
        try:
            with self.engine.connect() as conn:
                inspector = sa.inspect(conn)
                if not all(inspector.has_table(t.name, schema=self._schema) for t in (r, c, m)):
                    return []
                by_message = sa.select(m.c.item_key).where(m.c.message_id == text)
                rows = conn.execute(
                    sa.select(r, c.c.state, c.c.reason, c.c.run_id, c.c.graph_id, c.c.updated_at)
                    .select_from(
                        r.outerjoin(
                            c, sa.and_(c.c.mailbox == r.c.mailbox, c.c.item_key == r.c.item_key)
                        )
                    )
                    .where(
                        sa.or_(
                            r.c.item_key.in_(by_message),
                            r.c.item_key == text,
                            r.c.im_id == text,
                            r.c.address == text.casefold(),
                            r.c.mailbox == text,
                        )
                    )
                    .order_by(r.c.day, r.c.item_key, r.c.address, r.c.im_id)
                    .limit(limit)
                ).all()
                ids = self._message_ids(conn, sorted({row.item_key for row in rows}))
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                f"ledger at {self.where} cannot be searched ({type(exc).__name__}: "
                f"{getattr(exc, 'orig', None) or exc}); check the icechat_ledger connection"
            ) from exc
        return [
            FoundCopy(
                day=row.day,
                item_key=row.item_key,
                message_ids=ids.get(row.item_key, ()),
                im_id=row.im_id,
                mailbox=row.mailbox,
                address=row.address,
                state=CopyState(row.state) if row.state else None,
                reason=row.reason,
                run_id=row.run_id,
                graph_id=row.graph_id,
                updated_at=_aware(row.updated_at) if row.updated_at else None,
            )
            for row in rows
        ]

    def _message_ids(self, conn: sa.Connection, keys: Sequence[str]) -> dict[str, tuple[str, ...]]:
        m = self._messages
        found: dict[str, list[str]] = {}
        for chunk in chunks(keys, CHUNK):
            query = sa.select(m.c.item_key, m.c.message_id).where(m.c.item_key.in_(chunk))
            for key, message_id in conn.execute(query.order_by(m.c.message_id)):
                found.setdefault(key, []).append(message_id)
        return {k: tuple(v) for k, v in found.items()}
