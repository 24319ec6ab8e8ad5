"""Issue 21 item 10: readiness through HTTP, in process, when the worker's heartbeat goes stale. A
worker run without `broker up`'s supervisor (compose) that dies just stops writing its heartbeat:
`/health/ready` must then answer 503 and say the worker is the reason, and 200 again once a fresh
heartbeat arrives. The heartbeat is written as the worker writes it (worker_health's key and format)."""

from __future__ import annotations

import time

from broker.services.worker_health import STALE_S, WORKER_STATE_KEY, heartbeat


async def test_a_stale_worker_heartbeat_makes_readiness_503_until_a_fresh_one(client, redis_client):
    await redis_client.set(WORKER_STATE_KEY, heartbeat(time.time() - STALE_S - 15))
    stale = await client.get("/health/ready")
    assert stale.status_code == 503, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["retry-after"] == "5"
    body = stale.json()
    assert body["checks"]["database"] == body["checks"]["redis"] == "ok"
    assert body["checks"]["worker"].startswith("no heartbeat for 4"), body  # 45 s, a second more on a slow run
    assert "worker no heartbeat for" in body["detail"], body  # the reason names the worker

    await redis_client.set(WORKER_STATE_KEY, heartbeat(time.time()))
    fresh = await client.get("/health/ready")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["checks"] == {"database": "ok", "redis": "ok", "worker": "ok"}

    # Just inside the limit is still ready: only a heartbeat older than STALE_S counts as stale.
    await redis_client.set(WORKER_STATE_KEY, heartbeat(time.time() - STALE_S + 5))
    assert (await client.get("/health/ready")).status_code == 200
