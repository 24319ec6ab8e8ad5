"""Rate limits shared through Redis (G14), cursor pagination (API-4), health, audit log."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from factories import bearer, create_org, tenant
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from support_concurrency import ConcurrentClients

from broker.app import create_app


async def test_rate_limit_is_per_key_and_shared_by_two_api_processes(settings, admin_key, redis_client):
    limited = msgspec.structs.replace(settings, api=msgspec.structs.replace(settings.api, rate_limit_per_minute=10))
    async with AsyncTestClient(create_app(limited)) as one, AsyncTestClient(create_app(limited)) as two:
        _org, buyer = await tenant(one, admin_key, "collectivite", "buyer")  # 2 admin requests
        statuses = []
        for i in range(12):
            response = await (one if i % 2 else two).get("/v1/organizations", headers=bearer(buyer))
            statuses.append(response.status_code)
        assert statuses == [200] * 10 + [429, 429]
        assert response.headers["retry-after"]
        assert response.headers["ratelimit-limit"] == "10"
        assert response.json()["code"] == "rate-limited"
        # Another key has its own budget.
        _org2, other = await tenant(one, admin_key, "collectivite", "buyer")
        assert (await two.get("/v1/organizations", headers=bearer(other))).status_code == 200


async def test_rate_limit_holds_under_concurrency(settings, admin_key, redis_client):
    limited = msgspec.structs.replace(settings, api=msgspec.structs.replace(settings.api, rate_limit_per_minute=25))
    async with ConcurrentClients(limited, 2) as (one, two):
        _org, buyer = await tenant(one, admin_key, "collectivite", "buyer")
        await redis_client.flushdb()  # the admin's two requests above do not count
        responses = await asyncio.gather(
            *[(one if i % 2 else two).get("/v1/communes/35238", headers=bearer(buyer)) for i in range(50)]
        )
        assert sum(r.status_code == 200 for r in responses) == 25
        assert sum(r.status_code == 429 for r in responses) == 25


async def test_success_responses_carry_ratelimit_headers(client, admin_key):
    response = await client.get("/v1/organizations", headers=bearer(admin_key))
    assert int(response.headers["ratelimit-remaining"]) < int(response.headers["ratelimit-limit"])


async def test_pages_cover_every_row_once_even_while_rows_are_added(client, admin_key):
    for i in range(7):
        await create_org(client, admin_key, name=f"Commune {i}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = await client.get("/v1/organizations", params=params, headers=bearer(admin_key))
        assert page.status_code == 200
        body = page.json()
        seen += [o["id"] for o in body["items"]]
        pages += 1
        if pages == 1:
            await create_org(client, admin_key, name="Arrivée pendant la lecture")
            assert 'rel="next"' in page.headers["link"]
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in page.headers
            break
    assert len(seen) == len(set(seen)) == 9  # operator + 7 + the one added while paging
    assert pages == 3


@pytest.mark.parametrize("limit", [10**9, 201, 500])
async def test_large_limits_are_clamped(client, admin_key, limit):
    response = await client.get("/v1/organizations", params={"limit": limit}, headers=bearer(admin_key))
    assert response.status_code == 200


async def test_forged_or_foreign_cursors_are_400(client, admin_key):
    for i in range(3):
        await create_org(client, admin_key, name=f"C{i}")
    page = await client.get("/v1/organizations", params={"limit": 1}, headers=bearer(admin_key))
    cursor = page.json()["next_cursor"]
    forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for params in ({"cursor": forged}, {"cursor": "not-a-cursor"}, {"cursor": cursor, "kind": "manufacture"}):
        response = await client.get("/v1/organizations", params=params, headers=bearer(admin_key))
        assert response.status_code == 400, params
        assert response.json()["code"] == "invalid-cursor"


async def test_unknown_query_parameter_is_400(client, admin_key):
    response = await client.get("/v1/organizations", params={"limt": 5}, headers=bearer(admin_key))
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "limt"


async def test_health(client):
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")
    assert live.status_code == ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_ready_is_503_problem_when_redis_is_down(settings, admin_key):
    from redis.asyncio import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    async with AsyncTestClient(create_app(settings, redis=dead)) as c:
        response = await c.get("/health/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["checks"]["redis"].startswith("unavailable")
        # The API keeps serving (the rate limiter fails open).
        assert (await c.get("/v1/organizations", headers=bearer(admin_key))).status_code == 200


async def test_every_write_is_audited_and_the_log_is_append_only(client, admin_key, db):
    org = await create_org(client, admin_key)
    log = await client.get("/v1/audit-log", headers=bearer(admin_key))
    entry = log.json()["items"][-1]
    assert entry["action"] == "POST /v1/organizations"
    assert entry["resource_id"] == org["id"] and entry["status_code"] == 201
    assert entry["key_prefix"] == admin_key.split("_")[1]
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        async with db.writer() as session:
            with pytest.raises(Exception, match="append-only"):
                await session.execute(text(statement))
            await session.rollback()


async def test_audit_log_is_scoped_to_the_callers_organisation(client, admin_key):
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    mine = await client.get("/v1/audit-log", headers=bearer(buyer))
    assert mine.status_code == 200 and mine.json()["items"] == []


async def test_a_limit_that_is_not_digits_is_a_400_naming_it(client, admin_key):
    """Found by the PostgreSQL fuzzing: `limit=1.0` was read as 1 (the query parser is lenient)."""
    for value in ("1.0", "2e1", " 3"):
        response = await client.get("/v1/orders", params={"limit": value}, headers={"Authorization": f"Bearer {admin_key}"})
        assert response.status_code == 400, (value, response.text)
        assert response.json()["errors"][0].get("parameter") == "limit", response.text
    ok = await client.get("/v1/orders", params={"limit": "3"}, headers={"Authorization": f"Bearer {admin_key}"})
    assert ok.status_code == 200
