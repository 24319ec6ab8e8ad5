"""Fault tests with real processes (RELIABILITY.md §7): the API under granian, arq workers restarted
when they die, a Redis server of the test's own, and the database (SQLite, and a throw-away
PostgreSQL database when BROKER_TEST_DATABASE_URL is set). A buyer's requests make events while the
faults land; afterwards the invariant checker wants every event delivered to the receiver on
127.0.0.1 (at least once: each webhook-id seen) and exactly one delivery row per event, delivered.

- G3: a crash between a commit and the enqueue that follows, injected 100 times (API side: the
  wake-up after the request's commit; relay side: after the claim's commit, before enqueueing),
  some of them killing the worker process: 0 events lost.
- G4: Redis ``SHUTDOWN NOSAVE`` mid-run, then a new empty Redis: every pending delivery is queued
  again at once (the relay notices the empty Redis; it does not wait for the leases), 0 lost.
- G5 (PostgreSQL): the broker's own connections (by their application_name) terminated 5 times
  mid-run: 0 lost, 0 applied twice (one request per Idempotency-Key, one delivery per event), and
  the API answers only 201 or the documented 503 problem.

Sizes: ``BROKER_FAULT_CRASHES`` (100), ``BROKER_FAULT_REQUESTS`` (120 requests, 240 events);
``make soak`` raises the request counts. When PostgreSQL is configured its run has these sizes and
the SQLite run is smaller (40 crashes, 60 requests)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from factories import bearer, make_siret
from redis.asyncio import Redis
from standardwebhooks import Webhook
from support_receiver import HookReceiver
from support_stack import PG_URL, RedisServer, Stack, database, scale, wait_delivered

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
REQUESTS = scale("BROKER_FAULT_REQUESTS", 120)


@pytest.fixture(params=BACKENDS)
def stack_db(request: pytest.FixtureRequest, tmp_path: Path):
    with database(request.param, tmp_path) as url:
        yield request.param, url


@pytest.fixture
async def receiver():
    rec = await HookReceiver().start()
    yield rec
    await rec.stop()


def request_body() -> dict:
    return {"item": "door-opener", "quantity": 40, "delivery": {"commune_insee": "35238"},
            "deadline": (datetime.now(UTC) + timedelta(days=15)).isoformat(),
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "1.00"}}


async def _buyer(client: httpx.AsyncClient, stack: Stack, receiver: HookReceiver) -> tuple[str, str, str]:
    """A collectivité with a buyer key and a webhook endpoint for every event type."""
    admin = {**bearer(stack.admin_key), "Idempotency-Key": str(uuid.uuid4())}
    body = {"kind": "collectivite", "name": "Ville de Saint-Malo", "siret": make_siret(), "commune_insee": "35288"}
    for _ in range(10):  # an injected crash after the commit answers 500: the same key replays the 201
        created = await client.post("/v1/organizations", headers=admin, json=body)
        if created.status_code == 201:
            break
    org = created.json()
    key = (await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer"},
                             headers=admin)).json()["key"]
    hook = await client.post("/v1/webhook-endpoints", json={"url": receiver.url}, headers=bearer(key))
    assert hook.status_code == 201, hook.text
    return org["id"], key, hook.json()["secret"]


async def _create(client: httpx.AsyncClient, key: str, statuses: list[int], *, tries: int = 40) -> None:
    """POST a request with one Idempotency-Key, retrying it (same key) until it is created."""
    headers = {**bearer(key), "Idempotency-Key": str(uuid.uuid4())}
    body = request_body()
    for _ in range(tries):
        try:
            response = await client.post("/v1/requests", json=body, headers=headers)
        except httpx.TransportError:
            statuses.append(0)
            await asyncio.sleep(0.2)
            continue
        statuses.append(response.status_code)
        if response.status_code == 201:
            return
        if response.status_code == 503:
            problem = response.json()
            assert response.headers["content-type"].startswith("application/problem+json"), response.text
            assert problem["status"] == 503 and "retry-after" in response.headers, response.text
        await asyncio.sleep(0.1)
    raise AssertionError(f"request never created: {statuses[-10:]}")


def _check(view: dict, receiver: HookReceiver, secret: str, stack: Stack) -> None:
    events = view["events"]
    assert view["states"] == {"delivered": len(events)}, (view["states"], len(events), stack.logs())
    assert view["per_event"] == 1  # one delivery row per event and endpoint, however often relayed
    seen = receiver.ids()
    assert {f"msg_{e.replace('-', '')}" for e in events} <= set(seen)  # 0 lost
    for raw, headers in receiver.received[:: max(1, len(receiver.received) // 50)]:
        Webhook(secret).verify(raw, headers)


async def test_crash_between_commit_and_enqueue_loses_nothing(stack_db, tmp_path, receiver):
    backend, url = stack_db
    redis = RedisServer(tmp_path).start()
    crashes = scale("BROKER_FAULT_CRASHES", 100, backend=backend, smaller=40)
    per_side = crashes // 2
    stack = Stack(tmp_path, url, redis, extra_env={  # the last relay-side crash kills the worker
        "FAULT_API_RATE": "0.5", "FAULT_RELAY_RATE": "1", "FAULT_RELAY_EXIT_EVERY": str(per_side),
        "FAULT_BUDGET": str(per_side), "BROKER_WEBHOOKS_TIMEOUT_S": "2"})
    client_redis = Redis.from_url(redis.url)
    stop = asyncio.Event()
    try:
        await stack.start(api_target="fault_injection:app_factory", worker_script="fault_injection.py")
        supervisor = asyncio.create_task(stack.supervising(stop))
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            org_id, key, secret = await _buyer(client, stack, receiver)
            statuses: list[int] = []
            started = time.monotonic()
            while True:
                api = int(await client_redis.get("fault:injected:api") or 0)
                relay = int(await client_redis.get("fault:injected:relay") or 0)
                if min(api, per_side) + min(relay, per_side) >= crashes:
                    break
                assert time.monotonic() - started < 60, (api, relay, stack.logs())
                await _create(client, key, statuses)
                # Once the API's crashes are in, only enough requests to keep the relay busy while
                # the worker restarts after the injections that killed it.
                await asyncio.sleep(0.02 if api < per_side else 0.25)
            made = statuses.count(201)
            # Relay-side crashes leave deliveries marked queued, with no job and no marker of their
            # pass in Redis: a later pass queues them again at once, not after their lease (12.4 s).
            view, took = await wait_delivered(url, org_id, expected=2 * made, timeout_s=45)
        stop.set()
        await supervisor
        # Each API-side crash answered 500 after its commit (one may have hit the organisation's creation)...
        assert per_side - 1 <= statuses.count(500) <= per_side
        assert made == len(statuses) - statuses.count(500)  # ...and its retry (same key) replayed the 201
        _check(view, receiver, secret, stack)
        assert len(view["events"]) == 2 * made  # request.created + request.matched per request
        assert stack.worker_restarts >= 1  # the os._exit injection, restarted
        print(f"\nG3 {backend}: {crashes} crashes injected ({per_side} API, {per_side} relay, "
              f"{stack.worker_restarts} worker killed by it), {made} requests, {len(view['events'])} events, 0 lost; "
              f"drained {took:.1f} s after the last crash; {sum(receiver.ids().values())} POSTs for "
              f"{len(receiver.ids())} webhook-ids")
    finally:
        stop.set()
        await client_redis.aclose()
        stack.stop()
        redis.stop()


async def test_redis_shutdown_nosave_mid_run_requeues_every_pending_row(stack_db, tmp_path, receiver):
    from sqlalchemy import select
    from support_stack import engine_for

    from broker.db.models import WebhookDeliveryRow

    backend, url = stack_db
    requests = scale("BROKER_FAULT_REQUESTS", 120, backend=backend, smaller=60)
    redis = RedisServer(tmp_path).start()
    # Long leases (34 s): the queued deliveries that Redis lost are delivered well within them,
    # which proves that the relay noticed the empty Redis and queued them again at once.
    stack = Stack(tmp_path, url, redis, extra_env={"BROKER_WEBHOOKS_TIMEOUT_S": "20"})
    stop = asyncio.Event()

    async def deliveries(*where) -> dict[str, str]:
        async with engine_for(url) as engine, engine.connect() as conn:
            rows = await conn.execute(select(WebhookDeliveryRow.id, WebhookDeliveryRow.state).where(*where))
            return dict(rows.all())

    try:
        await stack.start()
        supervisor = asyncio.create_task(stack.supervising(stop))
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            org_id, key, secret = await _buyer(client, stack, receiver)
            receiver.delay = 0.25  # a slow receiver: a backlog of queued delivery jobs builds up in Redis
            statuses: list[int] = []
            for _ in range(requests // 2):
                await _create(client, key, statuses)
            queued = await deliveries(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.enqueued_at.is_not(None))
            assert queued, "no delivery job was waiting in Redis"
            redis.shutdown_nosave()
            down_at = time.monotonic()
            for _ in range(10):  # the API keeps answering while Redis is gone (fail open, cron relay later)
                await _create(client, key, statuses)
            assert all(s == 201 for s in statuses), [s for s in statuses if s != 201]  # 0: a transport error
            redis.start()  # a new, empty Redis on the same socket: every queued job is gone
            receiver.delay = 0
            while set((await deliveries(WebhookDeliveryRow.id.in_(list(queued)))).values()) != {"delivered"}:
                assert time.monotonic() - down_at < 30, (await deliveries(WebhookDeliveryRow.state != "delivered"),
                                                         stack.logs())
                await asyncio.sleep(0.2)
            recovered = time.monotonic() - down_at
            for _ in range(requests // 2 - 10):
                await _create(client, key, statuses)
            view, _took = await wait_delivered(url, org_id, expected=2 * len(statuses), timeout_s=60)
        stop.set()
        await supervisor
        _check(view, receiver, secret, stack)
        print(f"\nG4 {backend}: SHUTDOWN NOSAVE with {len(queued)} delivery jobs queued in Redis; all of them "
              f"delivered {recovered:.1f} s after the shutdown (their leases: 34 s); {len(view['events'])} events, "
              f"0 lost ({stack.worker_restarts} worker restarts)")
    finally:
        stop.set()
        stack.stop()
        redis.stop()


@pytest.fixture
def pg_url(tmp_path: Path):
    with database("postgresql", tmp_path) as url:
        yield url


@pytest.mark.skipif(not PG_URL, reason="terminating PostgreSQL backends needs BROKER_TEST_DATABASE_URL")
async def test_postgres_connections_terminated_mid_run(pg_url, tmp_path, receiver):
    from sqlalchemy import text
    from support_stack import engine_for

    url = pg_url
    redis = RedisServer(tmp_path).start()
    stack = Stack(tmp_path, url, redis, extra_env={"BROKER_WEBHOOKS_TIMEOUT_S": "2"})
    stop = asyncio.Event()
    try:
        await stack.start()
        supervisor = asyncio.create_task(stack.supervising(stop))
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client, \
                engine_for(PG_URL) as admin:  # type: ignore[arg-type]
            org_id, key, secret = await _buyer(client, stack, receiver)
            statuses: list[int] = []
            terminated = []

            async def terminate() -> None:
                for _ in range(5):  # spread over the run (about 4 s at the default size)
                    await asyncio.sleep(0.6 * REQUESTS / 120)
                    async with admin.connect() as conn:
                        # Only this test's broker processes: their application_name, never anyone else's.
                        killed = (await conn.execute(text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = :name AND pid <> pg_backend_pid()"),
                            {"name": stack.app_name})).scalar_one()
                        await conn.commit()
                    terminated.append(killed)

            killer = asyncio.create_task(terminate())
            clients = [asyncio.create_task(_many(client, key, statuses, REQUESTS // 4)) for _ in range(4)]
            await asyncio.gather(killer, *clients)
            view, _took = await wait_delivered(url, org_id, expected=2 * statuses.count(201), timeout_s=40)
            async with engine_for(url) as engine, engine.connect() as conn:
                requests = (await conn.execute(text("SELECT count(*) FROM fab_request WHERE org_id = :org"),
                                               {"org": org_id})).scalar_one()
                doubles = (await conn.execute(text(
                    "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM webhook_attempt a JOIN "
                    "webhook_delivery d ON d.id = a.delivery_id WHERE d.org_id = :org AND a.outcome = 'delivered' "
                    "GROUP BY a.delivery_id) AS c"), {"org": org_id})).scalar_one()
        stop.set()
        await supervisor
        assert len(terminated) == 5 and sum(terminated) >= 5, terminated
        assert set(statuses) <= {201, 503}, statuses  # only the documented 503 during the drops
        assert requests == statuses.count(201) == REQUESTS // 4 * 4  # one request per Idempotency-Key
        assert doubles == 1  # no delivery recorded delivered twice
        _check(view, receiver, secret, stack)
        print(f"\nG5 postgresql: 5 terminations ({sum(terminated)} connections), {requests} requests, "
              f"{statuses.count(503)} answered 503 then retried, {len(view['events'])} events, 0 lost, "
              f"0 applied twice")
    finally:
        stop.set()
        stack.stop()
        redis.stop()


async def _many(client: httpx.AsyncClient, key: str, statuses: list[int], n: int) -> None:
    for _ in range(n):
        await _create(client, key, statuses)
