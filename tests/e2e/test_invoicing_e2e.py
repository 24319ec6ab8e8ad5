"""Issue 23 against a real server and a real worker (`broker up`, the fake Chorus Pro walking one status
a second): a desk order delivered, invoiced, submitted, deposited by the worker and followed to
`mise_en_paiement`; another invoice addressed to a closed Chorus Pro service rejected; each step is an
`invoice.status_changed` event the buyer and the maker read in `GET /v1/events`."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from factories import bearer, delivered_order
from support_server import running_broker

FINAL = {"mise_en_paiement", "rejetee"}


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _settled(client: httpx.AsyncClient, key: str, invoice_id: str, *, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        invoice = (await client.get(f"/v1/invoices/{invoice_id}", headers=bearer(key))).json()
        if invoice["status"] in FINAL or time.monotonic() > deadline:
            return dict(invoice)
        await asyncio.sleep(0.5)


async def _events(client: httpx.AsyncClient, key: str, invoice_id: str) -> list[str]:
    seen: list[str] = []
    after: str | None = None
    while True:
        page = (await client.get("/v1/events", params={"limit": 200, **({"after": after} if after else {})},
                                 headers=bearer(key))).json()
        seen += [e["data"]["to"] for e in page["items"]
                 if e["type"] == "invoice.status_changed" and e["data"]["resource_id"] == invoice_id]
        if not page["next_cursor"]:
            return seen
        after = page["next_cursor"]


async def test_invoices_walk_through_chorus_pro_with_a_real_worker(tmp_path):
    env = {"BROKER_CHORUS_FAKE_STEP_S": "1", "BROKER_CHORUS_POLL_S": "0",
           "BROKER_CHORUS_FAKE_CLOSED_SERVICES": "SERVICE-FERME"}
    with running_broker(tmp_path, **env) as broker:
        async with httpx.AsyncClient(base_url=broker.url, timeout=60) as client:
            paid = await delivered_order(client, broker.admin_key, service_code="FS-VITRE")
            refused = await delivered_order(client, broker.admin_key, service_code="SERVICE-FERME",
                                            buyer_name="Commune de Fougères", maker=(paid["shop"], paid["maker"]))
            made = []
            for world in (paid, refused):
                early = await client.post(f"/v1/orders/{world['order']['id']}/invoices", json={},
                                          headers={**bearer(world["maker"]), **idem()})
                assert early.status_code == 201, early.text
                made.append(early.json())
                submitted = await client.post(f"/v1/invoices/{made[-1]['id']}/submit",
                                              headers={**bearer(world["maker"]), **idem()})
                assert submitted.status_code == 202, submitted.text
            done = await _settled(client, paid["buyer"], made[0]["id"])
            assert done["status"] == "mise_en_paiement", done
            assert done["received_on"] and done["due_on"] and done["paid_on"] and done["chorus_id"]
            rejected = await _settled(client, refused["buyer"], made[1]["id"])
            assert rejected["status"] == "rejetee" and rejected["status_reason"], rejected
            walked = ["submitting", "deposee", "mise_a_disposition", "service_fait", "mandatee", "mise_en_paiement"]
            assert await _events(client, paid["buyer"], made[0]["id"]) == walked
            assert await _events(client, paid["maker"], made[0]["id"]) == walked  # the maker sees them too
            assert (await _events(client, refused["buyer"], made[1]["id"]))[-1] == "rejetee"
            clock = (await client.get(f"/v1/orders/{paid['order']['id']}/payment", headers=bearer(paid["buyer"]))).json()
            assert clock["invoices"][0]["days_late"] == 0 and clock["invoices"][0]["running"] is False
