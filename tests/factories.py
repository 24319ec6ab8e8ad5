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
