"""PostgreSQL through asyncpg: fewer round trips than SQLAlchemy's defaults take.

Under load every round trip costs CPU on both sides (a send, a wake-up, the driver's and
SQLAlchemy's work per statement), and a request's CPU is what bounds the API. SQLAlchemy's asyncpg
adapter sends BEGIN lazily, with the first statement of a transaction; two things build on that:

- `ping_in_one_trip`: ``pool_pre_ping`` tests a connection with one empty statement instead of
  BEGIN, the statement and ROLLBACK;
- `outside_transaction`: statements that need no transaction (the Idempotency-Key lookup before a
  handler runs; a transaction made of one INSERT statement) run on their own, and the next
  statement still begins the transaction as usual. A transaction that only appends rows (see
  `broker.db.pending`) is then one statement: no BEGIN, no COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def ping_in_one_trip(engine: AsyncEngine) -> None:
    """``pool_pre_ping`` (still on, RELIABILITY R7.2) in one round trip. SQLAlchemy's asyncpg ping
    wraps its empty statement in BEGIN and ROLLBACK (for PgBouncer's transaction mode): three round
    trips at every checkout. Errors and disconnects are reported as before (by ``ping``)."""

    def do_ping(dbapi_connection: Any) -> bool:
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.ping()
        finally:
            dbapi_connection.autocommit = False
        return True

    engine.sync_engine.dialect.do_ping = do_ping  # type: ignore[method-assign]


@contextmanager
def outside_transaction(connection: Connection) -> Iterator[bool]:
    """While ``connection`` (asyncpg) has no transaction open on the server, the statements of this
    block run each on its own (autocommit): a single statement is atomic by itself. The session's
    next statement after the block begins its transaction as usual. Yields False, and changes
    nothing, when a transaction is already open (the statements then run in it) or for another
    driver."""
    record = connection.connection
    dbapi: Any = record.dbapi_connection
    driver: Any = record.driver_connection
    if (
        connection.dialect.driver != "asyncpg"
        or dbapi is None
        or driver is None
        or driver.is_in_transaction()
        or dbapi.autocommit
    ):
        yield False
        return
    dbapi.autocommit = True
    try:
        yield True
    finally:
        dbapi.autocommit = False
