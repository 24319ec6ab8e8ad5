"""SQLite specifics that need the raw connection: work done in one call on aiosqlite's thread
(each statement through SQLAlchemy's adapter is three trips between the event loop and that
thread), and taking the write lock without the busy handler's long sleeps."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only

T = TypeVar("T")

#: Between tries for the write lock: short, then up to 4 ms (SQLite's own busy handler sleeps
#: 1, 2, 5, 10 … up to 100 ms, so a writer of another process often waited long after the lock
#: was free: the API stalled behind the worker).
_FIRST_WAIT_S = 0.0005
_MAX_WAIT_S = 0.004


def on_thread(connection: Connection, work: Callable[[sqlite3.Connection], T], *, statement: str) -> T:
    """Run ``work`` on the connection's own thread in one trip (from sync code in SQLAlchemy's
    greenlet, as in session events); errors come out as SQLAlchemy would raise them."""
    driver: Any = connection.connection.driver_connection  # the aiosqlite connection
    try:
        return await_only(driver._execute(work, driver._conn))  # type: ignore[no-any-return]
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error


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
