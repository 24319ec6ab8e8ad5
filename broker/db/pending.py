"""Append-only rows written with the transaction: outbox events, audit rows, idempotency records.

Nothing in the transaction reads them back by identity, so they skip the ORM's unit of work (its
per-object bookkeeping was most of a request's CPU) and go to the database as one multi-row Core
INSERT per table: just before the next statement of the session (so a query in the same transaction
sees them, as with autoflush) or at commit. A rollback drops them with everything else.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

_KEY = "broker.pending_inserts"


def buffer_insert(session: AsyncSession | Session, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` with the session's transaction (before its next statement)."""
    pending: dict[Table, list[dict[str, Any]]] = session.info.setdefault(_KEY, {})
    pending.setdefault(table, []).append(row)


def _write(session: Session) -> None:
    pending = session.info.pop(_KEY, None)
    if not pending:
        return
    connection = session.connection()
    for table, rows in pending.items():
        connection.execute(insert(table), rows)


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
