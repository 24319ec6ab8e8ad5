"""The buyer's and the maker's whole journey against a real server and a real worker: 2
collectivités, 12 workshops in real communes, a France Services desk request and a visor request
from creation through matching, three quotes each, award (the visors split), confirmation,
progress, shipping, delivery; and a quote window closed by the worker's clock."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from aiohttp import web
from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, matched, tenant
from standardwebhooks import Webhook
from support_server import running_broker

WORKSHOPS = [
    ("Menuiserie du Pays de Rennes", "35238", WOOD_SHOP), ("Atelier Bois de Vitré", "35360", WOOD_SHOP),
    ("Ébénisterie de Fougères", "35115", WOOD_SHOP), ("Les Ateliers de Redon", "35236", WOOD_SHOP),
    ("Scierie-atelier de Pontivy", "56178", WOOD_SHOP), ("Menuiserie de Guingamp", "22070", WOOD_SHOP),
    ("Fab lab de Lannion", "22113", FAB_LAB), ("Le Bocal, Saint-Brieuc", "22278", FAB_LAB),
    ("Fab lab de Vannes", "56260", FAB_LAB), ("La Fabrique de Lorient", "56121", FAB_LAB),
    ("Fab lab de Saint-Malo", "35288", FAB_LAB), ("Makerspace de Quimper", "29232", FAB_LAB),
]


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _post(client, path, token, body=None, *, status=201, idem=True):
    headers = {**bearer(token), **(key() if idem else {})}
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == status, (path, response.text)
    return response.json()


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)


async def test_request_to_delivery_with_a_real_server_and_worker(tmp_path):
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/erp/hooks", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/erp/hooks"
    try:
        await _journey(tmp_path, receiver, hook_url)
    finally:
        await runner.cleanup()


async def _journey(tmp_path, receiver, hook_url):
    with running_broker(tmp_path, BROKER_WEBHOOKS_ALLOW_LOOPBACK="1") as broker:
        async with httpx.AsyncClient(base_url=broker.url, timeout=30) as client:
            admin = broker.admin_key
            shops = {}
            for name, insee, machines in WORKSHOPS:
                shop, maker = await make_workshop(client, admin, name=name, commune_insee=insee, machines=machines,
                                                  capacities={"face-visor": 15} if machines is FAB_LAB else None)
                shops[shop["id"]] = (name, maker)
            _rennes, rennes = await tenant(client, admin, "collectivite", "buyer", name="Ville de Rennes",
                                           commune_insee="35238")
            _vannes, vannes = await tenant(client, admin, "collectivite", "buyer", name="Ville de Vannes",
                                           commune_insee="56260")
            soon = datetime.now(UTC).date() + timedelta(days=20)
            hook = await _post(client, "/v1/webhook-endpoints", rennes, {"url": hook_url})

            # 1. The desk: three quotes, one award, the whole order lifecycle.
            desk = await _post(client, "/v1/requests", rennes, {
                "item": "france-services-desk", "quantity": 4,
                "deadline": (datetime.now(UTC) + timedelta(days=35)).isoformat(),
                "delivery": {"commune_insee": "35238", "address": "France Services, place de la Mairie"},
                "procurement": {"buyer_siret": make_siret(), "service_code": "DSIN", "engagement_number": "EJ-88", "estimated_value_eur_ht": "4000"}})
            assert desk["match_state"] == "pending"  # matching runs in the worker (the default)
            matches = await matched(client, rennes, desk["id"])
            invited = [m for m in matches["included"] if m["invited"]]
            assert len(invited) >= 3 and all(shops[m["workshop_id"]][0] for m in invited)
            assert all("Fab lab" not in shops[m["workshop_id"]][0] for m in invited)
            desk_quotes = []
            for price, m in zip(("1150.00", "1090.00", "1240.00"), invited[:3], strict=True):
                q = await _post(client, f"/v1/requests/{desk['id']}/quotes", shops[m["workshop_id"]][1], {
                    "unit_price_eur_ht": price, "vat_rate": "20", "quantity": 4, "delivery_date": soon.isoformat()})
                desk_quotes.append((q, shops[m["workshop_id"]][1]))
            compared = (await client.get(f"/v1/requests/{desk['id']}/quotes", headers=bearer(rennes))).json()["items"]
            cheapest = min(compared, key=lambda c: float(c["quote"]["total_eur_ttc"]))
            assert cheapest["quote"]["total_eur_ttc"] == "5232.00"
            award = await _post(client, f"/v1/requests/{desk['id']}/award", rennes,
                                {"quote_ids": [cheapest["quote"]["id"]]})
            order = award["orders"][0]
            maker = next(t for q, t in desk_quotes if q["id"] == cheapest["quote"]["id"])
            for step in ("confirmed", "in_production"):
                await _post(client, f"/v1/orders/{order['id']}/transitions", maker, {"to": step}, status=200)
            for units in (1, 3, 4):
                await _post(client, f"/v1/orders/{order['id']}/progress", maker, {"units_done": units}, status=200)
            await _post(client, f"/v1/orders/{order['id']}/transitions", maker, {"to": "ready"}, status=200)
            await _post(client, f"/v1/orders/{order['id']}/transitions", maker,
                        {"to": "shipped", "tracking": "DB Schenker 1Z-4471"}, status=200)
            done = await _post(client, f"/v1/orders/{order['id']}/transitions", rennes, {"to": "delivered"}, status=200)
            assert done["status"] == "delivered" and done["units_done"] == 4

            # 2. Visors for Vannes, split between fab labs.
            visors = await _post(client, "/v1/requests", vannes, {
                "item": "face-visor", "quantity": 600, "allow_split": True,
                "deadline": (datetime.now(UTC) + timedelta(days=28)).isoformat(),
                "delivery": {"commune_insee": "56260"}, "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}})
            vm = await matched(client, vannes, visors["id"])
            labs = [m for m in vm["included"] if m["invited"]][:3]
            assert len(labs) == 3
            visor_quotes = []
            for m in labs:
                q = await _post(client, f"/v1/requests/{visors['id']}/quotes", shops[m["workshop_id"]][1], {
                    "unit_price_eur_ht": "3.10", "vat_rate": "5.5", "quantity": 200,
                    "delivery_date": soon.isoformat()})
                visor_quotes.append((q, shops[m["workshop_id"]][1]))
            award = await _post(client, f"/v1/requests/{visors['id']}/award", vannes,
                                {"quote_ids": [q["id"] for q, _ in visor_quotes[:2]]})
            assert [o["quantity"] for o in award["orders"]] == [200, 200]
            for o, (_q, maker) in zip(award["orders"], visor_quotes[:2], strict=True):
                for step in ("confirmed", "in_production"):
                    await _post(client, f"/v1/orders/{o['id']}/transitions", maker, {"to": step}, status=200)
                await _post(client, f"/v1/orders/{o['id']}/progress", maker, {"units_done": 200}, status=200)
                await _post(client, f"/v1/orders/{o['id']}/transitions", maker, {"to": "ready"}, status=200)
                await _post(client, f"/v1/orders/{o['id']}/transitions", maker,
                            {"to": "shipped", "tracking": "La Poste 8R000123"}, status=200)
                await _post(client, f"/v1/orders/{o['id']}/transitions", vannes, {"to": "delivered"}, status=200)
            assert (await client.get(f"/v1/requests/{visors['id']}", headers=bearer(vannes))).json()[
                "status"] == "closed"
            assert (await client.get(f"/v1/orders/{award['orders'][0]['id']}",
                                     headers=bearer(rennes))).status_code == 404

            # 3. The worker's clock: a quote window that ends closes by itself.
            stand = await _post(client, "/v1/requests", rennes, {
                "item": "monitor-stand", "quantity": 10, "deadline": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
                "delivery": {"commune_insee": "35238"}, "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}})
            with sqlite3.connect(broker.data_dir / "broker.db") as db:  # fast-forward its window
                db.execute("UPDATE fab_request SET quote_deadline = '2020-01-01 00:00:00' WHERE id = ?",
                           (stand["id"],))
            deadline = time.monotonic() + 30
            state = {}
            while time.monotonic() < deadline:
                state = (await client.get(f"/v1/requests/{stand['id']}", headers=bearer(rennes))).json()
                if state["window_closed"]:
                    break
                await asyncio.sleep(0.5)
            assert state["window_closed"] and state["status"] == "closed", state

            # 4. Every event of Rennes' desk reached its ERP, signed (the real worker's relay).
            deadline = time.monotonic() + 30
            wanted = {"request.created", "request.matched", "quote.submitted", "order.created",
                      "order.status_changed", "order.progress", "order.delivered", "request.window_closed"}
            types: set[str] = set()
            while time.monotonic() < deadline and not wanted <= types:
                await asyncio.sleep(0.5)
                types = {Webhook(hook["secret"]).verify(body, headers)["type"] for body, headers in receiver.received}
            assert wanted <= types, types
            ids = [headers["webhook-id"] for _, headers in receiver.received]
            assert len(ids) == len(set(ids))  # each event once (at-least-once, here exactly once)
