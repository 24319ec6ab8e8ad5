"""Plain async helpers that create tenants and keys through the real HTTP API."""

from __future__ import annotations

import itertools
from typing import Any

from broker.domain.identifiers import luhn_ok

_counter = itertools.count(1)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_siret(seed: int | None = None) -> str:
    """A fresh SIRET passing Luhn (SIREN and SIRET both), for tests."""
    n = next(_counter) if seed is None else seed
    base = f"{(200000000 + n * 7919) % 10**8:08d}"
    for d in range(10):
        siren = base + str(d)
        if luhn_ok(siren):
            break
    for tail in range(10**4, 10**5):
        siret = siren + f"{tail:05d}"
        if luhn_ok(siret):
            return siret
    raise AssertionError("unreachable")


async def create_org(
    client: Any, admin_key: str, *, kind: str = "collectivite", name: str | None = None,
    commune_insee: str = "35238",
) -> dict[str, Any]:
    body = {"kind": kind, "name": name or f"Organisation {next(_counter)}", "siret": make_siret(),
            "commune_insee": commune_insee}
    response = await client.post("/v1/organizations", json=body, headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_key(client: Any, admin_key: str, org_id: str, role: str) -> str:
    response = await client.post(f"/v1/organizations/{org_id}/api-keys", json={"role": role, "label": "test"},
                                 headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def tenant(client: Any, admin_key: str, kind: str, role: str, **kw: Any) -> tuple[dict[str, Any], str]:
    org = await create_org(client, admin_key, kind=kind, **kw)
    return org, await create_key(client, admin_key, org["id"], role)


WOOD_SHOP = [
    {"process": "cnc_routing", "envelope_mm": [2500, 1250, 100],
     "materials": [{"material": "birch_plywood", "max_thickness_mm": 30}, {"material": "mdf", "max_thickness_mm": 30}],
     "hours_per_week": 35},
    {"process": "finishing", "envelope_mm": [3000, 1500, 1000],
     "materials": [{"material": "birch_plywood", "max_thickness_mm": 50}], "hours_per_week": 35},
    {"process": "assembly", "envelope_mm": [3000, 2000, 2000],
     "materials": [{"material": "birch_plywood", "max_thickness_mm": 50}], "hours_per_week": 35},
]
FAB_LAB = [
    {"process": "laser_cutting", "envelope_mm": [1000, 600, 50],
     "materials": [{"material": "petg", "max_thickness_mm": 3}, {"material": "pmma", "max_thickness_mm": 8}],
     "hours_per_week": 20},
    {"process": "fdm_printing", "envelope_mm": [250, 210, 210],
     "materials": [{"material": "pla", "max_thickness_mm": 10}, {"material": "petg", "max_thickness_mm": 10}],
     "hours_per_week": 60},
    {"process": "assembly", "envelope_mm": [1000, 1000, 1000],
     "materials": [{"material": "petg", "max_thickness_mm": 5}, {"material": "pla", "max_thickness_mm": 5}],
     "hours_per_week": 20},
]


async def make_workshop(
    client: Any, admin_key: str, *, name: str, commune_insee: str, machines: list[dict[str, Any]],
    radius_km: float = 250, labels: tuple[str, ...] = ("manufacture-de-proximite",),
    certifications: tuple[str, ...] = (), capacities: dict[str, float] | None = None,
) -> tuple[dict[str, Any], str]:
    """A manufacture with a maker key, a profile, machines, verified labels, declared capacities."""
    _org, key = await tenant(client, admin_key, "manufacture", "maker", name=name, commune_insee=commune_insee)
    profile = {"commune_insee": commune_insee, "delivery_radius_km": radius_km, "trades": ["numerique"],
               "labels": list(labels), "certifications": list(certifications)}
    response = await client.put("/v1/workshops/me", json=profile, headers=bearer(key))
    assert response.status_code == 200, response.text
    workshop = response.json()
    for machine in machines:
        added = await client.post("/v1/workshops/me/machines", json=machine, headers=bearer(key))
        assert added.status_code == 201, added.text
    for slug, units in (capacities or {}).items():
        declared = await client.put(f"/v1/workshops/me/capacities/{slug}", json={"units_per_day": units},
                                    headers=bearer(key))
        assert declared.status_code == 200, declared.text
    verified = await client.post(f"/v1/workshops/{workshop['id']}/verification",
                                 json={"labels": list(labels), "certifications": list(certifications)},
                                 headers=bearer(admin_key))
    assert verified.status_code == 200, verified.text
    return verified.json(), key


async def matched(client: Any, token: str, request_id: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    """The request's matches once the worker has run matching (``state == "done"``)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"/v1/requests/{request_id}/matches", headers=bearer(token))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["state"] == "done":
            return body
        assert time.monotonic() < deadline, f"request {request_id} still not matched after {timeout_s} s"
        await asyncio.sleep(0.1)


async def delivered_order(
    client: Any, admin_key: str, *, quantity: int = 6, unit_price: str = "1100.00", vat_rate: str = "20",
    buyer_name: str = "Commune de Vitré", buyer_legal_form: str | None = "7210",
    service_code: str | None = "SERVICE-FS", engagement_number: str | None = "EJ-2026-000412",
    maker_name: str = "Menuiserie du Pays de Rennes", maker: tuple[dict[str, Any], str] | None = None,
    deliver: bool = True, until: str | None = None,
) -> dict[str, Any]:
    """An order of ``quantity`` France Services desks, awarded, made, shipped and (``deliver``) confirmed
    delivered by the buyer, or left at status ``until``: ``{"order", "maker", "buyer", "buyer_org", "buyer_siret"}`` (keys are API keys).
    In-process tests match inline; the maker is the only workshop invited unless others exist."""
    import uuid
    from datetime import UTC, datetime, timedelta

    shop, maker_key = maker or await make_workshop(client, admin_key, name=maker_name, commune_insee="35238",
                                                   machines=WOOD_SHOP, capacities={"france-services-desk": 50})
    buyer_org, buyer = await tenant(client, admin_key, "collectivite", "buyer", name=buyer_name,
                                    commune_insee="35360")
    if buyer_legal_form:
        patched = await client.patch(f"/v1/organizations/{buyer_org['id']}", json={"legal_form": buyer_legal_form},
                                     headers=bearer(buyer))
        assert patched.status_code == 200, patched.text
    siret = make_siret()
    procurement: dict[str, Any] = {"buyer_siret": siret, "estimated_value_eur_ht": "1.00"}
    if service_code:
        procurement["service_code"] = service_code
    if engagement_number:
        procurement["engagement_number"] = engagement_number
    body = {"item": "france-services-desk", "quantity": quantity,
            "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "delivery": {"commune_insee": "35360", "address": "Maison France Services, 2 rue de la Mairie"},
            "procurement": procurement}
    idem = lambda: {"Idempotency-Key": str(uuid.uuid4())}  # noqa: E731
    made = await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()})
    assert made.status_code == 201, made.text
    request = made.json()
    if request.get("match_state") == "pending":  # matching runs in a real worker
        await matched(client, buyer, request["id"])
    quote = {"unit_price_eur_ht": unit_price, "vat_rate": vat_rate, "quantity": quantity,
             "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()}
    quoted = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote, headers={**bearer(maker_key), **idem()})
    assert quoted.status_code == 201, quoted.text
    awarded = await client.post(f"/v1/requests/{request['id']}/award", headers={**bearer(buyer), **idem()},
                                json={"quote_ids": [quoted.json()["id"]], "justification": "Seul devis reçu"})
    assert awarded.status_code == 201, awarded.text
    order = awarded.json()["orders"][0]
    moves = [(maker_key, "confirmed", {}), (maker_key, "in_production", {}), (maker_key, "ready", {}),
             (maker_key, "shipped", {"tracking": "Colissimo 6A12345678901"})]
    if deliver:
        moves.append((buyer, "delivered", {}))
    if until is not None:  # stop once the order is ``until`` ("awarded": no move at all)
        moves = moves[:[to for _key, to, _extra in moves].index(until) + 1] if until != "awarded" else []
    for key, to, extra in moves:
        moved = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": to, **extra},
                                  headers=bearer(key))
        assert moved.status_code == 200, moved.text
        order = moved.json()
    return {"order": order, "maker": maker_key, "shop": shop, "buyer": buyer, "buyer_org": buyer_org,
            "buyer_siret": siret}
