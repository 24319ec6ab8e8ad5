"""Append-only rows written with the transaction: new requests, outbox events, audit rows,
idempotency records.

Nothing in the transaction reads them back by identity, so they skip the ORM's unit of work (its
per-object bookkeeping was most of a request's CPU) and go to the database together: just before
the next statement of the session (so a query in the same transaction sees them, as with
autoflush) or at commit. A rollback drops them with everything else.

How they go is the one thing that differs per database, because the round trips are what a
request pays for:
- PostgreSQL: one statement for all the tables (``WITH p0 AS (INSERT …), p1 AS (INSERT …)
  INSERT …``), so one round trip whatever the number of tables;
- SQLite: every INSERT in one call on the connection's thread (aiosqlite makes three trips per
  statement otherwise, and the writer holds SQLite's one write lock meanwhile);
- otherwise, or for big batches: one executemany per table.
"""

from __future__ import annotations

import sqlite3
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, event, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from broker.db.sqlite import on_thread

_KEY = "broker.pending_inserts"
#: Above this many bound values a single PostgreSQL statement is not worth it (its limit is 32,767).
_ONE_STATEMENT_MAX_PARAMS = 2_000

Pending = dict[Table, list[dict[str, Any]]]


def buffer_insert(session: AsyncSession | Session, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` with the session's transaction (before its next statement).
    The rows of one table must all have the same keys."""
    pending: Pending = session.info.setdefault(_KEY, {})
    pending.setdefault(table, []).append(row)


def _write(session: Session) -> None:
    pending: Pending | None = session.info.pop(_KEY, None)
    if not pending:
        return
    connection = session.connection()
    name = connection.dialect.name
    if name == "sqlite":
        _write_sqlite(connection, pending)
    elif name == "postgresql" and sum(len(r) * len(r[0]) for r in pending.values()) <= _ONE_STATEMENT_MAX_PARAMS:
        _write_one_statement(connection, pending)
    else:
        for table, rows in pending.items():
            connection.execute(insert(table), rows)


Shape = tuple[tuple[Table, int, tuple[str, ...]], ...]


@lru_cache(maxsize=256)
def _one_statement(shape: Shape, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """One INSERT per table, all but the last as its CTEs, compiled once per shape of rows (SQLAlchemy
    does not cache multi-row or DML-CTE statements: compiling them each time cost more than the
    round trips saved): the SQL, the order of its parameters and their converters."""
    inserts = [
        insert(table).values(
            [{k: bindparam(f"p{t}_{i}_{k}", type_=table.c[k].type) for k in keys} for i in range(count)]
        )
        for t, (table, count, keys) in enumerate(shape)
    ]
    *first, statement = inserts
    for t, ins in enumerate(first):
        statement = statement.add_cte(ins.cte(f"p{t}"))
    return _driver_form(statement.compile(dialect=dialect))


def _driver_form(compiled: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    processors = {k: p for k, p in compiled._bind_processors.items() if isinstance(k, str)}
    return compiled.string, tuple(compiled.positiontup or ()), processors


def _write_one_statement(connection: Connection, pending: Pending) -> None:
    shape = tuple((table, len(rows), tuple(rows[0])) for table, rows in pending.items())
    sql, order, processors = _one_statement(shape, connection.dialect)
    values = {
        f"p{t}_{i}_{k}": v
        for t, rows in enumerate(pending.values())
        for i, row in enumerate(rows)
        for k, v in row.items()
    }
    connection.exec_driver_sql(sql, tuple(processors[k](values[k]) if k in processors else values[k] for k in order))


@cache
def _compiled(table: Table, keys: tuple[str, ...], dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The INSERT of ``keys`` into ``table`` as the driver takes it: SQL, parameter order, converters."""
    return _driver_form(insert(table).compile(dialect=dialect, column_keys=list(keys)))


def _write_sqlite(connection: Connection, pending: Pending) -> None:
    batches = []
    for table, rows in pending.items():
        sql, order, processors = _compiled(table, tuple(rows[0]), connection.dialect)
        batches.append((sql, [
            tuple(processors[k](row[k]) if k in processors else row[k] for k in order) for row in rows
        ]))

    def run(db: sqlite3.Connection) -> None:
        for sql, params in batches:
            db.executemany(sql, params)

    on_thread(connection, run, statement=batches[0][0])


@event.listens_for(Session, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    if _KEY in state.session.info:
        _write(state.session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _write(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: SessionTransaction) -> None:
    session.info.pop(_KEY, None)
