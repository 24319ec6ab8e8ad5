"""PostgreSQL through asyncpg: fewer round trips than SQLAlchemy's defaults take.

Under load every round trip costs CPU on both sides (a send, a wake-up, the driver's and
SQLAlchemy's work per statement), and a request's CPU is what bounds the API. SQLAlchemy's asyncpg
adapter sends BEGIN lazily, with the first statement of a transaction; two things build on that:

- `ping_in_one_trip`: ``pool_pre_ping`` tests a connection with one empty statement instead of
  BEGIN, the statement and ROLLBACK, and not at all when it was in use half a second ago;
- `POSTGRESQL_SESSION`: the plan cache's mode (a setting);
- `outside_transaction`: a statement that needs no transaction (a transaction made of one INSERT
  statement) runs on its own, and the next statement still begins the transaction as usual. A
  transaction that only appends rows (see `broker.db.pending`) is then one statement: no BEGIN, no
  COMMIT; with the Idempotency-Key lookup deferred (`broker.api.context`), that is the whole of a
  POST /v1/requests on the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

#: Settings of every PostgreSQL session of the broker (`server_settings`), ``plan_cache_mode`` from
#: ``BROKER_DATABASE_PLAN_CACHE_MODE``. asyncpg prepares every statement; with ``auto`` PostgreSQL
#: plans its first five executions for their values, then reuses one generic plan when it is no
#: dearer. The foreign-key checks of an INSERT are such statements too, run once per row.
#: Measured on POST /v1/requests (10,000 workshops, worker running), ``force_custom_plan`` against
#: ``auto``: PostgreSQL's time per POST 0.84 -> 0.41 ms with auto, per matched request 4.0 -> 2.5 ms
#: (a batch's 512 invitations: 1,024 foreign-key checks planned one by one).
#: What ``auto`` asks of the queries: a partial index's predicate written as a literal (see
#: `broker.db.models.is_pending`), and no generic plan that a small table makes cheap and a big one
#: ruinous. A generic plan lives until the table's next ANALYZE (autovacuum: when a tenth of it
#: changed, a minute at most under load), so a brand-new database that fills fast can run such a
#: plan for a minute; ``force_custom_plan`` rules that out at the price above.
POSTGRESQL_SESSION = {"plan_cache_mode": "auto"}


#: A connection that came back to the pool this recently is not pinged at its next checkout (as
#: HikariCP's ``aliveBypassWindowMs``, 500 ms by default): under load every checkout then skips the
#: round trip, and a connection idle for longer is tested as before.
PING_BYPASS_S = 0.5


def ping_in_one_trip(engine: AsyncEngine) -> None:
    """``pool_pre_ping`` (still on, RELIABILITY R7.2) in one round trip, and none for a connection
    back in the pool less than `PING_BYPASS_S` ago. SQLAlchemy's asyncpg ping wraps its empty
    statement in BEGIN and ROLLBACK (for PgBouncer's transaction mode): three round trips at every
    checkout. Errors and disconnects are reported as before (by ``ping``). A connection the server
    drops within the bypass window fails its next statement instead: the pool is invalidated and the
    API answers 503 (the client retries with its Idempotency-Key), as for a drop mid-request."""
    returned: dict[int, float] = {}  # id of a pooled DBAPI connection -> when it came back
    pool_events = engine.sync_engine.pool

    @event.listens_for(pool_events, "checkin")
    def _checked_in(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            returned[id(dbapi_connection)] = time.monotonic()

    @event.listens_for(pool_events, "close")
    def _closed(dbapi_connection: Any, _record: Any) -> None:
        returned.pop(id(dbapi_connection), None)  # its id may be reused by a new object

    @event.listens_for(pool_events, "close_detached")
    def _closed_detached(dbapi_connection: Any) -> None:
        returned.pop(id(dbapi_connection), None)

    def do_ping(dbapi_connection: Any) -> bool:
        back_at = returned.pop(id(dbapi_connection), None)
        if back_at is not None and time.monotonic() - back_at < PING_BYPASS_S:
            return True
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


def server_settings(application_name: str | None, plan_cache_mode: str | None = None) -> dict[str, str]:
    """asyncpg's ``server_settings`` for the broker's sessions: `POSTGRESQL_SESSION` (its
    ``plan_cache_mode`` replaced when given), and the process's ``application_name`` when given
    (pg_stat_activity)."""
    settings = dict(POSTGRESQL_SESSION)
    if plan_cache_mode:
        settings["plan_cache_mode"] = plan_cache_mode
    if application_name:
        settings["application_name"] = application_name
    return settings


def tune(engine: AsyncEngine) -> None:
    """The broker's asyncpg engine: the pre-ping of `ping_in_one_trip`, and an INSERT of many rows
    (a matching batch's invitations and events, a relay pass's deliveries) as multi-row statements
    (SQLAlchemy's "insertmanyvalues", up to 1,000 rows each) instead of one execution per row:
    planned and run once, not per row."""
    ping_in_one_trip(engine)
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
