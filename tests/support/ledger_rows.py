"""The ledger as an auditor reads it: its tables, with SQL.

The connector reads back only what the import needs (``Ledger.lookup``); tests check the
rest of the audit trail here, from the tables themselves.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import sqlalchemy as sa


def _table(engine: sa.Engine, name: str, schema: str | None) -> sa.Table:
    return sa.Table(name, sa.MetaData(schema=schema), autoload_with=engine)


def copy_states(engine: sa.Engine, day: date, schema: str | None = None) -> Counter[str]:
    """How many copies of ``day`` the ledger holds in each state."""
    copies = _table(engine, "icechat_copies", schema)
    query = sa.select(copies.c.state, sa.func.count()).where(copies.c.day == day)
    with engine.connect() as conn:
        return Counter({state: n for state, n in conn.execute(query.group_by(copies.c.state))})


def copy_mailboxes(engine: sa.Engine, day: date, schema: str | None = None) -> list[str]:
    """The mailbox of every copy of ``day``, in mailbox order."""
    copies = _table(engine, "icechat_copies", schema)
    query = sa.select(copies.c.mailbox).where(copies.c.day == day).order_by(copies.c.mailbox)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def run_row(engine: sa.Engine, run_id: str, schema: str | None = None) -> dict[str, Any] | None:
    """The ledger's row for run ``run_id``, if any."""
    runs = _table(engine, "icechat_runs", schema)
    with engine.connect() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).one_or_none()
    return None if row is None else dict(row._mapping)
