"""Issue 21 (makers): a machine edited or removed and a declared capacity withdrawn through the API.
Each change is the caller's own (another workshop's machine is 404 and stays as it was), is audited,
and moves the registry's ``workshops`` version, so the next matching rebuilds its cached candidates
and sees the workshop as it now is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from factories import FAB_LAB, bearer, make_siret, make_workshop, tenant

from broker.db.fabrication import RegistryRepository, RequestRepository
from broker.services.matching import CandidateCache, run_many

ITEM = "face-visor"  # laser cutting (PETG 0,5 mm), FDM printing (PLA), assembly
NOW = datetime.now(UTC)


async def _matching(db, settings, cache, request_id) -> dict[str, int]:
    """The next matching, as the worker runs it: units per included workshop."""
    async with db.reader() as session:
        request = await RequestRepository(session).get(request_id, scope_org_id=None)
        [result] = await run_many(session, [request], now=NOW, settings=settings.matching, cache=cache)
    return {i.workshop_id: i.capacity_units for i in result.included}


async def _version(db) -> int:
    async with db.reader() as session:
        return (await RegistryRepository(session).current()).workshops


async def _me(client, key) -> dict:
    response = await client.get("/v1/workshops/me", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


async def test_machines_and_capacities_edited_and_removed_reach_the_matching(client, admin_key, settings, db):
    shop, key = await make_workshop(client, admin_key, name="Fab lab de Rennes", commune_insee="35238",
                                    machines=FAB_LAB, capacities={ITEM: 40})
    other, other_key = await make_workshop(client, admin_key, name="Fab lab de Cesson", commune_insee="35051",
                                           machines=FAB_LAB)
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238")
    created = await client.post("/v1/requests", headers=bearer(buyer), json={
        "item": ITEM, "quantity": 300, "allow_split": True, "delivery": {"commune_insee": "35238"},
        "deadline": (NOW + timedelta(days=20)).isoformat(),
        "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}})
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    cache = CandidateCache()
    declared = await _matching(db, settings, cache, request_id)
    assert shop["id"] in declared and other["id"] in declared
    laser = next(m for m in (await _me(client, key))["machines"] if m["process"] == "laser_cutting")

    # Edited: the laser cutter no longer takes PETG, so the visor's first step finds no machine.
    version = await _version(db)
    body = {**FAB_LAB[0], "materials": [{"material": "pmma", "max_thickness_mm": 8}], "hours_per_week": 25}
    edited = await client.put(f"/v1/workshops/me/machines/{laser['id']}", json=body, headers=bearer(key))
    assert edited.status_code == 200, edited.text
    assert edited.json() == {"id": laser["id"], "process": "laser_cutting", "envelope_mm": [1000, 600, 50],
                             "materials": [{"material": "pmma", "max_thickness_mm": 8}], "hours_per_week": 25}
    assert await _version(db) == version + 1
    assert shop["id"] not in await _matching(db, settings, cache, request_id)

    # Back to PETG, then removed: excluded again, and the machine is gone from the profile.
    restored = await client.put(f"/v1/workshops/me/machines/{laser['id']}", json=FAB_LAB[0], headers=bearer(key))
    assert restored.status_code == 200, restored.text
    assert shop["id"] in await _matching(db, settings, cache, request_id)
    removed = await client.delete(f"/v1/workshops/me/machines/{laser['id']}", headers=bearer(key))
    assert removed.status_code == 204, removed.text
    assert [m["process"] for m in (await _me(client, key))["machines"]] == ["fdm_printing", "assembly"]
    assert shop["id"] not in await _matching(db, settings, cache, request_id)
    again = await client.delete(f"/v1/workshops/me/machines/{laser['id']}", headers=bearer(key))
    assert again.status_code == 404

    # Another workshop's machine: not found, untouched, and no version moved.
    theirs = (await _me(client, other_key))["machines"][0]
    version = await _version(db)
    for method, json in (("PUT", FAB_LAB[1]), ("DELETE", None)):
        response = await client.request(method, f"/v1/workshops/me/machines/{theirs['id']}", json=json,
                                        headers=bearer(key))
        assert response.status_code == 404, (method, response.text)
    assert (await _me(client, other_key))["machines"][0] == theirs
    assert await _version(db) == version

    # The declared capacity withdrawn: the estimate from machine hours takes over.
    assert declared[shop["id"]] != declared[other["id"]]  # 40 a day declared, against machine hours
    await client.post("/v1/workshops/me/machines", json=FAB_LAB[0], headers=bearer(key))
    withdrawn = await client.delete(f"/v1/workshops/me/capacities/{ITEM}", headers=bearer(key))
    assert withdrawn.status_code == 204, withdrawn.text
    assert (await _me(client, key))["capacities"] == {}
    assert await _version(db) == version + 2  # the machine added back, the capacity withdrawn
    after = await _matching(db, settings, cache, request_id)
    assert after[shop["id"]] == after[other["id"]]  # same machines, both estimated from their hours
    missing = await client.delete(f"/v1/workshops/me/capacities/{ITEM}", headers=bearer(key))
    assert missing.status_code == 404

    # Each change is in the caller's audit log, under its route.
    log = (await client.get("/v1/audit-log", headers=bearer(key), params={"limit": 100})).json()["items"]
    actions = [(e["action"], e["status_code"], e["resource_type"]) for e in log]
    assert ("PUT /v1/workshops/me/machines/{machine_id}", 200, "machine") in actions
    assert ("DELETE /v1/workshops/me/machines/{machine_id}", 204, "machine") in actions
    assert ("DELETE /v1/workshops/me/capacities/{slug}", 204, "workshop") in actions
