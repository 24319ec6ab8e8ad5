"""Idempotency-Key (INTEGRATION.md ID-1..ID-6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from factories import bearer, make_siret
from sqlalchemy import text, update
from support_concurrency import ConcurrentClients

from broker.db.models import IdempotencyRow


def _body(**kw):
    return {"kind": "collectivite", "name": "Commune de Vannes", "siret": make_siret(), "commune_insee": "56260", **kw}


async def _count_orgs(db) -> int:
    async with db.reader() as session:
        return (await session.execute(text("SELECT count(*) FROM organization"))).scalar_one()


async def test_same_key_same_body_replays_byte_for_byte(client, admin_key, db):
    body = _body()
    headers = {**bearer(admin_key), "Idempotency-Key": "3f1c2a9e-7a10-4d8e-9d61-2c1b5a2f0c11"}
    first = await client.post("/v1/organizations", json=body, headers=headers)
    second = await client.post("/v1/organizations", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count_orgs(db) == 2  # the operator's own + this one


async def test_quoted_and_bare_forms_are_the_same_key(client, admin_key):
    body = _body()
    first = await client.post("/v1/organizations", json=body, headers={**bearer(admin_key), "Idempotency-Key": "k-42"})
    second = await client.post("/v1/organizations", json=body,
                               headers={**bearer(admin_key), "Idempotency-Key": '"k-42"'})
    assert second.headers.get("idempotent-replayed") == "true"
    assert first.json()["id"] == second.json()["id"]


async def test_same_key_other_body_is_422_and_writes_nothing(client, admin_key, db):
    headers = {**bearer(admin_key), "Idempotency-Key": "order-7"}
    assert (await client.post("/v1/organizations", json=_body(), headers=headers)).status_code == 201
    before = await _count_orgs(db)
    reused = await client.post("/v1/organizations", json=_body(name="Autre"), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("/problems/idempotency-key-reused")
    assert await _count_orgs(db) == before


async def test_same_key_same_body_on_another_object_is_422_not_its_replay(client, admin_key, db):
    """Records are stored under the route template (ID-3); the fingerprint covers the concrete path,
    so a key reused on another object's path is refused (ID-5), never answered with the first one's."""
    first, second = [(await client.post("/v1/organizations", json=_body(), headers=bearer(admin_key))).json()["id"]
                     for _ in range(2)]
    headers = {**bearer(admin_key), "Idempotency-Key": "one-key-two-objects"}
    body = {"role": "buyer", "label": "ERP"}
    made = await client.post(f"/v1/organizations/{first}/api-keys", json=body, headers=headers)
    assert made.status_code == 201, made.text
    reused = await client.post(f"/v1/organizations/{second}/api-keys", json=body, headers=headers)
    assert reused.status_code == 422, reused.text
    assert reused.json()["type"].endswith("/problems/idempotency-key-reused")
    async with db.reader() as session:
        count = (await session.execute(text("SELECT count(*) FROM api_key WHERE org_id = :o"), {"o": second}))
        assert count.scalar_one() == 0


@pytest.mark.parametrize("key", ["", "a b", "x" * 256, "a/b", '"unterminated'])
async def test_malformed_keys_are_400(client, admin_key, key):
    response = await client.post("/v1/organizations", json=_body(),
                                 headers={**bearer(admin_key), "Idempotency-Key": key})
    assert response.status_code == 400, key
    assert response.json()["code"] == "idempotency-key-invalid"


async def test_keys_are_scoped_per_tenant(client, admin_key):
    from factories import tenant

    org, _key = await tenant(client, admin_key, "collectivite", "buyer")
    other_admin_org_body = _body()
    # The same key used by another tenant on another route does not collide.
    first = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer"},
                              headers={**bearer(admin_key), "Idempotency-Key": "shared"})
    second = await client.post("/v1/organizations", json=other_admin_org_body,
                               headers={**bearer(admin_key), "Idempotency-Key": "shared"})
    assert first.status_code == second.status_code == 201


async def test_api_key_creation_replay_never_returns_the_secret_again(client, admin_key):
    from factories import create_org

    org = await create_org(client, admin_key)
    headers = {**bearer(admin_key), "Idempotency-Key": "key-once"}
    first = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer"}, headers=headers)
    again = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer"}, headers=headers)
    assert first.status_code == 201 and again.status_code == 409
    assert first.json()["key"] not in again.text
    assert again.json()["code"] == "secret-shown-once"


async def test_handler_4xx_is_stored_and_replayed(client, admin_key):
    body = _body(commune_insee="99999")
    headers = {**bearer(admin_key), "Idempotency-Key": "bad-commune"}
    first = await client.post("/v1/organizations", json=body, headers=headers)
    again = await client.post("/v1/organizations", json=body, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true"
    assert first.content == again.content


async def test_concurrent_identical_posts_create_one_row(settings, client, admin_key, db):
    body = _body()
    headers = {**bearer(admin_key), "Idempotency-Key": "race-1"}
    async with ConcurrentClients(settings, 3) as clients:
        responses = await asyncio.gather(
            *[clients[i % 3].post("/v1/organizations", json=body, headers=headers) for i in range(6)]
        )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert await _count_orgs(db) == 2


async def test_replay_within_24h_then_processed_anew_after_expiry(client, admin_key, db):
    body = _body()
    headers = {**bearer(admin_key), "Idempotency-Key": "day-old"}
    first = await client.post("/v1/organizations", json=body, headers=headers)
    async with db.writer() as session:  # 23 h later: still replayed
        await session.execute(update(IdempotencyRow).values(
            created_at=datetime.now(UTC) - timedelta(hours=23), expires_at=datetime.now(UTC) + timedelta(hours=1)))
        await session.commit()
    replay = await client.post("/v1/organizations", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true" and replay.content == first.content
    async with db.writer() as session:  # 25 h later: expired, the request is processed anew
        await session.execute(update(IdempotencyRow).values(expires_at=datetime.now(UTC) - timedelta(hours=1)))
        await session.commit()
    anew = await client.post("/v1/organizations", json=body, headers=headers)
    assert anew.status_code == 409  # processed again: this SIRET now exists
    assert "idempotent-replayed" not in anew.headers


async def test_purge_job_removes_expired_records(settings, db, client, admin_key):
    from workers.jobs.maintenance import purge_idempotency

    await client.post("/v1/organizations", json=_body(), headers={**bearer(admin_key), "Idempotency-Key": "old"})
    await client.post("/v1/organizations", json=_body(), headers={**bearer(admin_key), "Idempotency-Key": "new"})
    async with db.writer() as session:
        await session.execute(update(IdempotencyRow).where(IdempotencyRow.key == "old")
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    assert await purge_idempotency({"db": db}) == 1
    async with db.reader() as session:
        keys = (await session.execute(text("SELECT key FROM idempotency_record"))).scalars().all()
    assert keys == ["new"]
