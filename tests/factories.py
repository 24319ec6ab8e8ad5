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
