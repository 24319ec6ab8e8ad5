"""The reference of the events bench: an arq worker whose only job does ONE INSERT in ONE transaction
on the broker's database. Same engine settings (``broker.db.session.Database``: WAL, busy timeout,
BEGIN IMMEDIATE on SQLite; the pool on PostgreSQL), same Redis, same msgpack serialisation and the
same arq knobs as the broker's worker (``workers.settings.worker_settings``), on a queue of its own.

    python tests/bench/ref_events_worker.py     # BROKER_DATABASE_URL, BROKER_REDIS_URL from the environment
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, insert

REF_QUEUE = "bench:ref:queue"
REF_JOB = "ref_write"
metadata = MetaData()
ref_write_table = Table(
    "bench_ref_write", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("n", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


async def ref_write(ctx: dict[str, Any], n: int) -> None:
    async with ctx["db"].writer() as session:
        await session.execute(insert(ref_write_table).values(n=n, at=datetime.now(UTC)))
        await session.commit()


def main() -> None:
    from arq import func
    from arq.worker import Worker

    from broker.db.session import Database
    from broker.settings import load_settings
    from workers.settings import worker_settings

    settings = load_settings(os.environ)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["db"] = Database(settings.db)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await ctx["db"].dispose()

    kwargs = worker_settings(settings)
    kwargs.update(functions=[func(ref_write, name=REF_JOB, timeout=30)], cron_jobs=[], queue_name=REF_QUEUE,
                  on_startup=on_startup, on_shutdown=on_shutdown)
    Worker(**kwargs).run()


if __name__ == "__main__":
    main()
