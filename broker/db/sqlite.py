"""SQLite specifics that need the raw connection: work done in one call on aiosqlite's thread
(each statement through SQLAlchemy's adapter is three trips between the event loop and that
thread), taking the write lock without the busy handler's long sleeps, and whole write
transactions run on a thread of their own (`WriteThread`)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.util import await_only

T = TypeVar("T")

#: ``Session.info`` key of the writer sessions' `WriteThread` (SQLite on a file only).
WRITE_THREAD = "broker.write_thread"

#: Between tries for the write lock: short, then up to 4 ms (SQLite's own busy handler sleeps
#: 1, 2, 5, 10 … up to 100 ms, so a writer of another process often waited long after the lock
#: was free: the API stalled behind the worker).
_FIRST_WAIT_S = 0.0005
_MAX_WAIT_S = 0.004


def configure(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    """The settings of every connection to the broker's SQLite file: WAL (readers never wait for the
    writer), foreign keys, a busy timeout, ``synchronous=NORMAL`` (durable at checkpoints; WAL keeps
    the file consistent), and transaction control taken from the sqlite3 module so BEGIN is ours."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def on_thread(connection: Connection, work: Callable[[sqlite3.Connection], T], *, statement: str) -> T:
    """Run ``work`` on the connection's own thread in one trip (from sync code in SQLAlchemy's
    greenlet, as in session events); errors come out as SQLAlchemy would raise them."""
    driver: Any = connection.connection.driver_connection  # the aiosqlite connection
    return await_only(driver._execute(_translated(work, statement), driver._conn))  # type: ignore[no-any-return]


def _translated(work: Callable[[sqlite3.Connection], T], statement: str) -> Callable[[sqlite3.Connection], T]:
    """``work`` raising sqlite3's errors as SQLAlchemy would (IntegrityError for a conflict…)."""

    def run(db: sqlite3.Connection) -> T:
        try:
            return work(db)
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error

    return run


def raw(work: Callable[[sqlite3.Connection], T], *, statement: str) -> Callable[[Connection], T]:
    """``work`` on the sqlite3 connection under a SQLAlchemy one (for `WriteThread.run`), raising
    sqlite3's errors as SQLAlchemy would."""
    run = _translated(work, statement)
    return lambda connection: run(connection.connection.driver_connection)  # type: ignore[arg-type]


def begin_immediate(timeout_ms: int) -> Callable[[sqlite3.Connection], None]:
    """``BEGIN IMMEDIATE``, trying again every few milliseconds while another process writes,
    for up to ``timeout_ms`` (then "database is locked", as with busy_timeout)."""

    def work(db: sqlite3.Connection) -> None:
        deadline = time.monotonic() + timeout_ms / 1000
        wait = _FIRST_WAIT_S
        db.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() >= deadline:
                        raise
                time.sleep(wait)
                wait = min(wait * 2, _MAX_WAIT_S)
        finally:
            db.execute(f"PRAGMA busy_timeout={timeout_ms}")

    return work


def sync_engine(url: str, *, busy_timeout_ms: int, **options: Any) -> Engine:
    """A sync engine on the same file (sqlite3 module), one connection, set up like the others."""
    engine = create_engine(
        make_url(url).set(drivername="sqlite+pysqlite"),
        pool_size=1,
        max_overflow=0,
        pool_reset_on_return=None,
        connect_args={"check_same_thread": False},
        **options,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure(dbapi_connection, busy_timeout_ms)

    return engine


class WriteThread:
    """Whole write transactions, each in one trip from the event loop: ``BEGIN IMMEDIATE``, the work
    and ``COMMIT`` run back to back on a thread of their own, on a connection of their own (sync
    SQLAlchemy over the sqlite3 module), one transaction after the other.

    Through the async session every statement is a trip to aiosqlite's thread and back, and the
    write lock stays held while the event loop serves everything else between two trips: under load
    (the API's requests, a worker matching a batch) a transaction of three statements held SQLite's
    one write lock for 1.5 to 20 ms, and every other writer of every process waited. Here the lock is
    held only while SQLite works. For transactions whose statements do not depend on what the event
    loop does meanwhile: the rows a request appends (`broker.db.pending`), a matching batch."""

    def __init__(self, url: str, *, busy_timeout_ms: int, **engine_options: Any) -> None:
        self.engine = sync_engine(url, busy_timeout_ms=busy_timeout_ms, **engine_options)
        take_write_lock = begin_immediate(busy_timeout_ms)

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            take_write_lock(conn.connection.driver_connection)  # type: ignore[arg-type]

        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in one transaction on the writer's thread: committed when it
        returns, rolled back when it raises (SQLAlchemy's exceptions, e.g. IntegrityError)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, work)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return work(connection)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.dispose)
        self._executor.shutdown(wait=True)
