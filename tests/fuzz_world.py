"""The seeded world the schemathesis fuzzing runs against (issue 18, item 5): two tenants, A and B,
each with every kind of object an id route can name, created once per module through the HTTP API
in process (the same paths a client takes), plus the webhook deliveries the relay makes of their
events.

Per tenant: a collectivité (a buyer key, an integration key and a spare buyer key), a manufacture with
a verified workshop (wood shop and fab lab machines, declared capacities), a coordination (a
coordinator key); requests open, quoting (with a quote), awarded three times (one order moved on to
``in_production``, one delivered and invoiced twice, one of its invoices submitted), cancelled, and a
larger desk award that makes a DECP record; a crisis call with two delivery points and its commitments (one accepted); a webhook endpoint for the buyer and
one for the maker, with their deliveries.

The fuzzing sends every case as tenant A's keys (``World.keys``) and draws the ids of its path
parameters from both tenants' objects: A's are reached, B's must answer 404 (or 403), never 5xx.
Estimates stay small (500 € HT) so that requests stay ``sans_publicite``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, tenant

#: The roles a case is sent as (each only to the operations it may call).
ROLES = ("admin", "buyer", "maker", "coordinator", "integration")

#: Path and query parameter names -> the kind of object whose ids they take.
ID_KINDS = {
    "org_id": "org", "key_id": "key", "workshop_id": "workshop", "request_id": "request", "quote_id": "quote",
    "invitation_id": "invitation", "order_id": "order", "endpoint_id": "endpoint", "delivery_id": "delivery",
    "record_id": "decp", "call_id": "call", "point_id": "point", "commitment_id": "commitment", "slug": "slug",
    "insee": "insee", "invoice_id": "invoice",
}


@dataclass
class World:
    keys: dict[str, str]  # tenant A's key per role (and the admin's): the keys every case is sent with
    ids: dict[str, list[str]] = field(default_factory=dict)  # kind -> ids of both tenants, A's first
    missing: list[str] = field(default_factory=list)  # parts that could not be seeded (named in the summary)
    seconds: float = 0.0  # how long seeding took

    def add(self, kind: str, *values: str) -> None:
        self.ids.setdefault(kind, []).extend(v for v in values if v not in self.ids.get(kind, []))

    def pool(self, parameter: str) -> list[str]:
        return self.ids.get(ID_KINDS.get(parameter, ""), [])

    def size(self) -> str:
        return ", ".join(f"{len(v)} {k}" for k, v in self.ids.items())


def _idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.method, str(response.request.url), response.text[:500])
    return response.json()


async def _tenant(client: Any, admin: str, name: str, world: World, *, calls: bool) -> dict[str, str]:
    """One tenant's objects; ``calls``: its keys are the ones the cases are sent with."""
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    delivery_date = (datetime.now(UTC).date() + timedelta(days=15)).isoformat()
    shop, maker = await make_workshop(client, admin, name=f"Atelier {name}", commune_insee="35238",
                                      machines=WOOD_SHOP + FAB_LAB,
                                      capacities={"monitor-stand": 20, "face-visor": 200, "france-services-desk": 5})
    buyer_org, buyer = await tenant(client, admin, "collectivite", "buyer", name=f"Commune {name}")
    coord_org, coordinator = await tenant(client, admin, "coordination", "coordinator", name=f"Préfecture {name}")
    keys_url = f"/v1/organizations/{buyer_org['id']}/api-keys"
    integration = await _ok(await client.post(keys_url, json={"role": "integration", "label": "ERP"},
                                              headers=bearer(admin)), 201)
    spare = await _ok(await client.post(keys_url, json={"role": "buyer", "label": "spare"}, headers=bearer(admin)),
                      201)
    world.add("org", buyer_org["id"], shop["org_id"], coord_org["id"])
    world.add("workshop", shop["id"])
    world.add("key", spare["id"])  # the keys the cases are sent with are never in the pool (a revoked one
    if not calls:  # would silence its role for the rest of the run)
        for org_id in (buyer_org["id"], shop["org_id"], coord_org["id"]):
            keys = (await _ok(await client.get(f"/v1/organizations/{org_id}/api-keys", headers=bearer(admin))))
            world.add("key", *sorted(k["id"] for k in keys["items"]))

    def request_body(quantity: int, item: str = "monitor-stand", **extra: Any) -> dict[str, Any]:
        return {"item": item, "quantity": quantity, "deadline": future,
                "delivery": {"commune_insee": "35238", "address": f"Mairie {name}"},
                "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}, "min_quotes": 1,
                **extra}

    async def post_request(body: dict[str, Any]) -> str:
        created = await _ok(await client.post("/v1/requests", json=body, headers={**bearer(buyer), **_idem()}), 201)
        world.add("request", created["id"])
        return str(created["id"])

    async def quote(request_id: str, quantity: int, price: str = "80") -> str:
        body = {"unit_price_eur_ht": price, "vat_rate": "20", "quantity": quantity, "delivery_date": delivery_date}
        created = await _ok(await client.post(f"/v1/requests/{request_id}/quotes", json=body,
                                              headers={**bearer(maker), **_idem()}), 201)
        world.add("quote", created["id"])
        return str(created["id"])

    async def award(request_id: str, quote_id: str) -> str:
        awarded = await _ok(await client.post(f"/v1/requests/{request_id}/award", json={"quote_ids": [quote_id]},
                                              headers={**bearer(buyer), **_idem()}), 201)
        order_id = str(awarded["orders"][0]["id"])
        world.add("order", order_id)
        return order_id

    open_request = await post_request(request_body(2))
    quoting = await post_request(request_body(2))
    await quote(quoting, 2)
    first, second = await post_request(request_body(4)), await post_request(request_body(3))
    moved = await award(first, await quote(first, 4))
    await award(second, await quote(second, 3))  # stays "awarded"
    for to in ("confirmed", "in_production"):
        await _ok(await client.post(f"/v1/orders/{moved}/transitions", json={"to": to},
                                    headers={**bearer(maker), **_idem()}))
    # Issue 23: a delivered order, one invoice issued and one submitted (a credit note's and a deposit's ids).
    delivered = await post_request(request_body(3))
    served = await award(delivered, await quote(delivered, 3))
    for key, to, extra in ((maker, "confirmed", {}), (maker, "in_production", {}), (maker, "ready", {}),
                           (maker, "shipped", {"tracking": "Colissimo 6A12345678901"}), (buyer, "delivered", {})):
        await _ok(await client.post(f"/v1/orders/{served}/transitions", json={"to": to, **extra},
                                    headers={**bearer(key), **_idem()}))
    for quantity in (1, 2):
        invoice = await _ok(await client.post(f"/v1/orders/{served}/invoices", json={"quantity": quantity},
                                              headers={**bearer(maker), **_idem()}), 201)
        world.add("invoice", invoice["id"])
    await _ok(await client.post(f"/v1/invoices/{invoice['id']}/submit", headers={**bearer(maker), **_idem()}), 202)
    cancelled = await post_request(request_body(1))
    await _ok(await client.post(f"/v1/requests/{cancelled}/cancel", headers=bearer(buyer)))
    invitations = (await _ok(await client.get("/v1/invitations?limit=100", headers=bearer(maker))))["items"]
    world.add("invitation", *sorted(i["id"] for i in invitations))

    # Issue 17: an award above the DECP threshold makes a record (a budget, not an estimate).
    desk = request_body(30, "france-services-desk", budget_eur_ht="45000.00")
    desk["procurement"] = {"buyer_siret": desk["procurement"]["buyer_siret"]}
    try:
        desk_request = await post_request(desk)
        await award(desk_request, await quote(desk_request, 30, "1500.00"))
    except AssertionError as exc:
        world.missing.append(f"DECP record of tenant {name}: {exc}")

    call = await _ok(await client.post("/v1/crisis-calls", headers={**bearer(coordinator), **_idem()}, json={
        "item": "face-visor", "deadline": future, "priority": 1, "delivery_points": [
            {"label": f"Hôpital {name}", "commune_insee": "35238", "quantity": 300, "priority": 1},
            {"label": f"EHPAD {name}", "commune_insee": "35238", "quantity": 100, "priority": 2}]}), 201)
    detail = await _ok(await client.get(f"/v1/crisis-calls/{call['id']}", headers=bearer(coordinator)))
    world.add("call", detail["id"])
    world.add("point", *[p["id"] for p in detail["delivery_points"]])
    world.add("commitment", *[c["id"] for c in detail["commitments"]])
    mine = [c for c in detail["commitments"] if c["workshop_id"] == shop["id"]]
    if mine:
        await _ok(await client.post(f"/v1/commitments/{mine[0]['id']}/accept", headers=bearer(maker)))

    for key, url in ((buyer, f"https://erp.commune-{name.lower()}.fr/hooks"),
                     (maker, f"https://atelier-{name.lower()}.fr/webhooks")):
        endpoint = await _ok(await client.post("/v1/webhook-endpoints", json={"url": url}, headers=bearer(key)), 201)
        world.add("endpoint", endpoint["id"])
    return {"admin": admin, "buyer": buyer, "maker": maker, "coordinator": coordinator,
            "integration": integration["key"], "open": open_request}


async def seed(client: Any, admin: str, relay: Callable[[], Awaitable[dict[str, list[str]]]]) -> World:
    """Both tenants through ``client`` (an in-process client of the app), then ``relay()`` turns
    their events into webhook deliveries and returns the ids only the database shows (``delivery``,
    ``decp``)."""
    world = World(keys={})
    world.add("slug", "monitor-stand", "face-visor", "france-services-desk", "uns1-mask")
    world.add("insee", "35238", "22113", "75056", "2A004", "97411")
    a = await _tenant(client, admin, "A", world, calls=True)
    await _tenant(client, admin, "B", world, calls=False)
    world.keys = {role: a[role] for role in ROLES}
    for kind, ids in (await relay()).items():
        world.add(kind, *ids)
    for kind in ("delivery", "decp"):
        if not world.ids.get(kind):
            world.missing.append(f"no {kind}")
    return world
