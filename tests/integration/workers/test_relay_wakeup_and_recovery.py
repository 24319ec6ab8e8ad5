"""What the relay does beyond the happy path (in-process, on SQLite and PostgreSQL): the wake-up after
commit, a hanging receiver, RT-3's auto-disable after five failing days, enable and recover, and
the notifications driven by the outbox."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from factories import WOOD_SHOP, bearer, make_siret, make_workshop, tenant
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from support_receiver import HookReceiver
from support_relay import FakeQueue
from support_server import free_port

from adapters.notifications.fake import FakeNotifier
from adapters.webhooks.base import DeliveryPolicy
from adapters.webhooks.delivery import HttpWebhookSender
from adapters.webhooks.transport import make_client
from broker.app import create_app
from broker.db.models import OrganizationRow, OutboxRow, WebhookDeliveryRow, WebhookEndpointRow
from broker.db.repositories import OutboxRepository
from broker.db.session import Database
from broker.domain.events import DomainEvent
from broker.services import webhooks
from broker.services.jobs import DELIVER, NOTIFY, RELAY_WAKE_KEY
from broker.services.webhooks import SecretBox
from broker.settings import RedisSettings
from workers.jobs.notifications import notify
from workers.jobs.webhooks import deliver_webhooks, relay_outbox, relay_waker


def request_body(**overrides):
    return {"item": "monitor-stand", "quantity": 3, "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "delivery": {"commune_insee": "35238"}, "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}} | overrides


@pytest.fixture
async def receiver():
    rec = await HookReceiver().start()
    yield rec
    await rec.stop()


@pytest.fixture
async def worker_ctx(settings, db):
    policy = DeliveryPolicy(allow_loopback=True, connect_timeout_s=1, read_timeout_s=0.5, total_timeout_s=2)
    http = make_client(policy)
    ctx = {"db": db, "enqueue": FakeQueue(), "http": http, "sender": HttpWebhookSender(http, policy=policy),
           "box": SecretBox(settings.secret_key), "policy": policy, "settings": settings}
    yield ctx
    await ctx["http"].aclose()


@pytest.fixture
async def loopback_client(settings, admin_key):
    app = create_app(msgspec.structs.replace(settings, webhooks_allow_loopback=True))
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_a_commit_with_events_wakes_the_relay_once_and_reads_do_not(loopback_client, admin_key, redis_client):
    client = loopback_client
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    await redis_client.delete(RELAY_WAKE_KEY)
    assert (await client.get("/v1/events", headers=bearer(buyer))).status_code == 200
    # A write that commits no event (an endpoint) does not push either.
    made = await client.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks"}, headers=bearer(buyer))
    assert made.status_code == 201
    assert await redis_client.llen(RELAY_WAKE_KEY) == 0
    for _ in range(3):  # three commits with events: the list keeps one wake-up, not three
        created = await client.post("/v1/requests", json=request_body(), headers=bearer(buyer))
        assert created.status_code == 201, created.text
    assert await redis_client.llen(RELAY_WAKE_KEY) == 1
    refused = await client.post("/v1/requests", json=request_body(quantity=0), headers=bearer(buyer))
    assert refused.status_code in (400, 422)


async def test_a_write_succeeds_when_redis_is_down(settings, admin_key):
    """Redis unreachable: the request commits and answers; the events wait for the cron relay."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    down = msgspec.structs.replace(settings, redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"))
    async with AsyncTestClient(app=create_app(down)) as client:
        created = await client.post("/v1/requests", json=request_body(), headers=bearer(buyer))
        assert created.status_code == 201, created.text
    db = Database(settings.db)
    try:
        async with db.reader() as session:
            pending = (await session.execute(select(func.count()).select_from(OutboxRow)
                                             .where(OutboxRow.state == "pending"))).scalar_one()
    finally:
        await db.dispose()
    assert pending >= 1


async def test_the_waker_relays_within_a_fraction_of_the_cron_tick(
    loopback_client, admin_key, redis_client, worker_ctx, db
):
    client = loopback_client
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    ctx = worker_ctx | {"redis": redis_client}
    waker = asyncio.create_task(relay_waker(ctx))
    try:
        await asyncio.sleep(0.2)
        # No cron runs here: only the wake-up can relay the events (how fast is tests/bench's business;
        # the 30 s only stop the wait).
        for _ in range(5):
            started = time.monotonic()
            created = await client.post("/v1/requests", json=request_body(), headers=bearer(buyer))
            assert created.status_code == 201
            while True:
                async with db.reader() as session:
                    left = (await session.execute(select(func.count()).select_from(OutboxRow)
                                                  .where(OutboxRow.state == "pending"))).scalar_one()
                if left == 0:
                    break
                assert time.monotonic() - started < 30, "the event was not relayed after the wake-up"
                await asyncio.sleep(0.005)
        # A commit made in the worker's own process (a job writing events) wakes it without Redis.
        async with db.writer() as session:
            await OutboxRepository(session).add(DomainEvent(
                type="request.cancelled", org_id=_org["id"], resource_type="request", resource_id=created.json()["id"],
                data={"id": created.json()["id"]}), now=datetime.now(UTC))
            await session.commit()
        await redis_client.delete(RELAY_WAKE_KEY)
        started = time.monotonic()
        while True:
            async with db.reader() as session:
                left = (await session.execute(select(func.count()).select_from(OutboxRow)
                                              .where(OutboxRow.state == "pending"))).scalar_one()
            if left == 0:
                break
            assert time.monotonic() - started < 30, "the worker's own commit did not wake it"
            await asyncio.sleep(0.005)
    finally:
        waker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waker


async def test_a_hanging_receiver_times_out_and_the_delivery_is_retried(
    loopback_client, admin_key, receiver, worker_ctx, db
):
    client = loopback_client
    # The total timeout is what stops the hanging attempt (the read timeout is longer); it leaves the
    # second attempt 2 s to get a local 200, with room for a loaded machine (0.5 s flaked in CI).
    policy = msgspec.structs.replace(worker_ctx["policy"], read_timeout_s=30, total_timeout_s=2)
    worker_ctx["sender"] = HttpWebhookSender(worker_ctx["http"], policy=policy)
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    hook = (await client.post("/v1/webhook-endpoints", headers=bearer(buyer),
                              json={"url": receiver.url, "event_types": ["request.created"]})).json()
    receiver.script = ["hang", 200]
    await client.post("/v1/requests", json=request_body(), headers=bearer(buyer))
    await relay_outbox(worker_ctx)
    [delivery_id] = worker_ctx["enqueue"].take(DELIVER)
    # Stopped by the policy's total timeout (2 s), not the receiver's hour: the attempt's history
    # below says "timeout" (the 60 s only stop a wait that would otherwise hang).
    async with asyncio.timeout(60):
        assert await deliver_webhooks(worker_ctx, [delivery_id]) == {delivery_id: "retry"}
    async with db.writer() as session:
        row = await session.get(WebhookDeliveryRow, delivery_id)
        assert row.state == "pending" and row.attempts == 1
        assert timedelta(seconds=4) < row.next_attempt_at - row.updated_at < timedelta(seconds=6)  # RT-1: 5 s ± 10 %
        await session.execute(update(WebhookDeliveryRow).values(next_attempt_at=datetime.now(UTC)))
        await session.commit()
    await relay_outbox(worker_ctx)
    outcome = await deliver_webhooks(worker_ctx, worker_ctx["enqueue"].take(DELIVER))
    history = (await client.get(f"/v1/webhook-endpoints/{hook['id']}/deliveries", headers=bearer(buyer))).json()
    attempts = history["items"][0]["history"]
    assert outcome == {delivery_id: "delivered"}, attempts  # the attempts say why, if not
    assert [(a["status_code"], a["error"]) for a in attempts] == [(None, "timeout"), (200, None)]
    assert len(receiver.ids()) == 1 and sum(receiver.ids().values()) == 2  # the same webhook-id twice


async def _endpoint(db: Database, endpoint_id: str) -> WebhookEndpointRow:
    async with db.reader() as session:
        row = await session.get(WebhookEndpointRow, endpoint_id)
        assert row is not None
        return row


async def test_five_failing_days_disable_the_endpoint_then_enable_and_recover(
    loopback_client, admin_key, receiver, worker_ctx, db
):
    client = loopback_client
    org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    hook = (await client.post("/v1/webhook-endpoints", headers=bearer(buyer),
                              json={"url": receiver.url, "event_types": ["request.created"]})).json()
    other = await receiver.__class__().start()  # a second endpoint of the same organisation hears about it
    try:
        sibling = (await client.post("/v1/webhook-endpoints", headers=bearer(buyer),
                                     json={"url": other.url, "event_types": ["webhook_endpoint.disabled"]})).json()
        receiver.default = 500
        for _ in range(3):
            await client.post("/v1/requests", json=request_body(), headers=bearer(buyer))
        await relay_outbox(worker_ctx)
        first, second, third = worker_ctx["enqueue"].take(DELIVER)
        box = worker_ctx["box"]
        sender = HttpWebhookSender(worker_ctx["http"], policy=worker_ctx["policy"], rng=random.Random(1))

        async def attempt(delivery_id: str, at: datetime):
            return await webhooks.attempt(db, delivery_id=delivery_id, sender=sender, box=box, now=at)

        t0 = datetime.now(UTC)
        assert await attempt(first, t0) == "retry"
        assert (await _endpoint(db, hook["id"])).failing_since == t0
        assert await attempt(second, t0 + timedelta(hours=3)) == "retry"  # two failed deliveries within 24 h
        assert await attempt(first, t0 + timedelta(days=4, hours=23)) == "retry"  # not yet five days
        assert (await _endpoint(db, hook["id"])).status == "active"
        assert await attempt(first, t0 + timedelta(days=5, minutes=1)) == "retry"
        endpoint = await _endpoint(db, hook["id"])
        assert endpoint.status == "disabled" and "every delivery failed for 5.0 days" in endpoint.disabled_reason
        listed = (await client.get("/v1/webhook-endpoints", headers=bearer(buyer))).json()["items"]
        assert next(e for e in listed if e["id"] == hook["id"])["disabled_reason"] == endpoint.disabled_reason
        async with db.reader() as session:  # its pending retries stopped
            states = dict((await session.execute(
                select(WebhookDeliveryRow.state, func.count()).where(WebhookDeliveryRow.endpoint_id == hook["id"])
                .group_by(WebhookDeliveryRow.state))).all())
        assert states == {"failed": 3}
        assert await attempt(third, t0 + timedelta(days=5, minutes=2)) is None  # nothing sent to it any more
        sent_before = len(receiver.received)

        # The owner is told: the event is listed, sent to the sibling endpoint and queued for e-mail.
        events = (await client.get("/v1/events", headers=bearer(buyer))).json()["items"]
        disabled = [e for e in events if e["type"] == "webhook_endpoint.disabled"]
        assert len(disabled) == 1 and disabled[0]["data"]["id"] == hook["id"]
        async with db.writer() as session:  # the clock of this test ran five days ahead: back to now
            await session.execute(update(OutboxRow).where(OutboxRow.id == disabled[0]["id"])
                                  .values(available_at=datetime.now(UTC)))
            # An e-mail needs an address: without one the relay queues no notification job.
            await session.execute(update(OrganizationRow).where(OrganizationRow.id == org["id"])
                                  .values(contact_email="numerique@ville-rennes.example"))
            await session.commit()
        await relay_outbox(worker_ctx)
        assert worker_ctx["enqueue"].take(NOTIFY) == [disabled[0]["id"]]
        sibling_jobs = worker_ctx["enqueue"].take(DELIVER)
        assert set((await deliver_webhooks(worker_ctx, sibling_jobs)).values()) == {"delivered"}
        assert [msgspec.json.decode(b)["type"] for b, _ in other.received] == ["webhook_endpoint.disabled"]

        # Recover refuses a disabled endpoint; enable, then recover re-sends the three, oldest first.
        since = {"since": (t0 - timedelta(minutes=5)).isoformat()}
        refused = await client.post(f"/v1/webhook-endpoints/{hook['id']}/recover", json=since, headers=bearer(buyer))
        assert refused.status_code == 409 and refused.json()["code"] == "endpoint-disabled"
        enabled = await client.post(f"/v1/webhook-endpoints/{hook['id']}/enable", headers=bearer(buyer))
        assert enabled.status_code == 200 and enabled.json()["status"] == "active"
        assert "disabled_reason" not in enabled.json()
        _stranger_org, stranger = await tenant(client, admin_key, "collectivite", "buyer")
        assert (await client.post(f"/v1/webhook-endpoints/{hook['id']}/recover", json=since,
                                  headers=bearer(stranger))).status_code == 404
        assert (await client.post(f"/v1/webhook-endpoints/{hook['id']}/enable",
                                  headers=bearer(stranger))).status_code == 404
        bad = await client.post(f"/v1/webhook-endpoints/{hook['id']}/recover", json={"since": "2026-01-01T00:00:00"},
                                headers=bearer(buyer))
        assert bad.status_code in (400, 422)  # a time without its offset is ambiguous
        receiver.default = 200
        recovered = await client.post(f"/v1/webhook-endpoints/{hook['id']}/recover", json=since,
                                      headers={**bearer(buyer), "Idempotency-Key": "recover-1"})
        assert recovered.status_code == 202 and recovered.json()["requeued"] == 3
        again = await client.post(f"/v1/webhook-endpoints/{hook['id']}/recover", json=since,
                                  headers={**bearer(buyer), "Idempotency-Key": "recover-1"})
        assert again.headers.get("idempotent-replayed") == "true" and again.json()["requeued"] == 3
        await relay_outbox(worker_ctx)
        due = worker_ctx["enqueue"].take(DELIVER)
        assert due == [first, second, third]  # oldest first
        assert await deliver_webhooks(worker_ctx, due) == dict.fromkeys(due, "delivered")
        assert len(receiver.received) == sent_before + 3
        assert (await _endpoint(db, hook["id"])).failing_since is None  # a success ends the streak
        assert sibling["id"] != hook["id"]
    finally:
        await other.stop()
    assert org["id"]


async def test_failures_that_never_start_the_clock_do_not_disable(loopback_client, admin_key, receiver, worker_ctx, db):
    """One delivery failing, then another five days later: fewer than two failures in the first
    24 h, so the streak restarts instead of disabling the endpoint (RT-3)."""
    client = loopback_client
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    hook = (await client.post("/v1/webhook-endpoints", headers=bearer(buyer),
                              json={"url": receiver.url, "event_types": ["request.created"]})).json()
    receiver.default = 503
    for _ in range(2):
        await client.post("/v1/requests", json=request_body(), headers=bearer(buyer))
    await relay_outbox(worker_ctx)
    first, second = worker_ctx["enqueue"].take(DELIVER)
    t0 = datetime.now(UTC)
    args = {"sender": HttpWebhookSender(worker_ctx["http"], policy=worker_ctx["policy"], rng=random.Random(2)),
            "box": worker_ctx["box"]}
    assert await webhooks.attempt(db, delivery_id=first, now=t0, **args) == "retry"
    later = t0 + timedelta(days=6)
    assert await webhooks.attempt(db, delivery_id=second, now=later, **args) == "retry"
    endpoint = await _endpoint(db, hook["id"])
    assert endpoint.status == "active" and endpoint.failing_since == later


async def test_a_maker_is_told_of_an_invitation_and_a_buyer_of_a_quote(client, admin_key, worker_ctx, db, redis_client):
    """The relay queues one ``notify`` job per invitation and quote to an organisation that gave an
    address (never for other events, nor for an organisation without one); the job e-mails the
    organisation's contact once, however often it runs."""
    created = await client.post("/v1/organizations", headers=bearer(admin_key), json={
        "kind": "collectivite", "name": "Commune de Cesson-Sévigné", "siret": make_siret(), "commune_insee": "35051",
        "contact_email": "achats@ville-cesson-sevigne.fr"})
    assert created.status_code == 201 and created.json()["contact_email"] == "achats@ville-cesson-sevigne.fr"
    invalid = await client.post("/v1/organizations", headers=bearer(admin_key), json={
        "kind": "collectivite", "name": "Commune X", "siret": make_siret(), "commune_insee": "35051",
        "contact_email": "Achats <achats@x.fr>"})
    assert invalid.status_code == 400
    buyer_org = created.json()
    buyer = (await client.post(f"/v1/organizations/{buyer_org['id']}/api-keys", json={"role": "buyer"},
                               headers=bearer(admin_key))).json()["key"]
    shop, maker = await make_workshop(client, admin_key, name="Menuiserie Legendre", commune_insee="35238",
                                      machines=WOOD_SHOP)
    silent, _silent_key = await make_workshop(client, admin_key, name="Atelier du Blavet", commune_insee="56260",
                                              machines=WOOD_SHOP)
    async with db.writer() as session:
        await session.execute(update(OrganizationRow).where(OrganizationRow.id == shop["org_id"])
                              .values(contact_email="atelier@menuiserie-legendre.fr"))
        await session.commit()
    await relay_outbox(worker_ctx)
    worker_ctx["enqueue"].jobs.clear()

    body = {"item": "france-services-desk", "quantity": 6, "deadline": (datetime.now(UTC) + timedelta(days=30))
            .isoformat(), "delivery": {"commune_insee": "35238"}, "procurement": {"buyer_siret": buyer_org["siret"], "estimated_value_eur_ht": "500"}}
    request = await client.post("/v1/requests", json=body, headers={**bearer(buyer), "Idempotency-Key": "desk-1"})
    assert request.status_code == 201 and request.json()["invited"] == 2, request.text
    await relay_outbox(worker_ctx)
    jobs = worker_ctx["enqueue"].take(NOTIFY)
    async with db.reader() as session:
        types = dict((await session.execute(select(OutboxRow.id, OutboxRow.type)
                                            .where(OutboxRow.id.in_(jobs)))).all())
    assert sorted(types.values()) == ["invitation.created"]  # the second workshop gave no address: no job
    async with db.reader() as session:
        invited = (await session.execute(select(func.count()).select_from(OutboxRow)
                                         .where(OutboxRow.type == "invitation.created"))).scalar_one()
    assert invited == 2
    notifier = FakeNotifier()
    ctx = worker_ctx | {"redis": redis_client, "notifier": notifier}
    results = sorted([await notify(ctx, outbox_id) for outbox_id in jobs])
    assert results == ["sent"]
    [mail] = notifier.sent
    assert mail.to == "atelier@menuiserie-legendre.fr"
    assert mail.subject.startswith("Nouvelle invitation à chiffrer")
    assert request.json()["id"] in mail.body and "6 unité(s)" in mail.body
    assert [await notify(ctx, outbox_id) for outbox_id in jobs if outbox_id in types].count("already sent") == 1
    assert len(notifier.sent) == 1

    quote = await client.post(f"/v1/requests/{request.json()['id']}/quotes",
                              headers={**bearer(maker), "Idempotency-Key": "quote-1"},
                              json={"unit_price_eur_ht": "1180.00", "vat_rate": "20", "quantity": 6,
                                    "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()})
    assert quote.status_code == 201, quote.text
    await relay_outbox(worker_ctx)
    [job] = worker_ctx["enqueue"].take(NOTIFY)
    assert await notify(ctx, job) == "sent"
    mail = notifier.sent[-1]
    assert mail.to == "achats@ville-cesson-sevigne.fr" and mail.subject.startswith("Nouveau devis reçu")
    assert "7\u202f080,00 € HT" in mail.body and quote.json()["id"] in mail.body
    assert silent["org_id"] != shop["org_id"]


async def test_the_enqueuer_keeps_arq_semantics_in_one_round_trip(redis_client):
    import uuid

    from arq.jobs import deserialize_job_raw

    from broker.services.jobs import deserialize
    from workers.enqueue import EPOCH_KEY, Enqueuer

    queue = f"test:queue:{uuid.uuid4().hex}"
    enqueuer = Enqueuer(redis_client, queue=queue)
    a, b = f"job-{uuid.uuid4().hex}", f"job-{uuid.uuid4().hex}"
    marker = f"test:marker:{uuid.uuid4().hex}"
    assert await enqueuer.enqueue_many([(DELIVER, (["d1", "d2"],), a), (NOTIFY, ("e1",), b)], marker=marker,
                                       marker_ttl_ms=60_000) == 2
    assert await enqueuer.enqueue_many([(DELIVER, (["d1"],), a)]) == 0  # queued already: skipped, as arq does
    assert await redis_client.zcard(queue) == 2
    function, args, _kwargs, _try, _at = deserialize_job_raw(await redis_client.get(f"arq:job:{a}"),
                                                             deserializer=deserialize)
    assert (function, list(args)) == (DELIVER, [["d1", "d2"]])  # what the worker will call
    await redis_client.set(f"arq:result:{b}", b"x")
    await redis_client.delete(f"arq:job:{b}")
    assert await enqueuer.enqueue_many([(NOTIFY, ("e1",), b)]) == 0  # a kept result blocks it too
    assert await enqueuer.absent([marker, marker + ":other"]) == {marker + ":other"}
    await redis_client.delete(EPOCH_KEY)
    assert await enqueuer.lost_data() is True  # Redis looks empty once...
    assert await enqueuer.lost_data() is False  # ...and is known again after


async def test_deliveries_whose_tick_was_never_queued_are_queued_again_at_once(
    loopback_client, admin_key, receiver, worker_ctx, db
):
    """A relay that died between its commit and its enqueue left deliveries marked queued, and no
    marker in Redis: the next pass queues them again without waiting for their lease."""
    client = loopback_client
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    await client.post("/v1/webhook-endpoints", headers=bearer(buyer), json={"url": receiver.url})
    for _ in range(3):
        await client.post("/v1/requests", json=request_body(), headers=bearer(buyer))
    queue = worker_ctx["enqueue"]
    real_enqueue = queue.enqueue_many

    async def crash(jobs, **kwargs):
        if jobs and jobs[0][0] == DELIVER:
            raise ConnectionError("the relay died here")
        return await real_enqueue(jobs, **kwargs)

    queue.enqueue_many = crash
    with pytest.raises(ConnectionError):
        await relay_outbox(worker_ctx)
    queue.enqueue_many = real_enqueue
    assert queue.take(DELIVER) == []
    async with db.writer() as session:  # the lease (40 s) runs; the crash was 3 s ago
        rows = (await session.execute(select(WebhookDeliveryRow))).scalars().all()
        assert rows and all(r.enqueued_at is not None for r in rows)
        for row in rows:
            row.enqueued_at -= timedelta(seconds=3)
        await session.commit()
    await relay_outbox(worker_ctx)
    assert sorted(queue.take(DELIVER)) == sorted(r.id for r in rows)
