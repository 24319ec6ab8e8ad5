"""The event catalogue (broker/domain/events.py) against what the services really write: every
event type is emitted through the HTTP API and the scheduled jobs' services, then each outbox
payload is decoded strictly by the tagged union and its webhook body (the relay's envelope) is
validated against its OpenAPI ``webhooks`` schema. docs/events.md is the catalogue's."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from factories import FAB_LAB, WOOD_SHOP, bearer, delivered_order, make_siret, make_workshop, tenant
from jsonschema import Draft202012Validator
from sqlalchemy import select

from adapters.chorus.fake import FakeChorusPro
from adapters.geocoding import load_communes
from adapters.webhooks.base import Outcome
from adapters.webhooks.fake import FakeWebhookSender
from broker.db.models import OutboxRow
from broker.domain.events import CATALOGUE, EVENT_TYPES, AnyEvent, markdown, recorded
from broker.domain.procurement import paris_day
from broker.services import webhooks
from broker.services.crisis_allocation import expire_proposals, flag_lagging_calls, rebalance_call
from broker.services.invoices import check_statuses, deposit_submitted, flag_overdue
from broker.services.orders import flag_late_orders
from broker.services.requests import close_quote_windows
from broker.settings import CrisisSettings

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_docs_are_the_catalogues() -> None:
    assert DOCS.read_text(encoding="utf-8") == markdown(), "run: python -m broker.domain.events > docs/events.md"


def test_no_payload_field_shadows_the_envelope() -> None:
    """The relay merges a payload with ``sequence``, ``resource_type`` and ``resource_id``."""
    for kind in CATALOGUE:
        info = msgspec.inspect.type_info(kind)
        assert isinstance(info, msgspec.inspect.StructType)
        names = {f.encode_name for f in info.fields}
        assert not names & {"type", "sequence", "resource_type", "resource_id"}, kind


async def _fabrication(client: Any, admin_key: str, db: Any) -> dict[str, Any]:
    """Requests, invitations, quotes, an award and an order to delivery; a cancelled request; the
    deadline watch and the quote-window clock. Returns the buyer's key."""
    makers = [await make_workshop(client, admin_key, name=f"Menuiserie {insee}", commune_insee=insee,
                                  machines=WOOD_SHOP) for insee in ("35238", "35360", "29232")]
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="56165")
    await _ok(await client.post("/v1/webhook-endpoints", json={"url": "https://hooks.example.org/broker"},
                                headers=bearer(buyer)), 201)

    def desk() -> dict[str, Any]:
        return {"item": "france-services-desk", "quantity": 6,
                "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                "delivery": {"commune_insee": "35238", "address": "2 rue de la Mairie"},
                "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}

    request = await _ok(await client.post("/v1/requests", json=desk(), headers={**bearer(buyer), **idem()}), 201)
    assert request["invited"] == 3
    quote = {"unit_price_eur_ht": "1100.00", "vat_rate": "20", "quantity": 6,
             "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()}
    quotes = [await _ok(await client.post(f"/v1/requests/{request['id']}/quotes", json=quote,
                                          headers={**bearer(key), **idem()}), 201) for _shop, key in makers[:2]]
    invitations = (await _ok(await client.get("/v1/invitations", headers=bearer(makers[2][1]))))["items"]
    invitation = next(i for i in invitations if i["request_id"] == request["id"])
    await _ok(await client.post(f"/v1/invitations/{invitation['id']}/decline", json={"reason": "complet"},
                                headers={**bearer(makers[2][1]), **idem()}))
    await _ok(await client.post(f"/v1/quotes/{quotes[1]['id']}/withdraw", headers={**bearer(makers[1][1]), **idem()}))
    awarded = await _ok(await client.post(f"/v1/requests/{request['id']}/award", headers={**bearer(buyer), **idem()},
                                          json={"quote_ids": [quotes[0]["id"]], "justification": "Urgence"}), 201)
    order, maker = awarded["orders"][0], makers[0][1]

    async def move(key: str, to: str, **extra: str) -> None:
        await _ok(await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": to, **extra},
                                    headers=bearer(key)))

    await move(maker, "confirmed")
    await _ok(await client.post(f"/v1/orders/{order['id']}/progress", json={"units_done": 2}, headers=bearer(maker)))
    async with db.writer() as session:  # the deadline watch, after the request's deadline
        assert await flag_late_orders(session, now=datetime.now(UTC) + timedelta(days=31)) == 1
        await session.commit()
    await move(maker, "in_production")
    await move(maker, "ready")
    await move(maker, "shipped", tracking="Colissimo 6A12345678901")
    await move(buyer, "delivered")

    cancelled = await _ok(await client.post("/v1/requests", json=desk(), headers={**bearer(buyer), **idem()}), 201)
    await _ok(await client.post(f"/v1/requests/{cancelled['id']}/cancel", headers={**bearer(buyer), **idem()}))
    await _ok(await client.post("/v1/requests", json=desk(), headers={**bearer(buyer), **idem()}), 201)
    async with db.writer() as session:  # the quote-window clock: every window above is past
        assert await close_quote_windows(session, now=datetime.now(UTC) + timedelta(days=4)) == 3
        await session.commit()
    return {"buyer": buyer}


async def _crisis(client: Any, admin_key: str, db: Any) -> None:
    """A crisis call allocated, accepted, declined, reported on and completed; rebalanced after a
    decline, points added, a quantity raised, expired proposals and lagging commitments; closed."""
    makers = [await make_workshop(client, admin_key, name=f"Fab lab {insee}", commune_insee=insee, machines=FAB_LAB,
                                  radius_km=80, capacities={"face-visor": per_day})
              for insee, per_day in (("35238", 30), ("35047", 20), ("35051", 25), ("35115", 15), ("35360", 10))]
    keys = {shop["id"]: key for shop, key in makers}
    _org, coordinator = await tenant(client, admin_key, "coordination", "coordinator")
    body = {"item": "face-visor", "deadline": (datetime.now(UTC) + timedelta(days=10)).isoformat(), "priority": 1,
            "delivery_points": [{"label": "CHU de Rennes", "commune_insee": "35238", "quantity": 400, "priority": 1},
                                {"label": "EHPAD de Vitré", "commune_insee": "35360", "quantity": 150, "priority": 2}]}
    call = await _ok(await client.post("/v1/crisis-calls", json=body, headers=bearer(coordinator)), 201)
    detail = await _ok(await client.get(f"/v1/crisis-calls/{call['id']}", headers=bearer(coordinator)))
    # one commitment per workshop: to complete, to leave lagging with some units made, to leave
    # lagging with none, to decline; the others stay proposed until they expire
    firsts = list({c["workshop_id"]: c for c in sorted(detail["commitments"], key=lambda c: c["id"])}.values())
    assert len(firsts) >= 5, detail["commitments"]
    done, slow, silent, declined = firsts[:4]

    async def post(c: dict[str, Any], path: str, json: dict[str, Any] | None = None) -> None:
        await _ok(await client.post(f"/v1/commitments/{c['id']}/{path}", json=json, headers=bearer(keys[c["workshop_id"]])))

    for c in (done, slow, silent):
        await post(c, "accept")
    await post(done, "progress", {"units_produced": done["quantity"], "units_delivered": done["quantity"]})
    await post(slow, "progress", {"units_produced": 3, "units_delivered": 1})
    await post(declined, "decline", {"reason": "imprimante en panne"})
    async with db.writer() as session:
        assert await rebalance_call(session, call_id=call["id"], settings=CrisisSettings(), now=datetime.now(UTC))
        await session.commit()
    await _ok(await client.post(f"/v1/crisis-calls/{call['id']}/delivery-points", headers=bearer(coordinator),
                                json={"delivery_points": [{"label": "Pharmacie de Bruz", "commune_insee": "35047",
                                                           "quantity": 60, "priority": 2}]}), 201)
    point = detail["delivery_points"][0]["id"]
    await _ok(await client.patch(f"/v1/crisis-calls/{call['id']}/delivery-points/{point}", json={"quantity": 420},
                                 headers=bearer(coordinator)))
    later = datetime.now(UTC) + timedelta(hours=25)  # proposals expired (2 h), slow and silent quiet for 24 h
    async with db.writer() as session:
        assert await expire_proposals(session, call_id=call["id"], now=later) > 0
        await session.commit()
    async with db.writer() as session:
        await flag_lagging_calls(session, settings=CrisisSettings(), now=later)
        assert await rebalance_call(session, call_id=call["id"], settings=CrisisSettings(), now=later)
        await session.commit()
    await _ok(await client.post(f"/v1/crisis-calls/{call['id']}/close", headers=bearer(coordinator)))


async def _decp(client: Any, admin_key: str) -> None:
    """An award of 45 000 € HT (at or above the DECP threshold: its record), then marked published."""
    _shop, maker = await make_workshop(client, admin_key, name="Menuiserie de Cesson", commune_insee="35051",
                                       machines=WOOD_SHOP, capacities={"france-services-desk": 5})
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    body = {"item": "france-services-desk", "quantity": 30,
            "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "delivery": {"commune_insee": "35238", "address": "2 rue de la Mairie"},
            "procurement": {"buyer_siret": make_siret()}, "budget_eur_ht": "45000.00"}
    request = await _ok(await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()}), 201)
    quote = await _ok(await client.post(
        f"/v1/requests/{request['id']}/quotes", headers={**bearer(maker), **idem()},
        json={"unit_price_eur_ht": "1500.00", "vat_rate": "20", "quantity": 30,
              "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()}), 201)
    await _ok(await client.post(f"/v1/requests/{request['id']}/award", headers={**bearer(buyer), **idem()},
                                json={"quote_ids": [quote["id"]], "justification": "Seul devis reçu"}), 201)
    year = paris_day(datetime.now(UTC)).year
    document = await _ok(await client.get("/v1/decp", params={"year": year}, headers=bearer(buyer)))
    [marche] = document["marches"]["marche"]
    await _ok(await client.post(f"/v1/decp/{marche['id']}/published", headers={**bearer(buyer), **idem()}))


async def _invoicing(client: Any, admin_key: str, db: Any) -> None:
    """An invoice issued, credited, issued again, submitted, deposited and walked to payment by the
    fake Chorus Pro; another left unpaid past its due date (the overdue watch)."""
    world = await delivered_order(client, admin_key, maker_name="Menuiserie de Bain-de-Bretagne")
    maker = {**bearer(world["maker"]), **idem()}
    first = await _ok(await client.post(f"/v1/orders/{world['order']['id']}/invoices", json={"quantity": 3},
                                        headers=maker), 201)
    await _ok(await client.post(f"/v1/invoices/{first['id']}/credit-notes", json={"reason": "Erreur de prix"},
                                headers={**bearer(world["maker"]), **idem()}), 201)
    second = await _ok(await client.post(f"/v1/orders/{world['order']['id']}/invoices", json={},
                                         headers={**bearer(world["maker"]), **idem()}), 201)
    await _ok(await client.post(f"/v1/invoices/{second['id']}/submit", headers={**bearer(world["maker"]), **idem()}),
              202)
    clock = [datetime.now(UTC).timestamp()]
    chorus = FakeChorusPro(step_s=60, closed_services=frozenset(), clock=lambda: clock[0])
    now = datetime.now(UTC)
    assert await deposit_submitted(db, chorus=chorus, geocoder=load_communes(), syntax="ubl", now=now) == 1
    clock[0] += 60
    assert await check_statuses(db, chorus=chorus, now=now + timedelta(minutes=1), poll_s=0) == 1
    async with db.writer() as session:  # 31 days on, still not paid
        assert await flag_overdue(session, now=now + timedelta(days=31)) == 1
        await session.commit()


async def _disable_endpoint(db: Any, settings: Any) -> list[bytes]:
    """One relay pass (the buyer's endpoint subscribes to everything), and a first delivery answered
    410 Gone: the endpoint is disabled. Returns the bodies the relay built for that endpoint."""
    now = datetime.now(UTC)
    plan = await webhooks.plan_relay(db, now=now, limit=10_000)
    _claimed, due = await db.write(lambda connection: webhooks.commit_relay(
        connection, plan, now=now, skip_locked=db.skips_locked))
    assert due
    sender = FakeWebhookSender([Outcome.DISABLE])
    outcomes = await webhooks.attempt_many(db, delivery_ids=[due[0][0]], sender=sender,
                                           box=webhooks.SecretBox(settings.secret_key), now=now)
    assert outcomes == {due[0][0]: Outcome.DISABLE}
    return [d["payload"] for rows in plan.deliveries.values() for d in rows]


def _validators(openapi: dict[str, Any]) -> dict[str, Draft202012Validator]:
    return {event_type: Draft202012Validator(
        item["post"]["requestBody"]["content"]["application/json"]["schema"],
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    ) for event_type, item in openapi["webhooks"].items()}


async def test_every_event_type_is_emitted_and_matches_its_schema(client, admin_key, db, settings):
    await _fabrication(client, admin_key, db)
    await _crisis(client, admin_key, db)
    await _decp(client, admin_key)
    await _invoicing(client, admin_key, db)
    sent = await _disable_endpoint(db, settings)
    validators = _validators(await _ok(await client.get("/schema/openapi.json")))
    assert list(validators) == list(EVENT_TYPES)

    async with db.reader() as session:
        rows = list((await session.execute(select(OutboxRow).order_by(OutboxRow.created_at, OutboxRow.id))).scalars())
    for row in rows:
        where = f"{row.type} {row.payload}"
        # strict: every field present with its exact type, none unknown
        event = msgspec.json.decode(msgspec.json.encode({"type": row.type, **row.payload}), type=AnyEvent,
                                    strict=True)
        assert type(event).resource == row.resource_type, where
        assert recorded(event, org_id=row.org_id, resource_id=row.resource_id).data == row.payload, where
        body = json.loads(webhooks.envelope(row, row.payload))
        assert list(validators[row.type].iter_errors(body)) == [], where
    for payload in sent:  # the very bytes the relay stored for sending
        body = json.loads(payload)
        assert list(validators[body["type"]].iter_errors(body)) == [], body
    assert {row.type for row in rows} == set(EVENT_TYPES), set(EVENT_TYPES) - {row.type for row in rows}
