"""Outbox → relay → signed delivery to a real receiver on 127.0.0.1, verified with the reference
Standard Webhooks library; retries, replay with the same webhook-id, secret roll, the events API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from aiohttp import web
from factories import bearer, make_siret, tenant
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from standardwebhooks import Webhook
from support_relay import FakeQueue

from adapters.webhooks.base import DeliveryPolicy
from adapters.webhooks.delivery import HttpWebhookSender
from adapters.webhooks.transport import make_client
from broker.app import create_app
from broker.db.models import WebhookDeliveryRow
from broker.db.session import Database
from broker.services.jobs import DELIVER
from broker.services.webhooks import SecretBox
from workers.jobs.webhooks import deliver_webhooks, relay_outbox


class Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[bytes, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "boom")


@pytest.fixture
async def receiver():
    rec = Receiver([500])
    app = web.Application()
    app.router.add_post("/hooks", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    rec.url = f"http://127.0.0.1:{port}/hooks"
    yield rec
    await runner.cleanup()


async def test_events_are_delivered_signed_retried_and_replayed(settings, admin_key, receiver):
    settings = msgspec.structs.replace(settings, webhooks_allow_loopback=True)
    db = Database(settings.db)
    policy = DeliveryPolicy(allow_loopback=True, read_timeout_s=5, total_timeout_s=8)
    arq = FakeQueue()
    http = make_client(policy)
    ctx = {"db": db, "enqueue": arq, "http": http, "sender": HttpWebhookSender(http, policy=policy),
           "box": SecretBox(settings.secret_key)}

    async def run_worker():
        await relay_outbox(ctx)
        assert all(name == DELIVER for name, _, _ in arq.jobs)
        await deliver_webhooks(ctx, arq.take(DELIVER))

    try:
        async with AsyncTestClient(create_app(settings)) as client:
            _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
            refused = await client.post("/v1/webhook-endpoints", json={"url": "http://10.0.0.1/hooks"},
                                        headers=bearer(buyer))
            assert refused.status_code == 422 and refused.json()["code"] == "webhook-url-unsafe"
            bad_type = await client.post("/v1/webhook-endpoints", json={"url": receiver.url, "event_types": ["x.y"]},
                                         headers=bearer(buyer))
            assert bad_type.status_code == 422
            created = await client.post("/v1/webhook-endpoints", headers=bearer(buyer),
                                        json={"url": receiver.url, "event_types": ["request.created"]})
            assert created.status_code == 201, created.text
            endpoint, secret = created.json()["id"], created.json()["secret"]
            assert secret.startswith("whsec_")
            listed = await client.get("/v1/webhook-endpoints", headers=bearer(buyer))
            assert "secret" not in listed.json()["items"][0]

            body = {"item": "monitor-stand", "quantity": 3, "deadline": (datetime.now(UTC) + timedelta(days=20))
                    .isoformat(), "delivery": {"commune_insee": "35238"}, "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
            request = (await client.post("/v1/requests", json=body, headers=bearer(buyer))).json()

            await run_worker()  # first attempt: the receiver answers 500 -> retry scheduled
            assert len(receiver.received) == 1
            async with db.writer() as session:  # fast-forward the retry delay
                await session.execute(update(WebhookDeliveryRow).values(next_attempt_at=datetime.now(UTC)))
                await session.commit()
            await asyncio.sleep(1.1)  # a new second, so the re-signed timestamp differs
            await run_worker()  # second attempt: delivered
            assert len(receiver.received) == 2
            (first, h1), (second, h2) = receiver.received
            assert first == second and h1["webhook-id"] == h2["webhook-id"]
            assert h1["webhook-timestamp"] != h2["webhook-timestamp"]
            event = Webhook(secret).verify(second, h2)
            assert event["type"] == "request.created" and event["data"]["id"] == request["id"]
            assert event["data"]["sequence"] == 1

            deliveries = (await client.get(f"/v1/webhook-endpoints/{endpoint}/deliveries",
                                           headers=bearer(buyer))).json()["items"]
            assert deliveries[0]["state"] == "delivered"
            assert [a["status_code"] for a in deliveries[0]["history"]] == [500, 200]
            assert deliveries[0]["history"][0]["response_excerpt"] == "boom"

            rolled = await client.post(f"/v1/webhook-endpoints/{endpoint}/secret:roll", headers=bearer(buyer))
            new_secret = rolled.json()["secret"]
            replay = await client.post(f"/v1/webhook-deliveries/{deliveries[0]['id']}/retry", headers=bearer(buyer))
            assert replay.status_code == 202
            await run_worker()
            body3, h3 = receiver.received[2]
            assert h3["webhook-id"] == h1["webhook-id"] and len(h3["webhook-signature"].split()) == 2
            assert Webhook(secret).verify(body3, h3) == Webhook(new_secret).verify(body3, h3)

            _other, stranger = await tenant(client, admin_key, "collectivite", "buyer")
            assert (await client.get(f"/v1/webhook-endpoints/{endpoint}/deliveries",
                                     headers=bearer(stranger))).status_code == 404
            assert (await client.post(f"/v1/webhook-deliveries/{deliveries[0]['id']}/retry",
                                      headers=bearer(stranger))).status_code == 404

            events = (await client.get("/v1/events", headers=bearer(buyer))).json()["items"]
            types = [e["type"] for e in events]
            assert types[:3] == ["organization.created", "request.created", "request.matched"], types
            assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
            page = (await client.get("/v1/events", params={"limit": 1}, headers=bearer(buyer))).json()
            rest = (await client.get("/v1/events", params={"after": page["next_cursor"]},
                                     headers=bearer(buyer))).json()["items"]
            assert [e["id"] for e in page["items"] + rest] == [e["id"] for e in events]
            theirs = (await client.get("/v1/events", headers=bearer(stranger))).json()["items"]
            assert [e["type"] for e in theirs] == ["organization.created"]  # only its own
            assert request["id"] not in str(theirs)
    finally:
        await ctx["http"].aclose()
        await db.dispose()


async def test_relay_claims_each_event_once_with_concurrent_relays(settings, admin_key, db):
    """Four relays at once over the same pending events: every event fans out exactly once."""
    from sqlalchemy import func, select

    from broker.db.models import OutboxRow

    async with AsyncTestClient(create_app(settings)) as client:
        for _ in range(20):
            await tenant(client, admin_key, "collectivite", "buyer")
    arq = FakeQueue()
    dbs = [Database(settings.db) for _ in range(4)]
    try:
        counts = await asyncio.gather(*[relay_outbox({"db": d, "enqueue": arq}) for d in dbs])
    finally:
        for d in dbs:
            await d.dispose()
    async with db.reader() as session:
        total = (await session.execute(select(func.count()).select_from(OutboxRow))).scalar_one()
        relayed = (await session.execute(select(func.count()).select_from(OutboxRow)
                                         .where(OutboxRow.state == "relayed"))).scalar_one()
    assert sum(counts) == total == relayed == 20
