"""Issue 17 item 4 over HTTP: the open consultation of an adapted procedure (MAPA), where every
verified workshop through matching's hard filters may quote, and the workshops a buyer invites."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, tenant

#: Matching invites only this many workshops here, so that some eligible ones are left out.
INVITED = 2
#: Six wood workshops within reach of Rennes: all eligible for a desk, only INVITED are invited.
WOOD = [("Menuiserie du Pays de Rennes", "35238"), ("Atelier Bois de Vitré", "35360"),
        ("Ébénisterie de Quimper", "29232"), ("Menuiserie de Saint-Malo", "35288"),
        ("Atelier bois de Fougères", "35115"), ("Menuiserie de Redon", "35236")]


@pytest.fixture
def settings(make_settings, database_url, tmp_path):
    base = make_settings(database_url, tmp_path / "var")
    return msgspec.structs.replace(base, matching=msgspec.structs.replace(base.matching, invitations=INVITED))


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def desk(*, estimate: str, window_hours: int = 72, days: int = 30) -> dict[str, object]:
    return {
        "item": "france-services-desk", "quantity": 6,
        "deadline": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "delivery": {"commune_insee": "35238", "address": "Maison France Services"},
        "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": estimate},
        "quote_window_hours": window_hours,
    }


def quote_body() -> dict[str, object]:
    return {"unit_price_eur_ht": "1150.00", "vat_rate": "20", "quantity": 6,
            "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()}


async def buyer_key(client, admin_key) -> str:
    """A fresh buyer: its cumulative need per CPV group starts at zero."""
    return (await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238"))[1]


@pytest.fixture
async def network(client, admin_key):
    wood = {}
    for name, insee in WOOD:
        shop, key = await make_workshop(client, admin_key, name=name, commune_insee=insee, machines=WOOD_SHOP)
        wood[shop["id"]] = key
    fablab = await make_workshop(client, admin_key, name="Fab lab de Rennes", commune_insee="35238", machines=FAB_LAB)
    # Machines for the desk, but in Nice and delivering within 50 km only.
    far = await make_workshop(client, admin_key, name="Menuiserie niçoise", commune_insee="06088",
                              machines=WOOD_SHOP, radius_km=50)
    # Machines for the desk, in Brest (within its radius of Rennes), but never verified by an
    # administrator. Matching does not ask for verification: far enough to rank below the invited.
    _org, unverified_key = await tenant(client, admin_key, "manufacture", "maker", name="Atelier pas vérifié",
                                        commune_insee="29019")
    profile = {"commune_insee": "29019", "delivery_radius_km": 250, "labels": ["fablab"]}
    created = await client.put("/v1/workshops/me", json=profile, headers=bearer(unverified_key))
    assert created.status_code == 200, created.text
    for machine in WOOD_SHOP:
        added = await client.post("/v1/workshops/me/machines", json=machine, headers=bearer(unverified_key))
        assert added.status_code == 201, added.text
    return {"wood": wood, "fablab": fablab, "far": far, "unverified": (created.json(), unverified_key)}


async def invited_ids(client, buyer: str, request_id: str) -> set[str]:
    matches = (await client.get(f"/v1/requests/{request_id}/matches", headers=bearer(buyer))).json()
    assert matches["state"] == "done"
    return {m["workshop_id"] for m in matches["included"] if m["invited"]}


async def consultations(client, key: str, **params: object) -> dict[str, object]:
    response = await client.get("/v1/consultations", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_open_consultation_admits_every_eligible_workshop(client, admin_key, network):
    buyer = await buyer_key(client, admin_key)
    created = await client.post("/v1/requests", json=desk(estimate="70000", window_hours=168),
                                headers={**bearer(buyer), **idem()})
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["procurement"]["procedure"] == "mapa" and request["invited"] == INVITED
    invited = await invited_ids(client, buyer, request["id"])
    assert len(invited) == INVITED and network["unverified"][0]["id"] not in invited
    outsiders = [k for shop, k in network["wood"].items() if shop not in invited]
    assert len(outsiders) == len(WOOD) - INVITED

    # A workshop matching did not invite sees the consultation, with the engine's explanations.
    newcomer = outsiders[0]
    listed = (await consultations(client, newcomer))["items"]
    mine = [c for c in listed if c["request_id"] == request["id"]]
    assert len(mine) == 1
    seen = mine[0]
    assert seen["invited"] is False and seen["invitation_id"] is None
    assert seen["request"]["procedure"] == "mapa" and seen["request"]["estimated_value_eur_ht"] == "70000.00"
    assert seen["request"]["quantity"] == 6 and seen["request"]["delivery_commune_insee"] == "35238"
    assert seen["request"]["cpv"] and seen["request"]["cpv_label"]
    assert seen["capacity_units"] >= 6 and seen["distance_km"] >= 0
    assert any("proximité" in r for r in seen["reasons"]), seen["reasons"]
    # An invited workshop sees it too, flagged.
    inviter = network["wood"][sorted(invited)[0]]
    flagged = [c for c in (await consultations(client, inviter))["items"] if c["request_id"] == request["id"]]
    assert flagged and flagged[0]["invited"] is True and flagged[0]["invitation_id"]

    # It quotes: 201, and it now holds an invitation of its own.
    quoted = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote_body(),
                               headers={**bearer(newcomer), **idem()})
    assert quoted.status_code == 201, quoted.text
    own = (await client.get("/v1/invitations", headers=bearer(newcomer))).json()["items"]
    assert [i["request_id"] for i in own] == [request["id"]]
    assert own[0]["reasons"][0] == "a répondu à la consultation ouverte (procédure adaptée)"
    again = [c for c in (await consultations(client, newcomer))["items"] if c["request_id"] == request["id"]]
    assert again[0]["invited"] is True
    compared = (await client.get(f"/v1/requests/{request['id']}/quotes", headers=bearer(buyer))).json()["items"]
    assert [c["quote"]["id"] for c in compared] == [quoted.json()["id"]]
    assert compared[0]["distance_km"] is not None
    second = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote_body(),
                               headers={**bearer(newcomer), **idem()})
    assert second.status_code == 409 and second.json()["code"] == "quote-exists"

    # The ineligible: another trade, too far, never verified. None sees it; each quote is a 422.
    cases = [(network["fablab"][1], "process_missing", "aucune machine"),
             (network["far"][1], "out_of_radius", "au-delà"),
             (network["unverified"][1], "not_verified", "non vérifié")]
    for key, code, words in cases:
        assert request["id"] not in {c["request_id"] for c in (await consultations(client, key))["items"]}
        refused = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote_body(),
                                    headers={**bearer(key), **idem()})
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "not-eligible" and words in problem["detail"], problem
        assert code in {r["code"] for r in problem["reasons"]}, problem
    assert (await client.get("/v1/invitations", headers=bearer(network["fablab"][1]))).json()["items"] == []

    # Once the buyer cancels it, the consultation is gone for everyone not invited.
    cancelled = await client.post(f"/v1/requests/{request['id']}/cancel", headers=bearer(buyer))
    assert cancelled.status_code == 200, cancelled.text
    assert request["id"] not in {c["request_id"] for c in (await consultations(client, outsiders[1]))["items"]}
    late = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote_body(),
                             headers={**bearer(outsiders[1]), **idem()})
    assert late.status_code == 404, late.text


async def test_consultations_are_paged(client, admin_key, network):
    ids = []
    for _ in range(3):
        buyer = await buyer_key(client, admin_key)
        created = await client.post("/v1/requests", json=desk(estimate="65000", window_hours=168),
                                    headers={**bearer(buyer), **idem()})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    key = next(iter(network["wood"].values()))
    seen, cursor, pages = [], None, 0
    while True:
        page = await consultations(client, key, limit=2, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen += [c["request_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 2
    # Not a MAPA: a request without publicity is no consultation.
    buyer = await buyer_key(client, admin_key)
    small = await client.post("/v1/requests", json=desk(estimate="9000"), headers={**bearer(buyer), **idem()})
    assert small.json()["procurement"]["procedure"] == "sans_publicite"
    assert small.json()["id"] not in {c["request_id"] for c in (await consultations(client, key))["items"]}


async def test_buyer_invites_a_workshop_it_knows(client, admin_key, network):
    buyer = await buyer_key(client, admin_key)
    created = await client.post("/v1/requests", json=desk(estimate="9000"), headers={**bearer(buyer), **idem()})
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["procurement"]["procedure"] == "sans_publicite" and request["invited"] == INVITED
    invited = await invited_ids(client, buyer, request["id"])
    shop_id, maker = next((s, k) for s, k in network["wood"].items() if s not in invited)

    # Without publicity, a workshop not invited cannot see the request nor quote on it.
    hidden = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote_body(),
                               headers={**bearer(maker), **idem()})
    assert hidden.status_code == 404, hidden.text
    assert hidden.json()["code"] == "not-found"
    assert request["id"] not in {c["request_id"] for c in (await consultations(client, maker))["items"]}

    # The buyer adds it: 201, the invitation is the workshop's, and the same key replays the answer.
    path = f"/v1/requests/{request['id']}/invitations"
    headers = {**bearer(buyer), **idem()}
    added = await client.post(path, json={"workshop_id": shop_id}, headers=headers)
    assert added.status_code == 201, added.text
    invitation = added.json()
    assert invitation["source"] == "buyer" and invitation["workshop_id"] == shop_id
    assert invitation["status"] == "invited" and invitation["reasons"][0] == "ajouté par l'acheteur"
    assert invitation["capacity_units"] >= 6
    replayed = await client.post(path, json={"workshop_id": shop_id}, headers=headers)
    assert replayed.status_code == 201 and replayed.json()["id"] == invitation["id"]

    own = (await client.get("/v1/invitations", headers=bearer(maker))).json()["items"]
    assert [i["id"] for i in own] == [invitation["id"]] and own[0]["request_id"] == request["id"]
    events = (await client.get("/v1/events", headers=bearer(maker))).json()["items"]
    created_events = [e for e in events if e["type"] == "invitation.created"]
    assert [e["data"]["id"] for e in created_events] == [invitation["id"]]
    assert created_events[0]["data"]["request"]["id"] == request["id"]
    quoted = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote_body(),
                               headers={**bearer(maker), **idem()})
    assert quoted.status_code == 201, quoted.text

    # Twice: 409. Ineligible: 422 with the reasons. Unknown workshop: 404.
    twice = await client.post(path, json={"workshop_id": shop_id}, headers={**bearer(buyer), **idem()})
    assert twice.status_code == 409 and twice.json()["code"] == "already-invited", twice.text
    already = await client.post(path, json={"workshop_id": sorted(invited)[0]}, headers={**bearer(buyer), **idem()})
    assert already.status_code == 409 and already.json()["code"] == "already-invited"
    for shop, words in ((network["fablab"][0], "aucune machine"), (network["far"][0], "au-delà"),
                        (network["unverified"][0], "non vérifié")):
        refused = await client.post(path, json={"workshop_id": shop["id"]}, headers={**bearer(buyer), **idem()})
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "not-eligible" and words in problem["detail"], problem
        assert problem["errors"][0]["pointer"] == "/workshop_id"
    unknown = await client.post(path, json={"workshop_id": str(uuid.uuid4())}, headers={**bearer(buyer), **idem()})
    assert unknown.status_code == 404 and unknown.json()["code"] == "workshop-not-found"
    listed = (await client.get(f"/v1/requests/{request['id']}/quotes", headers=bearer(buyer))).json()["items"]
    assert [c["quote"]["workshop_id"] for c in listed] == [shop_id]

    # Another tenant's request is not found, whatever the workshop; a maker may not add anyone.
    other = await buyer_key(client, admin_key)
    spare = next(s for s in network["wood"] if s not in invited and s != shop_id)
    stranger = await client.post(path, json={"workshop_id": spare}, headers={**bearer(other), **idem()})
    assert stranger.status_code == 404 and stranger.json()["code"] == "not-found"
    assert (await client.post(path, json={"workshop_id": spare}, headers={**bearer(maker), **idem()})).status_code == 403

    # A request no longer taking quotes: 409.
    cancelled = await client.post(f"/v1/requests/{request['id']}/cancel", headers=bearer(buyer))
    assert cancelled.status_code == 200, cancelled.text
    closed = await client.post(path, json={"workshop_id": spare}, headers={**bearer(buyer), **idem()})
    assert closed.status_code == 409 and closed.json()["code"] == "quote-window-closed", closed.text
