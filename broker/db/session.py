"""Engines and session factories. SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE
for writers (so two writers queue instead of failing with "database is locked")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from broker.db.postgres import server_settings, tune
from broker.db.sqlite import (
    WRITE_THREAD,
    WriteThread,
    begin_immediate,
    configure,
    on_thread,
    sync_engine,
)
from broker.settings import DatabaseSettings

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: `Database.read_now` runs on the event loop: it gives up quickly rather than stall every request.
SQLITE_READ_NOW_BUSY_TIMEOUT_MS = 250
T = TypeVar("T")


def _json_encode(value: Any) -> str:
    return msgspec.json.encode(value).decode()


#: JSON columns through msgspec (several times faster than the json module both ways: matching
#: results, outbox payloads and machine specs are most of what is read and written).
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_encode, "json_deserializer": msgspec.json.decode}


def _sqlite_engine(url: str, *, immediate: bool, echo: bool) -> AsyncEngine:
    # SQLite admits one writer at a time: the write engine keeps one connection, so this process's
    # writers queue in the pool (fair, no busy-sleeping) and only other processes meet busy_timeout.
    # Readers get a pool as large as the requests served at once: a connection opened past it (a
    # thread, a file, four PRAGMAs) costs more than the query. Sessions always end their transaction
    # (commit, or rollback on close), so the pool's own rollback on check-in is one more trip to the
    # connection's thread for nothing; on the writer it would even hold the next writer back.
    pool = (
        {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60} if immediate else {"pool_size": 30, "max_overflow": 10}
    )
    engine = create_async_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_reset_on_return=None,
        **JSON_CODEC,
        **pool,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure(dbapi_connection, SQLITE_BUSY_TIMEOUT_MS)

    if immediate:
        take_write_lock = begin_immediate(SQLITE_BUSY_TIMEOUT_MS)

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin_immediate(conn: Any) -> None:
            on_thread(conn, take_write_lock, statement="BEGIN IMMEDIATE")

    else:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

    return engine


class Database:
    """The write and read session factories of one process (the same engine on PostgreSQL), and
    `write` for a whole transaction given as one sync function."""

    def __init__(self, settings: DatabaseSettings) -> None:
        url = make_url(settings.url)
        self.dialect = url.get_backend_name()
        #: SQLite on a file: transactions that need no event loop run on a writer thread of their own.
        self.write_thread: WriteThread | None = None
        self._read_now: sessionmaker[Session] | None = None
        if self.dialect == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(settings.url, immediate=True, echo=settings.echo)
            self.read_engine = _sqlite_engine(settings.url, immediate=False, echo=settings.echo)
            if url.database and url.database != ":memory:":
                self.write_thread = WriteThread(
                    settings.url, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, echo=settings.echo, **JSON_CODEC
                )
                self._read_now_engine = sync_engine(
                    settings.url, busy_timeout_ms=SQLITE_READ_NOW_BUSY_TIMEOUT_MS, echo=settings.echo, **JSON_CODEC
                )
                self._read_now = sessionmaker(self._read_now_engine, expire_on_commit=False)
        else:
            asyncpg = url.get_driver_name() == "asyncpg"
            self.write_engine = create_async_engine(
                settings.url,
                echo=settings.echo,
                pool_size=settings.pool_size,
                max_overflow=settings.max_overflow,
                pool_pre_ping=True,
                **JSON_CODEC,
                connect_args=(
                    {"server_settings": server_settings(settings.application_name, settings.plan_cache_mode)}
                    if asyncpg else {}
                ),
            )
            if asyncpg:
                tune(self.write_engine)
            self.read_engine = self.write_engine
        self.writer = async_sessionmaker(
            self.write_engine,
            expire_on_commit=False,
            class_=AsyncSession,
            info={WRITE_THREAD: self.write_thread} if self.write_thread is not None else None,
        )
        self.reader = async_sessionmaker(self.read_engine, expire_on_commit=False, class_=AsyncSession)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def single_writer(self) -> bool:
        """A write session takes the database's one write lock at its first statement (SQLite's
        BEGIN IMMEDIATE): what a write request reads before its handler belongs on a reader."""
        return self.is_sqlite

    @property
    def skips_locked(self) -> bool:
        """Concurrent claims can pass over rows another transaction locked (SELECT … FOR UPDATE
        SKIP LOCKED); SQLite has no row locks (its writers take turns)."""
        return not self.is_sqlite

    @property
    def reads_now(self) -> bool:
        """`read_now` is there (SQLite on a file)."""
        return self._read_now is not None

    @contextmanager
    def read_now(self) -> Iterator[Session]:
        """SQLite: a sync session on the event loop's own thread, for one short read by key. Each
        statement through the async reader is several trips to a reader thread and back; under load
        those trips cost more CPU than SQLite's work (the Idempotency-Key lookup was half of a POST's
        CPU). No BEGIN: the statement is its own snapshot. WAL readers do not wait for writers; the
        connection gives up after 250 ms of a rare busy state rather than stall the loop longer."""
        if self._read_now is None:
            raise RuntimeError("read_now is for SQLite on a file (see reads_now)")
        with self._read_now() as session:
            yield session

    async def write(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` as one transaction, committed when it returns: on SQLite in one trip
        to the writer thread (the write lock is held only while SQLite works), elsewhere through the
        async engine."""
        if self.write_thread is not None:
            return await self.write_thread.run(work)
        async with self.write_engine.begin() as connection:
            return await connection.run_sync(work)

    async def dispose(self) -> None:
        if self.write_thread is not None:
            await self.write_thread.close()
        if self._read_now is not None:
            self._read_now_engine.dispose()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
