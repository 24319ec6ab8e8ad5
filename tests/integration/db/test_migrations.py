"""Migrations run on both engines, down and up again, and match the models exactly."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from broker.db.base import Base
from broker.db.migrate import downgrade, upgrade


def _diff(url: str) -> list:
    async def run() -> list:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrations_round_trip_and_match_the_models(database_url):
    assert _diff(database_url) == []
    downgrade(database_url, "base")
    upgrade(database_url)
    assert _diff(database_url) == []
