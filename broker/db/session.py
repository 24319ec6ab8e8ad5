"""Engines and session factories. SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE
for writers (so two writers queue instead of failing with "database is locked")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from broker.db.sqlite import begin_immediate, on_thread
from broker.settings import DatabaseSettings

SQLITE_BUSY_TIMEOUT_MS = 30_000


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
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

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
    """The write and read session factories of one process (the same engine on PostgreSQL)."""

    def __init__(self, settings: DatabaseSettings) -> None:
        url = make_url(settings.url)
        self.dialect = url.get_backend_name()
        if self.dialect == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(settings.url, immediate=True, echo=settings.echo)
            self.read_engine = _sqlite_engine(settings.url, immediate=False, echo=settings.echo)
        else:
            connect_args: dict[str, Any] = {}
            if settings.application_name and self.dialect == "postgresql":
                connect_args["server_settings"] = {"application_name": settings.application_name}
            self.write_engine = create_async_engine(
                settings.url,
                echo=settings.echo,
                pool_size=settings.pool_size,
                max_overflow=settings.max_overflow,
                pool_pre_ping=True,
                **JSON_CODEC,
                connect_args=connect_args,
            )
            self.read_engine = self.write_engine
        self.writer = async_sessionmaker(self.write_engine, expire_on_commit=False, class_=AsyncSession)
        self.reader = async_sessionmaker(self.read_engine, expire_on_commit=False, class_=AsyncSession)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
