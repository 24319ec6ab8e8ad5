"""Fault test with real processes (G1, T7.a): `broker up` (API, arq worker, embedded Redis) while a
buyer's requests make events; the worker is SIGKILLed at random moments, again and again, and the
embedded Redis is killed once; `broker up` restarts them. Afterwards every event reached the
receiver (each webhook-id seen, signatures valid), each delivery row is delivered, and there is one
delivery row per event — the database is the source of truth, duplicates are only repeated
webhook-ids.

Sizes: ``BROKER_FAULT_EVENTS`` events (300 in ``make test``, 2,000 in ``make soak``) and
``BROKER_FAULT_KILLS`` worker kills (3; 20 in ``make soak``), on SQLite and, when
BROKER_TEST_DATABASE_URL is set, on a throw-away PostgreSQL database (then the SQLite run is smaller:
150 events, 2 kills). Kills are 3 s apart, 6.5 s when there are more than 8: `broker up` restarts a
dead worker after 1, 2, 4 … 30 s (back to 1 s after a minute up), so a long series spends most of its
time waiting for the next worker."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from factories import bearer, make_siret, tenant
from standardwebhooks import Webhook
from support_receiver import HookReceiver
from support_server import running_broker
from support_stack import PG_URL, children, database, scale, wait_delivered

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """SQLite: the file `broker up` makes in its data directory; PostgreSQL: a throw-away database."""
    if request.param == "sqlite":
        yield None
        return
    with database("postgresql", tmp_path) as url:
        yield url


def _sizes(backend: str) -> tuple[int, int, float]:
    events = scale("BROKER_FAULT_EVENTS", 300, backend=backend, smaller=150)
    kills = scale("BROKER_FAULT_KILLS", 3, backend=backend, smaller=2)
    return events, kills, (6.5 if kills > 8 else 3.0)  # spaced beyond the first restart delays


async def test_events_survive_worker_and_redis_kills(db_url, tmp_path):
    rng = random.Random(20260501)
    n_events, n_kills, gap = _sizes("postgresql" if db_url else "sqlite")
    receiver = await HookReceiver().start()
    try:
        # Short delivery timeouts: the lease after which a killed worker's deliveries are queued
        # again is 12.4 s.
        extra = {"BROKER_DATABASE_URL": db_url} if db_url else {}
        with running_broker(tmp_path, BROKER_WEBHOOKS_ALLOW_LOOPBACK="1", BROKER_WEBHOOKS_TIMEOUT_S="2",
                            **extra) as broker:
            db_url = db_url or f"sqlite+aiosqlite:///{broker.data_dir / 'broker.db'}"
            async with httpx.AsyncClient(base_url=broker.url, timeout=30) as client:
                org, buyer = await tenant(client, broker.admin_key, "collectivite", "buyer")
                hook = (await client.post("/v1/webhook-endpoints", json={"url": receiver.url},
                                          headers=bearer(buyer))).json()
                kills: list[float] = []
                started = time.monotonic()

                def kill_worker() -> None:
                    for pid in children(broker.process.pid, b"broker.cli worker"):
                        os.kill(pid, signal.SIGKILL)
                        kills.append(time.monotonic() - started)

                async def killer(stop: asyncio.Event) -> None:
                    next_at = rng.uniform(1.0, 3.0)
                    while len(kills) < n_kills and not stop.is_set():
                        await asyncio.sleep(0.05)
                        if time.monotonic() - started >= next_at:
                            kill_worker()
                            next_at = time.monotonic() - started + gap + rng.uniform(0, 2)

                # The events flow for as long as the kills take: the kills land while they flow.
                pause = n_kills * (gap + 1) / max(1, n_events // 8)

                async def buyer_requests(n: int) -> None:
                    body = {"item": "door-opener", "quantity": 50, "delivery": {"commune_insee": "35238"},
                            "deadline": (datetime.now(UTC) + timedelta(days=15)).isoformat(),
                            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "1.00"}}
                    for _ in range(n):
                        response = await client.post("/v1/requests", json=body,
                                                     headers={**bearer(buyer), "Idempotency-Key": str(uuid.uuid4())})
                        assert response.status_code == 201, response.text
                        await asyncio.sleep(pause)

                async def redis_killer() -> None:
                    # Mid-flow, the embedded Redis dies too (it keeps nothing on disk): `broker up`
                    # restarts it empty; the relay notices and queues again every pending delivery.
                    await asyncio.sleep(n_kills * (gap + 1) / 2)
                    for pid in children(broker.process.pid, b"redis-server"):
                        os.kill(pid, signal.SIGKILL)
                    while "embedded Redis exited" not in broker.log.read_text():
                        await asyncio.sleep(0.1)

                stop = asyncio.Event()
                kills_task = asyncio.create_task(killer(stop))
                requests = n_events // 2  # each request makes request.created, then the worker's request.matched
                await asyncio.gather(redis_killer(), *[buyer_requests(requests // 4) for _ in range(4)])
                await kills_task  # the remaining kills land while the backlog drains
                stop.set()
                view, took = await wait_delivered(db_url, org["id"], expected=2 * (requests // 4) * 4,
                                                  timeout_s=120, tick=0.5)
            log = broker.log.read_text()
            assert len(kills) == n_kills, kills
            events = view["events"]
            assert len(events) == 2 * (requests // 4) * 4, (len(events), view["states"], log[-3000:])
            assert view["states"] == {"delivered": len(events)}, (view["states"], log[-3000:])
            assert view["per_event"] == 1  # one delivery row per event and endpoint, however often relayed
            seen = receiver.ids()
            assert {f"msg_{e.replace('-', '')}" for e in events} <= set(seen)  # every event arrived
            for raw, headers in receiver.received[:: max(1, len(receiver.received) // 100)]:
                Webhook(hook["secret"]).verify(raw, headers)
            assert "the worker exited" in log and "embedded Redis exited" in log, log
            duplicates = sum(seen.values()) - len(seen)
            print(f"\nG1 {'postgresql' if extra else 'sqlite'}: {len(events)} events, {n_kills} worker SIGKILLs at {[round(k, 1) for k in kills]} s and one "
                  f"Redis kill: 0 lost, {duplicates} repeated webhook-ids ({duplicates / len(seen):.1%}), all "
                  f"delivered {took:.1f} s after the last kill")
    finally:
        await receiver.stop()
