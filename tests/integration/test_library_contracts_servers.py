"""The library behaviour the performance code relies on that needs a server to show (those that do
not: tests/unit/test_library_contracts.py). pyproject.toml caps arq, redis and asyncpg at the next
release line; before lifting a cap, run these.

- arq reads the jobs we write into its keys ourselves (`JobQueue.signal`, `Enqueuer.enqueue_many`:
  ``arq:job:<id>`` holding the serialized job, the queue a sorted set of ids scored by the time to
  run), runs each once, drops a job taken off the queue (`settle_batch`), and deletes a job's key
  when it finishes (so the same id can be queued again);
- redis-py's registered scripts load themselves again after the server lost them (EVALSHA, then
  SCRIPT LOAD on NOSCRIPT: `JobQueue`, `Enqueuer`, the rate limiter);
- SQLAlchemy's asyncpg adapter sends BEGIN with a transaction's first statement, and a statement
  run with the adapter's ``autocommit`` on opens none (`broker.db.postgres.outside_transaction`).
"""

from __future__ import annotations

from typing import Any

import pytest
from arq import func
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from support_stack import PG_URL

from broker.db.postgres import outside_transaction
from broker.services.jobs import QUEUE, Job, JobQueue, deserialize, serialize, settle_batch
from workers.enqueue import Enqueuer


async def _run_queue(redis_url: str, ran: list[Any]) -> None:
    """One arq worker, in burst mode: it runs what the queue holds, then returns."""

    async def record(_ctx: dict[str, Any], value: Any) -> None:
        ran.append(value)

    pool = ArqRedis.from_url(redis_url)
    worker = Worker(functions=[func(record, name="contract_job")], queue_name=QUEUE, redis_pool=pool, burst=True,
                    handle_signals=False, poll_delay=0.01, job_serializer=serialize, job_deserializer=deserialize)
    try:
        await worker.main()  # in burst mode it waits for the jobs it started
    finally:
        await pool.aclose()  # not `worker.close()`: it calls redis-py's deprecated `close()`


async def test_arq_runs_the_jobs_we_queue_ourselves(redis_url: str, redis_client: Redis) -> None:
    queue = JobQueue(redis_client)
    assert await queue.signal([Job("contract_job", ("a",), "contract:a"), Job("contract_job", ("b",), "contract:b"),
                               Job("contract_job", ("c",), "contract:c")], wake_relay=False)
    assert await settle_batch(redis_client, ["contract:c"], wake_relay=False)  # done by another: not run
    assert await Enqueuer(redis_client).enqueue_many([Job("contract_job", ("d",), "contract:d")]) == 1
    ran: list[Any] = []
    await _run_queue(redis_url, ran)
    assert sorted(ran) == ["a", "b", "d"]
    # A finished job's key is gone: the same id can be queued again (`JobQueue.signal` is SET NX on it).
    assert not await redis_client.exists(job_key_prefix + "contract:a")
    assert await queue.signal([Job("contract_job", ("a2",), "contract:a")], wake_relay=False)
    await _run_queue(redis_url, ran)
    assert ran[-1] == "a2"


async def test_registered_scripts_survive_a_script_flush(redis_client: Redis) -> None:
    script = redis_client.register_script("return ARGV[1]")
    assert await script(args=["one"]) == b"one"
    await redis_client.script_flush()
    assert await script(args=["two"]) == b"two"


@pytest.mark.skipif(not PG_URL, reason="asyncpg's transaction handling needs BROKER_TEST_DATABASE_URL")
async def test_asyncpg_adapter_begins_lazily_and_autocommit_opens_no_transaction() -> None:
    engine = create_async_engine(PG_URL)

    def check(connection: Connection) -> None:
        driver = connection.connection.driver_connection
        assert driver is not None and not driver.is_in_transaction()
        with outside_transaction(connection) as alone:
            assert alone
            connection.execute(text("SELECT 1"))
            assert not driver.is_in_transaction()
        connection.execute(text("SELECT 1"))  # the next statement begins the transaction as usual
        assert driver.is_in_transaction()

    try:
        async with engine.connect() as connection:
            await connection.run_sync(check)
    finally:
        await engine.dispose()
