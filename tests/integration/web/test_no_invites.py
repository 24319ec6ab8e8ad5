"""Issue 21 item 3 on the buyer's request page: a matching that invited nobody says why (the
exclusions by reason, the nearest workshop's own reasons), suggests allowing the split or widening
the distance, and lets the buyer change those two settings and match the request again."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import FAB_LAB, bearer, make_siret, make_workshop, tenant
from support_web import Browser, signed_in, visible

NBSP = "\u00a0"


async def _visors(client: Any, key: str, *, split: bool, max_km: float | None) -> str:
    body: dict[str, Any] = {
        "item": "face-visor", "quantity": 1500, "allow_split": split, "min_quotes": 1,
        "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "delivery": {"commune_insee": "35360", "address": "Centre hospitalier, 30 route de Rennes"},
        "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "1.00"}}
    if max_km is not None:
        body["max_distance_km"] = max_km
    made = await client.post("/v1/requests", json=body, headers={**bearer(key), "Idempotency-Key": str(uuid.uuid4())})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_a_request_that_invites_nobody_says_why_and_is_matched_again(client: Any, admin_key: str) -> None:
    # One fab lab in Rennes, about 35 km from Vitré: 20 visors a day, far from 1 500 by the deadline.
    await make_workshop(client, admin_key, name="Fablab des Champs Libres", commune_insee="35238", machines=FAB_LAB,
                        radius_km=100, capacities={"face-visor": 20})
    _org, key = await tenant(client, admin_key, "collectivite", "buyer", name="Centre hospitalier de Vitré",
                             commune_insee="35360")
    buyer = Browser(client, await signed_in(client, key))

    # Without « peut être répartie »: nobody can make the 1 500 alone; the page says so and why.
    whole = await _visors(client, key, split=False, max_km=None)
    text = visible(await buyer.get(f"/app/demandes/{whole}"))
    assert "Aucun atelier n'a été invité à chiffrer" in text
    assert f"Capacité insuffisante{NBSP}: 1 atelier" in text
    assert "1500 demandées" in text  # the nearest workshop's own reason, as the engine wrote it
    assert "Autorisez la répartition." in text and "Élargissez la distance." not in text
    await buyer.post(f"/app/demandes/{whole}/relance", {"fractionnable": "on", "distance_max": ""})
    text = visible(await buyer.get(f"/app/demandes/{whole}"))
    assert "Demande relancée : 1 atelier(s) invité(s) à chiffrer." in text
    assert "Invités à chiffrer (1)" in text and "Fablab des Champs Libres" in text
    assert "Aucun atelier n'a été invité" not in text and "(répartition entre ateliers possible)" in text
    # Matched again only while nobody is invited.
    page = await buyer.post(f"/app/demandes/{whole}/relance", {"fractionnable": "on"}, status=422)
    assert "déjà invités à chiffrer cette demande" in visible(page.text)

    # Split allowed but within 10 km: the fab lab is too far; widening the distance invites it.
    near = await _visors(client, key, split=True, max_km=10)
    text = visible(await buyer.get(f"/app/demandes/{near}"))
    assert f"Trop loin{NBSP}: 1 atelier" in text and "Élargissez la distance." in text
    assert "Autorisez la répartition." not in text
    page = await buyer.post(f"/app/demandes/{near}/relance", {"fractionnable": "on", "distance_max": "abc"}, 422)
    assert "Saisissez un nombre positif" in visible(page.text)
    await buyer.post(f"/app/demandes/{near}/relance", {"fractionnable": "on", "distance_max": "60"})
    text = visible(await buyer.get(f"/app/demandes/{near}"))
    assert "Invités à chiffrer (1)" in text and f"Distance maximale 60,0{NBSP}" in text.replace("\u202f", NBSP)
    matches = await client.get(f"/v1/requests/{near}/matches", headers=bearer(key))
    assert matches.status_code == 200 and matches.json()["state"] == "done"
    assert re.search(r"1 atelier", text)
