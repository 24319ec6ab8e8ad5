"""Append-only rows written with the transaction: new requests, outbox events, audit rows,
idempotency records.

Nothing in the transaction reads them back by identity, so they skip the ORM's unit of work (its
per-object bookkeeping was most of a request's CPU) and go to the database together: just before
the next statement of the session (so a query in the same transaction sees them, as with
autoflush) or at commit. A rollback drops them with everything else.

How they go is the one thing that differs per database, because the round trips are what a
request pays for:
- PostgreSQL: one statement for all the tables (``WITH p0 AS (INSERT …), p1 AS (INSERT …)
  INSERT …``), so one round trip whatever the number of tables; at the commit of a transaction
  that wrote nothing else and has not begun on the server, that statement runs on its own
  (`broker.db.postgres.outside_transaction`): atomic by itself, without BEGIN and COMMIT;
- SQLite: at the commit of a transaction that wrote nothing else, the whole transaction (BEGIN
  IMMEDIATE, the INSERTs, COMMIT) in one trip to the writer thread (`broker.db.sqlite.WriteThread`):
  SQLite's one write lock is held only while SQLite works, and the requests of the process no
  longer queue for the pool's one writer connection through three trips each (this was what held a
  POST /v1/requests to about 240 a second on the embedded default); otherwise every INSERT in one
  call on the connection's thread (aiosqlite makes three trips per statement);
- otherwise, or for big batches: one executemany per table.
"""

from __future__ import annotations

import sqlite3
from contextlib import nullcontext
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, event, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.util import await_only

from broker.db.postgres import outside_transaction
from broker.db.sqlite import WRITE_THREAD, on_thread, raw

_KEY = "broker.pending_inserts"
_BEGUN = "broker.connection_begun"  # the session's transaction holds a connection
#: Above this many bound values a single PostgreSQL statement is not worth it (its limit is 32,767).
_ONE_STATEMENT_MAX_PARAMS = 2_000

Pending = dict[Table, list[dict[str, Any]]]


def buffer_insert(session: AsyncSession | Session, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` with the session's transaction (before its next statement).
    The rows of one table must all have the same keys."""
    pending: Pending = session.info.setdefault(_KEY, {})
    pending.setdefault(table, []).append(row)


def snapshot_pending(session: AsyncSession | Session) -> Pending | None:
    """The rows buffered in ``session``, when they are all its transaction holds (nothing begun on
    the server, no ORM change): what `restore_pending` puts back to commit again after a rollback.
    None otherwise."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    pending: Pending | None = sync.info.get(_KEY)
    if not pending or sync.info.get(_BEGUN) or sync.new or sync.dirty or sync.deleted:
        return None
    return {table: list(rows) for table, rows in pending.items()}


def restore_pending(session: AsyncSession | Session, pending: Pending) -> None:
    for table, rows in pending.items():
        for row in rows:
            buffer_insert(session, table, row)


def flush_pending(session: Session) -> None:
    """Write the buffered rows now (before statements that do not go through the session's
    ``execute``, e.g. on its connection in ``run_sync``)."""
    _write(session)


def _write(session: Session, *, commit: bool = False) -> None:
    pending: Pending | None = session.info.pop(_KEY, None)
    if not pending:
        return
    if (
        commit
        and (thread := session.info.get(WRITE_THREAD)) is not None
        and not session.info.get(_BEGUN)
        and not (session.new or session.dirty or session.deleted)
    ):
        # Nothing but these rows in the transaction (no statement yet, no ORM object to flush): it
        # runs whole on the writer thread, and the session's commit then has nothing to commit.
        batches = _sqlite_batches(thread.engine.dialect, pending)
        await_only(thread.run(raw(lambda db: _executemany(db, batches), statement=batches[0][0])))
        return
    connection = session.connection()
    name = connection.dialect.name
    if name == "sqlite":
        _write_sqlite(connection, pending)
    elif name == "postgresql" and sum(len(r) * len(r[0]) for r in pending.values()) <= _ONE_STATEMENT_MAX_PARAMS:
        # At a commit with nothing else to write, and no statement yet that began the transaction
        # (on PostgreSQL the Idempotency-Key lookup is deferred), this one statement is the transaction.
        alone = commit and not (session.new or session.dirty or session.deleted)
        with outside_transaction(connection) if alone else nullcontext():
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


Batches = list[tuple[str, list[tuple[Any, ...]]]]


def _sqlite_batches(dialect: Dialect, pending: Pending) -> Batches:
    """Each table's INSERT and its rows as the sqlite3 module takes them (built before the write)."""
    batches = []
    for table, rows in pending.items():
        sql, order, processors = _compiled(table, tuple(rows[0]), dialect)
        batches.append((sql, [
            tuple(processors[k](row[k]) if k in processors else row[k] for k in order) for row in rows
        ]))
    return batches


def _executemany(db: sqlite3.Connection, batches: Batches) -> None:
    for sql, params in batches:
        db.executemany(sql, params)


def _write_sqlite(connection: Connection, pending: Pending) -> None:
    batches = _sqlite_batches(connection.dialect, pending)
    on_thread(connection, lambda db: _executemany(db, batches), statement=batches[0][0])


@event.listens_for(Session, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    if _KEY in state.session.info:
        _write(state.session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _write(session, commit=True)


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, _transaction: SessionTransaction, _connection: Connection) -> None:
    session.info[_BEGUN] = True


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_BEGUN, None)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: SessionTransaction) -> None:
    session.info.pop(_KEY, None)
