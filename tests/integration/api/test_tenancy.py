"""Organisations, keys and tenant isolation over HTTP (issue 3, "Done means")."""

from __future__ import annotations

from factories import bearer, create_key, create_org, tenant


async def test_admin_creates_org_and_buyer_key_buyer_reads_own_org_other_tenant_gets_404(client, admin_key):
    org_a = await create_org(client, admin_key, name="Commune de Saint-Brieuc", commune_insee="22278")
    key_a = await create_key(client, admin_key, org_a["id"], "buyer")
    org_b, key_b = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="29019")

    own = await client.get(f"/v1/organizations/{org_a['id']}", headers=bearer(key_a))
    assert own.status_code == 200
    assert own.json() == org_a

    other = await client.get(f"/v1/organizations/{org_a['id']}", headers=bearer(key_b))
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")
    assert org_a["id"] not in other.text.replace(f"organization {org_a['id']} not found", "")

    listing = await client.get("/v1/organizations", headers=bearer(key_b))
    assert [o["id"] for o in listing.json()["items"]] == [org_b["id"]]


async def test_key_is_shown_once_and_stored_hashed(client, admin_key, db):
    from sqlalchemy import text

    org = await create_org(client, admin_key)
    created = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer", "label": "agent"},
                                headers=bearer(admin_key))
    body = created.json()
    assert body["key"].startswith(f"fab_{body['prefix']}_")
    keys = await client.get(f"/v1/organizations/{org['id']}/api-keys", headers=bearer(admin_key))
    assert "key" not in keys.json()["items"][0]
    async with db.reader() as session:
        rows = (await session.execute(text("SELECT key_hash, prefix FROM api_key"))).all()
    dump = repr(rows)
    assert body["key"] not in dump and admin_key not in dump
    assert body["key"].split("_", 2)[2] not in dump


async def test_revoked_key_is_refused_on_the_next_request(client, admin_key):
    org = await create_org(client, admin_key)
    created = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer"},
                                headers=bearer(admin_key))
    key, key_id = created.json()["key"], created.json()["id"]
    assert (await client.get(f"/v1/organizations/{org['id']}", headers=bearer(key))).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=bearer(admin_key))).status_code == 204
    refused = await client.get(f"/v1/organizations/{org['id']}", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["status"] == 401


async def test_owner_org_may_revoke_its_key_but_not_another_tenants(client, admin_key):
    org_a, key_a = await tenant(client, admin_key, "collectivite", "buyer")
    _org_b, key_b = await tenant(client, admin_key, "collectivite", "buyer")
    second = await client.post(f"/v1/organizations/{org_a['id']}/api-keys", json={"role": "integration"},
                               headers=bearer(admin_key))
    second_id = second.json()["id"]
    assert (await client.delete(f"/v1/api-keys/{second_id}", headers=bearer(key_b))).status_code == 404
    assert (await client.get(f"/v1/organizations/{org_a['id']}", headers=bearer(second.json()["key"]))).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{second_id}", headers=bearer(key_a))).status_code == 204
    assert (await client.get(f"/v1/organizations/{org_a['id']}", headers=bearer(second.json()["key"]))).status_code == 401


async def test_missing_malformed_and_unknown_keys_are_401_with_a_challenge(client, admin_key):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "},
                    bearer("fab_000000000000_" + "x" * 43), bearer("nope")):
        response = await client.get("/v1/organizations", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"


async def test_role_not_allowed_is_403(client, admin_key):
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    response = await client.post("/v1/organizations", json={}, headers=bearer(buyer))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_role_must_fit_the_organisation_kind(client, admin_key):
    org = await create_org(client, admin_key, kind="collectivite")
    response = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "maker"},
                                 headers=bearer(admin_key))
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/role"


async def test_no_key_appears_in_logs(client, admin_key, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    org = await create_org(client, admin_key)
    created = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer"},
                                headers=bearer(admin_key))
    key = created.json()["key"]
    await client.get("/v1/organizations", headers=bearer(key))
    await client.get("/v1/organizations", headers=bearer(key + "tampered"))
    text = caplog.text
    assert key not in text and admin_key not in text
    assert key.split("_", 2)[2][:16] not in text


async def test_revocation_reaches_every_api_process_at_once(settings, admin_key, redis_client):
    """Keys are cached per process; a revocation in one process invalidates every cache (Redis)."""
    from litestar.testing import AsyncTestClient

    from broker.app import create_app

    async with AsyncTestClient(create_app(settings)) as one, AsyncTestClient(create_app(settings)) as two:
        org, key = await tenant(one, admin_key, "collectivite", "buyer")
        for _ in range(3):  # warm the second process's cache
            assert (await two.get(f"/v1/organizations/{org['id']}", headers=bearer(key))).status_code == 200
        keys = await one.get(f"/v1/organizations/{org['id']}/api-keys", headers=bearer(admin_key))
        key_id = next(k["id"] for k in keys.json()["items"] if key.startswith(f"fab_{k['prefix']}_"))
        assert (await one.delete(f"/v1/api-keys/{key_id}", headers=bearer(admin_key))).status_code == 204
        assert (await two.get(f"/v1/organizations/{org['id']}", headers=bearer(key))).status_code == 401
