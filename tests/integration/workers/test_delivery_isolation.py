"""Issue 18 F1: one delivery's failure never fails its batch (in-process, on SQLite and PostgreSQL).

A poisoned endpoint (a URL the HTTP client raises on outside its own errors: port 65536, as an endpoint
registered before registration checked ports; or a sender that raises anything at all for it) shares a
delivery job with good endpoints of other tenants. Every good delivery arrives exactly once and is
recorded delivered; the poisoned one gets an attempt with its error and the normal retry schedule; the
job does not fail; running the job again (a batch resumed after its lease) re-sends nothing recorded.
Only loopback receivers: nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import pytest
from factories import bearer, make_siret, tenant
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from support_receiver import HookReceiver
from support_relay import FakeQueue

from adapters.webhooks.base import Attempt, DeliveryPolicy, Outcome
from adapters.webhooks.delivery import HttpWebhookSender
from adapters.webhooks.transport import make_client
from broker.app import create_app
from broker.db.models import WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow
from broker.services.jobs import DELIVER
from broker.services.webhooks import SecretBox
from workers.jobs.webhooks import deliver_webhooks, relay_outbox

POISON = "http://127.0.0.1:65536/x"


def request_body() -> dict[str, object]:
    return {"item": "monitor-stand", "quantity": 3, "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "delivery": {"commune_insee": "35238"}, "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}


class Exploding:
    """The real sender, except for one URL, where it raises an arbitrary exception."""

    def __init__(self, inner: HttpWebhookSender, url: str) -> None:
        self.inner, self.url, self.calls = inner, url, 0

    async def send(self, endpoint_url: str, secrets: Sequence[str], event_id: str, payload: bytes, *,
                   now: datetime, attempt: int = 1) -> Attempt:
        if endpoint_url == self.url:
            self.calls += 1
            raise RuntimeError("le pilote a explosé")
        return await self.inner.send(endpoint_url, secrets, event_id, payload, now=now, attempt=attempt)


class Nul:
    """The real sender, except that one URL's answer carries NUL characters (PostgreSQL's text refuses them)."""

    def __init__(self, inner: HttpWebhookSender, url: str) -> None:
        self.inner, self.url = inner, url

    async def send(self, endpoint_url: str, secrets: Sequence[str], event_id: str, payload: bytes, *,
                   now: datetime, attempt: int = 1) -> Attempt:
        result = await self.inner.send(endpoint_url, secrets, event_id, payload, now=now, attempt=attempt)
        if endpoint_url != self.url:
            return result
        return msgspec.structs.replace(result, status_code=500, response_excerpt="a\x00b", error="http_500\x00",
                                       outcome=Outcome.RETRY, next_delay_s=5.0)


@pytest.fixture
async def receivers():
    started = [await HookReceiver().start() for _ in range(3)]
    yield started
    for rec in started:
        await rec.stop()


@pytest.fixture
async def world(settings, admin_key, receivers, db):
    """Three tenants with a good endpoint each, a fourth whose endpoint is poisoned; one event each."""
    settings = msgspec.structs.replace(settings, webhooks_allow_loopback=True)
    policy = DeliveryPolicy(allow_loopback=True, connect_timeout_s=2, read_timeout_s=5, total_timeout_s=8)
    http = make_client(policy)
    ctx = {"db": db, "enqueue": FakeQueue(), "http": http, "sender": HttpWebhookSender(http, policy=policy),
           "box": SecretBox(settings.secret_key)}
    async with AsyncTestClient(create_app(settings)) as client:
        keys, good = [], []
        for rec in [*receivers, None]:
            _org, key = await tenant(client, admin_key, "collectivite", "buyer")
            made = await client.post("/v1/webhook-endpoints", headers=bearer(key),
                                     json={"url": rec.url if rec else receivers[0].url,
                                           "event_types": ["request.created"]})
            assert made.status_code == 201, made.text
            keys.append(key)
            if rec is None:
                poisoned = made.json()["id"]
            else:
                good.append(made.json()["id"])
        # Registration now refuses this URL (below): the row stands for an endpoint registered before.
        async with db.writer() as session:
            await session.execute(update(WebhookEndpointRow).where(WebhookEndpointRow.id == poisoned)
                                  .values(url=POISON))
            await session.commit()
        # The poisoned tenant's event first: its delivery leads the batch.
        for key in [keys[-1], *keys[:-1]]:
            created = await client.post("/v1/requests", json=request_body(), headers=bearer(key))
            assert created.status_code == 201, created.text
        yield ctx, good, poisoned, client, keys
    await http.aclose()


async def _by_endpoint(db, endpoint_ids):
    async with db.reader() as session:
        rows = (await session.execute(select(WebhookDeliveryRow)
                                      .where(WebhookDeliveryRow.endpoint_id.in_(endpoint_ids)))).scalars().all()
        attempts = (await session.execute(select(WebhookAttemptRow).where(
            WebhookAttemptRow.delivery_id.in_([r.id for r in rows])))).scalars().all()
    return ({r.endpoint_id: r for r in rows},
            {r.id: [a for a in attempts if a.delivery_id == r.id] for r in rows})


async def _one_batch(ctx) -> list[str]:
    await relay_outbox(ctx)
    ids = ctx["enqueue"].take(DELIVER)
    assert len(ids) == 4
    return ids


async def _check(ctx, db, receivers, good, poisoned, ids, error_part):
    outcomes = await deliver_webhooks(ctx, ids)  # the job does not fail
    rows, attempts = await _by_endpoint(db, [*good, poisoned])
    seen = {rows[e].id: [(a.status_code, a.error, a.latency_ms) for a in attempts[rows[e].id]] for e in good}
    assert outcomes == {**{rows[e].id: "delivered" for e in good}, rows[poisoned].id: "retry"}, seen
    for rec, endpoint in zip(receivers, good, strict=True):
        assert sum(rec.ids().values()) == 1  # exactly once
        assert rows[endpoint].state == "delivered" and rows[endpoint].attempts == 1
        assert [(a.status_code, a.outcome) for a in attempts[rows[endpoint].id]] == [(200, "delivered")]
    bad = rows[poisoned]
    assert bad.state == "pending" and bad.attempts == 1 and bad.enqueued_at is None
    [attempt] = attempts[bad.id]
    assert attempt.outcome == "retry" and attempt.status_code is None and error_part in (attempt.error or "")
    assert timedelta(seconds=4) < bad.next_attempt_at - bad.updated_at < timedelta(seconds=6)  # RT-1: 5 s ± 10 %

    # The batch runs again (its lease expired, arq retried it): nothing recorded is sent again.
    assert set((await deliver_webhooks(ctx, ids)).values()) == {None}
    assert [sum(rec.ids().values()) for rec in receivers] == [1, 1, 1]
    _rows, again = await _by_endpoint(db, [*good, poisoned])
    assert [len(a) for a in again.values()] == [1, 1, 1, 1]  # no attempt recorded twice either


async def test_a_port_out_of_range_fails_only_its_own_delivery(world, receivers, db):
    ctx, good, poisoned, _client, _keys = world
    ids = await _one_batch(ctx)
    # The sender now refuses the port before connecting (before, connect() raised OverflowError).
    await _check(ctx, db, receivers, good, poisoned, ids, "url_refused: le port 65536")


async def test_the_real_sender_turns_any_exception_into_a_failed_attempt():
    """Under the SSRF check: whatever the transport raises (here connect()'s OverflowError in anyio's
    group) is this attempt's error, never the caller's exception."""

    def boom(request: httpx.Request) -> httpx.Response:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("connect(): port must be 0-65535.")])

    policy = DeliveryPolicy(allow_loopback=True)
    async with make_client(policy, inner=httpx.MockTransport(boom)) as http:
        sent = await HttpWebhookSender(http, policy=policy).send(
            "http://127.0.0.1:8080/x", ["whsec_" + "A" * 43 + "="], "msg_1", b"{}", now=datetime.now(UTC))
    assert sent.outcome is Outcome.RETRY and sent.status_code is None and sent.next_delay_s
    assert sent.error == "OverflowError: connect(): port must be 0-65535."


async def test_any_exception_of_the_sender_fails_only_its_own_delivery(world, receivers, db):
    ctx, good, poisoned, _client, _keys = world
    exploding = Exploding(ctx["sender"], POISON)
    ctx["sender"] = exploding
    ids = await _one_batch(ctx)
    await _check(ctx, db, receivers, good, poisoned, ids, "RuntimeError: le pilote a explosé")
    assert exploding.calls == 1


async def test_an_unreadable_secret_fails_only_its_own_delivery(world, receivers, db):
    """A secret sealed with another key (a BROKER_SECRET_KEY changed by hand): nothing is sent to that
    endpoint, its delivery records why, the others go."""
    ctx, good, poisoned, _client, _keys = world
    async with db.writer() as session:
        await session.execute(update(WebhookEndpointRow).where(WebhookEndpointRow.id == poisoned)
                              .values(url=receivers[0].url, secret_enc="gAAAA-not-a-token"))
        await session.commit()
    ids = await _one_batch(ctx)
    await _check(ctx, db, receivers, good, poisoned, ids, "secret_unreadable: InvalidToken")


async def test_an_unstorable_answer_does_not_lose_the_batch(world, receivers, db):
    """NUL characters in a receiver's answer (PostgreSQL's text refuses them) are recorded without them."""
    ctx, good, poisoned, _client, _keys = world
    async with db.writer() as session:  # the poisoned endpoint answers, with NULs
        await session.execute(update(WebhookEndpointRow).where(WebhookEndpointRow.id == poisoned)
                              .values(url=receivers[0].url + "?nul"))
        await session.commit()
    ctx["sender"] = Nul(ctx["sender"], receivers[0].url + "?nul")
    ids = await _one_batch(ctx)
    outcomes = await deliver_webhooks(ctx, ids)
    rows, attempts = await _by_endpoint(db, [*good, poisoned])
    assert outcomes[rows[poisoned].id] == "retry"
    assert all(outcomes[rows[e].id] == "delivered" for e in good)
    [attempt] = attempts[rows[poisoned].id]
    assert (attempt.response_excerpt, attempt.error) == ("ab", "http_500")
    assert set((await deliver_webhooks(ctx, ids)).values()) == {None}
    assert [sum(rec.ids().values()) for rec in receivers] == [2, 1, 1]  # the first also got the poisoned one


async def test_a_result_the_database_refuses_is_recorded_alone(world, receivers, db, backend):
    """The batch's one transaction fails (PostgreSQL's integer cannot hold this status): each delivery is
    then recorded in its own, the refused one as a bare attempt with the reason; nothing is sent again."""
    ctx, good, poisoned, _client, _keys = world
    odd = receivers[0].url + "?odd"
    async with db.writer() as session:
        await session.execute(update(WebhookEndpointRow).where(WebhookEndpointRow.id == poisoned).values(url=odd))
        await session.commit()

    class Huge(Nul):
        async def send(self, endpoint_url, secrets, event_id, payload, *, now, attempt=1):
            result = await self.inner.send(endpoint_url, secrets, event_id, payload, now=now, attempt=attempt)
            if endpoint_url != self.url:
                return result
            return msgspec.structs.replace(result, status_code=2**40, outcome=Outcome.RETRY, next_delay_s=5.0)

    ctx["sender"] = Huge(ctx["sender"], odd)
    ids = await _one_batch(ctx)
    outcomes = await deliver_webhooks(ctx, ids)
    rows, attempts = await _by_endpoint(db, [*good, poisoned])
    seen = {rows[e].id: [(a.status_code, a.error, a.latency_ms) for a in attempts[rows[e].id]] for e in good}
    assert outcomes == {**{rows[e].id: "delivered" for e in good}, rows[poisoned].id: "retry"}, seen
    assert all(rows[e].state == "delivered" and len(attempts[rows[e].id]) == 1 for e in good)
    [attempt] = attempts[rows[poisoned].id]
    assert rows[poisoned].attempts == 1 and rows[poisoned].state == "pending"
    if backend == "postgresql":
        assert attempt.status_code is None and attempt.error.startswith("unrecordable_result: ")
    assert set((await deliver_webhooks(ctx, ids)).values()) == {None}
    assert [sum(rec.ids().values()) for rec in receivers] == [2, 1, 1]


@pytest.mark.parametrize("url", ["http://127.0.0.1:65536/x", "http://127.0.0.1:0/x", "https://[::1]:99999/x",
                                 "https://hooks.example.fr:70000/x"])
async def test_registration_refuses_a_port_out_of_range(world, url):
    _ctx, _good, _poisoned, client, keys = world
    refused = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=bearer(keys[0]))
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == "webhook-url-unsafe"
    assert [e["pointer"] for e in body["errors"]] == ["/url"]
    assert "port" in body["errors"][0]["detail"]


async def test_an_accepted_public_url_is_never_reached_by_the_tests(world, receivers, db, egress):
    """Item 6: a public URL is accepted at registration; the relay and the real sender then run, and
    the tests' guard (tests/integration/conftest.py) records the lookup and refuses it: nothing leaves."""
    ctx, _good, _poisoned, client, keys = world
    made = await client.post("/v1/webhook-endpoints", headers=bearer(keys[0]),
                             json={"url": "https://erp.commune-b.fr/hooks", "event_types": ["request.created"]})
    assert made.status_code == 201, made.text
    created = await client.post("/v1/requests", json=request_body(), headers=bearer(keys[0]))
    assert created.status_code == 201, created.text
    await relay_outbox(ctx)
    await deliver_webhooks(ctx, ctx["enqueue"].take(DELIVER))
    # keys[0]'s two events reach it (the world's one was not relayed yet): two lookups, no connection.
    assert egress.lookups == [("erp.commune-b.fr", 443)] * 2 and egress.refused == []
    async with db.reader() as session:
        errors = (await session.execute(select(WebhookAttemptRow.status_code, WebhookAttemptRow.error).join(
            WebhookDeliveryRow, WebhookDeliveryRow.id == WebhookAttemptRow.delivery_id)
            .where(WebhookDeliveryRow.endpoint_id == made.json()["id"]))).all()
    assert len(errors) == 2 and all(s is None and "the tests resolve no name" in e for s, e in errors)
    # An address literal is refused before connecting, and recorded.
    async with db.writer() as session:
        await session.execute(update(WebhookEndpointRow).where(WebhookEndpointRow.id == made.json()["id"])
                              .values(url="https://193.51.24.1/hooks"))
        await session.execute(update(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == made.json()["id"])
                              .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    await relay_outbox(ctx)
    await deliver_webhooks(ctx, ctx["enqueue"].take(DELIVER))
    assert [t.ip for t in egress.refused] == ["193.51.24.1"] * 2
