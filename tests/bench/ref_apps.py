"""Reference apps for the HTTP benchmark, served exactly like the broker (granian, ``--interface asgi
--factory``, one worker process, 127.0.0.1):

* ``json_app`` — a bare Litestar app answering ``GET /health/live`` with a small JSON from memory
  (the reference for the broker's ``GET /health/live``);
* ``insert_app`` — a bare Litestar app whose ``POST /v1/organizations`` decodes the same body as the
  broker and does ONE INSERT in ONE transaction with SQLAlchemy async (the reference for the broker's
  ``POST /v1/organizations``). On SQLite it uses the broker's connection settings: WAL,
  synchronous=NORMAL, foreign keys, busy timeout, BEGIN IMMEDIATE for the writer. The database is
  ``BENCH_REF_DATABASE_URL``; its table is created by :func:`create_ref_table` before the server starts.

Nothing of the broker is imported: these are what a bare app costs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Litestar, get, post
from sqlalchemy import DateTime, String, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SQLITE_BUSY_TIMEOUT_MS = 30_000
# the broker's default pool on PostgreSQL (BROKER_DATABASE_POOL_SIZE, BROKER_DATABASE_MAX_OVERFLOW);
# bench_http checks that they still agree
POOL_SIZE = 32
MAX_OVERFLOW = 8


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/health/live")
async def live() -> Health:
    return Health(status="ok", checks={})


def json_app() -> Litestar:
    """Factory: ``granian --interface asgi --factory ref_apps:json_app``."""
    return Litestar(route_handlers=[live], openapi_config=None, debug=False)


# ---- one INSERT in one transaction ----------------------------------------------------------------

class _Base(DeclarativeBase):
    pass


class RefOrganization(_Base):
    """Same columns and unique SIRET as the broker's ``organization`` table."""

    __tablename__ = "bench_ref_organization"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    commune_insee: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrganizationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    kind: str
    name: str
    siret: str
    commune_insee: str


class OrganizationOut(msgspec.Struct, kw_only=True):
    id: str
    kind: str
    name: str
    siret: str
    commune_insee: str


def make_engine(url: str) -> AsyncEngine:
    """SQLite: the broker's pragmas and BEGIN IMMEDIATE; PostgreSQL: the broker's pool size."""
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def insert_app() -> Litestar:
    """Factory: ``granian --interface asgi --factory ref_apps:insert_app`` with BENCH_REF_DATABASE_URL."""
    engine = make_engine(os.environ["BENCH_REF_DATABASE_URL"])
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @post("/v1/organizations", status_code=201)
    async def create(data: OrganizationIn) -> OrganizationOut:
        row = RefOrganization(
            id=str(uuid.uuid4()), kind=data.kind, name=data.name, siret=data.siret,
            commune_insee=data.commune_insee, created_at=datetime.now(UTC),
        )
        async with sessions() as session:
            session.add(row)
            await session.commit()
        return OrganizationOut(id=row.id, kind=row.kind, name=row.name, siret=row.siret,
                               commune_insee=row.commune_insee)

    return Litestar(
        route_handlers=[live, create], openapi_config=None, debug=False, on_shutdown=[engine.dispose]
    )


async def _create(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_Base.metadata.drop_all)
            await conn.run_sync(_Base.metadata.create_all)
            await conn.commit()
    finally:
        await engine.dispose()


def create_ref_table(url: str) -> None:
    """(Re)create the reference table at ``url``. Blocking: call it outside an event loop."""
    asyncio.run(_create(url))


async def _count(url: str) -> int:
    from sqlalchemy import func, select

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(RefOrganization))).scalar_one())
    finally:
        await engine.dispose()


def count_rows(url: str) -> int:
    return asyncio.run(_count(url))
