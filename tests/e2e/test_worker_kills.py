"""Fault test with real processes: the arq worker is SIGKILLed again and again while events flow,
and the embedded Redis is killed once;
`broker up` restarts it, and afterwards every event reached the receiver (at least once, each
webhook-id seen, each delivery recorded once as delivered) — the database is the source of truth."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiohttp import web
from standardwebhooks import Webhook

from factories import bearer, make_siret, tenant
from support_server import running_broker

KILLS = 4
EVENTS_WANTED = 100


def _children(parent: int, marker: bytes) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and marker in cmdline:
            pids.append(int(proc.name))
    return pids


async def test_events_survive_worker_and_redis_kills(tmp_path):
    received: list[tuple[bytes, dict[str, str]]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hooks"  # noqa: SLF001
    try:
        with running_broker(tmp_path, BROKER_WEBHOOKS_ALLOW_LOOPBACK="1") as broker:
            async with httpx.AsyncClient(base_url=broker.url, timeout=30) as client:
                _org, buyer = await tenant(client, broker.admin_key, "collectivite", "buyer")
                hook = (await client.post("/v1/webhook-endpoints", json={"url": url},
                                          headers=bearer(buyer))).json()
                body = {"item": "door-opener", "quantity": 50, "delivery": {"commune_insee": "35238"},
                        "deadline": (datetime.now(UTC) + timedelta(days=15)).isoformat(),
                        "procurement": {"buyer_siret": make_siret()}}
                kills = 0
                made = 0
                next_kill = time.monotonic() + 2
                while made < EVENTS_WANTED // 2:  # each request makes request.created + request.matched
                    response = await client.post("/v1/requests", json=body,
                                                 headers={**bearer(buyer), "Idempotency-Key": str(uuid.uuid4())})
                    assert response.status_code == 201, response.text
                    made += 1
                    if kills < KILLS and time.monotonic() >= next_kill:
                        for pid in _children(broker.process.pid, b"broker.cli worker"):
                            os.kill(pid, signal.SIGKILL)
                            kills += 1
                        next_kill = time.monotonic() + 3
                    await asyncio.sleep(0.05)
                # The embedded Redis dies too (it keeps nothing on disk): `broker up` restarts it, the
                # queue is empty, and the relay re-enqueues what the database still holds as due.
                for pid in _children(broker.process.pid, b"redis-server"):
                    os.kill(pid, signal.SIGKILL)
                await asyncio.sleep(1)
                while kills < KILLS:  # the remaining kills land while the backlog drains
                    await asyncio.sleep(3)
                    for pid in _children(broker.process.pid, b"broker.cli worker"):
                        os.kill(pid, signal.SIGKILL)
                        kills += 1
                db_path = broker.data_dir / "broker.db"
                deadline = time.monotonic() + 150  # a delivery whose worker died is re-sent after its lease (60 s)
                states: dict[str, int] = {}
                while time.monotonic() < deadline:
                    await asyncio.sleep(2)
                    with sqlite3.connect(db_path) as db:
                        states = dict(db.execute("SELECT state, count(*) FROM webhook_delivery GROUP BY state"))
                        expected = db.execute("SELECT count(*) FROM outbox_event WHERE state = 'relayed' AND "
                                              "org_id = (SELECT org_id FROM webhook_endpoint)").fetchone()[0]
                    if states == {"delivered": expected} and expected >= 2 * made:  # every request matched too
                        break
                assert kills == KILLS
                assert expected >= 2 * made
                assert states == {"delivered": expected}, (states, expected, broker.log.read_text()[-2000:])
                ids = {h["webhook-id"] for _, h in received}
                assert len(ids) == expected  # every event arrived; duplicates (same webhook-id) are allowed
                for raw, headers in received:
                    Webhook(hook["secret"]).verify(raw, headers)
                with sqlite3.connect(db_path) as db:
                    per_event = db.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM webhook_delivery "
                                           "GROUP BY outbox_id)").fetchone()[0]
                assert per_event == 1  # one delivery row per event and endpoint, however often relayed
                log = broker.log.read_text()
                assert "the worker exited" in log and "embedded Redis exited" in log
    finally:
        await runner.cleanup()
