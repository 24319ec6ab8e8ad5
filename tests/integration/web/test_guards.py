"""Issue 21 item 3, destructive actions: cancelling an order is never preselected nor done in one click
(a confirmation box, checked on the server, not only in the browser)."""

from __future__ import annotations

import re

from factories import delivered_order
from support_web import Browser, signed_in, visible


async def test_cancelling_an_order_needs_its_confirmation(client, admin_key):
    world = await delivered_order(client, admin_key, until="confirmed")  # the buyer may still cancel
    buyer = Browser(client, await signed_in(client, world["buyer"]))
    order = f"/app/commandes/{world['order']['id']}"
    page = await buyer.get(order)
    select = re.search(r'<select id="f-vers".*?</select>', page, flags=re.S)
    assert select and '<option value="">Choisir une action…</option>' in select.group(0)
    assert " selected" not in select.group(0)  # nothing preselected
    refused = await buyer.post(f"{order}/statut", {"vers": "cancelled", "note": "Plus besoin"}, status=422)
    assert "Cochez la case pour confirmer l'annulation" in visible(refused.text)
    assert (await client.get(f"/v1/orders/{world['order']['id']}",
                             headers={"Authorization": f"Bearer {world['buyer']}"})).json()["status"] == "confirmed"
    await buyer.post(f"{order}/statut", {"vers": "cancelled", "note": "Plus besoin", "confirmer": "on"})
    assert (await client.get(f"/v1/orders/{world['order']['id']}",
                             headers={"Authorization": f"Bearer {world['buyer']}"})).json()["status"] == "cancelled"


async def test_closing_or_cancelling_a_call_needs_its_confirmation(client, admin_key):
    from datetime import UTC, datetime, timedelta

    from factories import FAB_LAB, bearer, make_workshop, tenant

    await make_workshop(client, admin_key, name="Fab lab de Rennes", commune_insee="35238", machines=FAB_LAB,
                        capacities={"face-visor": 30})
    _org, coordinator = await tenant(client, admin_key, "coordination", "coordinator")
    body = {"item": "face-visor", "deadline": (datetime.now(UTC) + timedelta(days=10)).isoformat(), "priority": 1,
            "delivery_points": [{"label": "CHU de Rennes", "commune_insee": "35238", "quantity": 40, "priority": 1}]}
    made = await client.post("/v1/crisis-calls", json=body, headers=bearer(coordinator))
    assert made.status_code == 201, made.text
    call = made.json()
    person = Browser(client, await signed_in(client, coordinator))
    page = await person.get(f"/app/crises/{call['id']}")
    assert page.count('name="confirmer" required') == 2
    await person.post(f"/app/crises/{call['id']}/cloture", {"annuler": "oui"})  # no box: nothing happens
    assert "Cochez la case de confirmation pour annuler" in visible(await person.get(f"/app/crises/{call['id']}"))
    status = (await client.get(f"/v1/crisis-calls/{call['id']}", headers=bearer(coordinator))).json()["status"]
    assert status == "open"
    await person.post(f"/app/crises/{call['id']}/cloture", {"annuler": "oui", "confirmer": "on"})
    status = (await client.get(f"/v1/crisis-calls/{call['id']}", headers=bearer(coordinator))).json()["status"]
    assert status == "cancelled"
