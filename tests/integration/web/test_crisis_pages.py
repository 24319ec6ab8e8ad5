"""The crisis pages a coordinator trusts (issue 21 items 2, 4 and 5), in process, signed in by session:

- the new-call form keeps what was typed when rows are added (posted and shown again), imports its
  points from a CSV file (« ; » or « , », with or without BOM), reports every bad line in French and
  then creates nothing;
- a call has a name (the coordinator's, else the item and the day), shown in lists and pages and in
  the ``crisis_call.created`` event;
- the map calls a point covered only by accepted commitments; proposed ones are « proposé »;
- the dashboard shows, for each workshop, its commitments with their status, the reason of a
  decline and the last progress report;
- the points and the commitments export as CSV (BOM, « ; », French headers);
- a closed call's page no longer refreshes, and its live part tells the script to stop."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from crisis_support import seed
from factories import bearer
from sqlalchemy import func, select
from support_web import Browser, signed_in, visible

from broker.db.models import CrisisCallRow, OutboxRow

NBSP = "\u00a0"
# Visor workshops around Rennes: (commune, units per day, delivery radius km)
MAKERS = [("35238", 40, 80.0), ("35047", 30, 80.0), ("35051", 30, 80.0)]


def _deadline(days: int = 12) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


async def _setup(client: Any, db: Any, admin_key: str) -> tuple[dict[str, Any], Browser]:
    world = await seed(db, workshops_at=MAKERS, admin_token=admin_key)
    return world, Browser(client, await signed_in(client, world["coordinator"]))


async def _calls(db: Any) -> int:
    async with db.reader() as session:
        return int((await session.execute(select(func.count()).select_from(CrisisCallRow))).scalar_one())


async def _post_multipart(client: Any, browser: Browser, data: dict[str, str], csv_bytes: bytes | None,
                          status: int) -> Any:
    files = {"fichier_points": ("points.csv", csv_bytes, "text/csv")} if csv_bytes is not None else None
    response = await client.post("/app/crises/nouvel-appel", data={"_csrf": browser.csrf, **data}, files=files,
                                 headers={"Cookie": browser.cookie}, follow_redirects=False)
    assert response.status_code == status, response.text[:1500]
    return response


def _field(page: str, name: str) -> str | None:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', page)
    return found.group(1) if found else None


async def test_rows_added_keep_typing_and_a_bad_csv_creates_nothing(client, admin_key, db):
    _world, coordinator = await _setup(client, db, admin_key)
    form = await coordinator.get("/app/crises/nouvel-appel")
    assert "Afficher plus de lignes" not in form and "Ajouter des lignes" in form
    typed = {"article": "face-visor", "nom": "Visières CHU Bretagne", "echeance": _deadline(), "priorite": "1",
             "lignes": "5", "label_1": "CHU de Rennes, Pontchaillou", "commune_1": "Rennes", "quantite_1": "300",
             "priorite_1": "1", "label_4": "EHPAD Les Tilleuls", "commune_4": "35360", "quantite_4": "80",
             "priorite_4": "2", "points_csv": "Mairie de Bruz ; Bruz ; 40 ; 3", "action": "lignes"}
    more = await coordinator.post("/app/crises/nouvel-appel", typed, status=200)
    page = more.text
    # Every value typed is still there, and five more (empty) rows follow.
    for name in ("nom", "label_1", "commune_1", "quantite_1", "label_4", "quantite_4"):
        assert _field(page, name) == typed[name].replace("'", "&#39;"), name
    assert "Mairie de Bruz ; Bruz ; 40 ; 3" in page
    assert 'name="label_10"' in page and 'name="label_11"' not in page and _field(page, "lignes") == "10"
    assert re.search(r'<option value="1" selected>1 — vitale</option>', page.split('name="priorite_1"')[1])
    assert await _calls(db) == 0

    # A CSV with a BOM, « , » between fields, a header line and three bad lines: each said, none created.
    bad = ("\ufeffnom,commune,quantité,priorité\n"
           "Centre hospitalier de Vitré,Vitré (35),120,2\n"
           "Pharmacie du Centre,Commune-qui-n-existe-pas,10,3\n"
           "Maison de santé de Redon,Redon,-5,3\n"
           "Centre hospitalier de Vitré,35360,10,9\n").encode()
    form = await coordinator.get("/app/crises/nouvel-appel")
    refused = await _post_multipart(client, coordinator, {k: v for k, v in typed.items() if k != "action"}, bad, 422)
    text = visible(refused.text)
    assert "Ligne 3, commune : Aucune commune française ne correspond à « Commune-qui-n-existe-pas »" in text, text
    assert "Ligne 4, quantité : Saisissez un nombre entre 1 et 10" in text
    assert "Ligne 5, nom du point : « Centre hospitalier de Vitré » figure déjà ligne 2" in text
    assert "Ligne 5, priorité : Cette valeur n'est pas dans la liste proposée." in text
    assert "aucun point n'est créé" in text
    assert "Pharmacie du Centre,Commune-qui-n-existe-pas,10,3" in refused.text  # kept for correction
    assert _field(refused.text, "label_1") == "CHU de Rennes, Pontchaillou"
    assert await _calls(db) == 0

    # A file not in UTF-8 says so.
    latin = "Hôpital;Rennes;10;1\n".encode("latin-1")
    refused = await _post_multipart(client, coordinator, {k: v for k, v in typed.items()
                                                          if k not in ("action", "points_csv")}, latin, 422)
    assert "n'est pas en UTF-8" in visible(refused.text)
    assert await _calls(db) == 0


async def test_imported_call_named_mapped_followed_and_exported(client, admin_key, db):
    world, coordinator = await _setup(client, db, admin_key)
    await coordinator.get("/app/crises/nouvel-appel")
    good = ("Nom du point;Commune;Quantité;Priorité\n"
            "Centre hospitalier de Vitré;Vitré (35);60;2\n"
            "Mairie de Bruz;35047;30\n").encode()
    data = {"article": "face-visor", "nom": "Visières CHU Bretagne", "echeance": _deadline(), "priorite": "1",
            "lignes": "5", "label_1": "CHU de Rennes, Pontchaillou", "commune_1": "Rennes", "quantite_1": "100",
            "priorite_1": "1"}
    made = await _post_multipart(client, coordinator, data, good, 303)
    call_id = made.headers["location"].rsplit("/", 1)[1]
    coordinator.flash = made.cookies.get("broker_flash", "")
    page = await coordinator.get(f"/app/crises/{call_id}")
    text = visible(page)
    assert "Visières CHU Bretagne" in text
    for label in ("CHU de Rennes, Pontchaillou", "Centre hospitalier de Vitré", "Mairie de Bruz"):
        assert label in text
    assert "Appels de crise" in text and "Visières CHU Bretagne" in visible(await coordinator.get("/app/crises"))

    # Nothing accepted yet: no point is covered, whatever is proposed.
    assert 'class="point point-covered"' not in page
    assert 'class="point point-proposed"' in page
    assert "Couvert</span>" not in page
    assert 'data-refresh="/app/crises/' in page

    async with db.reader() as session:
        event = (await session.execute(select(OutboxRow).where(OutboxRow.type == "crisis_call.created"))).scalar_one()
    assert event.payload["name"] == "Visières CHU Bretagne", event.payload

    # Makers answer: one accepts everything it was proposed and reports, one declines with a reason.
    keys = {m["workshop_id"]: m["key"] for m in world["makers"]}
    detail = (await client.get(f"/v1/crisis-calls/{call_id}", headers=bearer(world["coordinator"]))).json()
    by_shop: dict[str, list[dict[str, Any]]] = {}
    for c in detail["commitments"]:
        by_shop.setdefault(c["workshop_id"], []).append(c)
    assert len(by_shop) >= 2, detail["commitments"]
    (accepter, accepted), (decliner, declined) = sorted(by_shop.items())[:2]
    for c in accepted:
        response = await client.post(f"/v1/commitments/{c['id']}/accept", headers=bearer(keys[accepter]))
        assert response.status_code == 200, response.text
    first = accepted[0]
    response = await client.post(f"/v1/commitments/{first['id']}/progress", headers=bearer(keys[accepter]),
                                 json={"units_produced": 12, "units_delivered": 5})
    assert response.status_code == 200, response.text
    reason = "Imprimantes déjà mobilisées pour le CHU de Nantes"
    response = await client.post(f"/v1/commitments/{declined[0]['id']}/decline", headers=bearer(keys[decliner]),
                                 json={"reason": reason})
    assert response.status_code == 200, response.text

    live = await coordinator.get(f"/app/crises/{call_id}/tableau")
    text = visible(live)
    assert reason in text
    assert "12 fabriquées, 5 livrées sur" in text, text
    assert "dernier avancement déclaré le" in text
    detail = (await client.get(f"/v1/crisis-calls/{call_id}", headers=bearer(world["coordinator"]))).json()
    shown = {html.unescape(label): state
             for state, label in re.findall(r'class="point point-(\w+)"[^>]*><title>([^<]+?) — ', live)}
    expected = {p["label"]: "covered" if p["accepted"] >= p["quantity"] else
                "proposed" if p["committed"] >= p["quantity"] else "short" for p in detail["delivery_points"]}
    assert shown == expected and "covered" in shown.values(), (shown, detail["delivery_points"])

    # CSV exports: BOM, « ; », French headers; the points file reads back as an import.
    points = await client.get(f"/app/crises/{call_id}?format=csv", headers={"Cookie": coordinator.cookie})
    assert points.status_code == 200 and points.headers["content-type"].startswith("text/csv")
    assert points.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(points.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Nom du point", "Commune", "Quantité demandée", "Priorité"] and len(rows) == 4
    assert ["Mairie de Bruz", "Bruz (35)", "30", "3"] in [r[:4] for r in rows]
    commitments = await client.get(f"/app/crises/{call_id}?format=csv&tableau=engagements",
                                   headers={"Cookie": coordinator.cookie})
    assert commitments.status_code == 200 and commitments.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(commitments.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Atelier" and "Motif du refus" in rows[0] and len(rows) == len(detail["commitments"]) + 1
    assert any(r[rows[0].index("Motif du refus")] == reason for r in rows[1:])
    assert any(r[rows[0].index("État")] == "Accepté" and r[rows[0].index("Fabriquées")] == "12" for r in rows[1:])

    # Closing: the page stops refreshing, and the live part tells an open page's script to stop.
    await coordinator.post(f"/app/crises/{call_id}/cloture", {"confirmer": "on"})
    page = await coordinator.get(f"/app/crises/{call_id}")
    assert "data-refresh=" not in page and "ne se met plus à jour" in visible(page)
    assert "data-refresh-stop" in await coordinator.get(f"/app/crises/{call_id}/tableau")


async def test_api_name_is_optional_and_defaults_to_item_and_day(client, admin_key, db):
    world = await seed(db, workshops_at=MAKERS[:1], admin_token=admin_key)
    body = {"item": "face-visor", "deadline": (datetime.now(UTC) + timedelta(days=9)).isoformat(), "priority": 2,
            "delivery_points": [{"label": "CHU de Rennes", "commune_insee": "35238", "quantity": 20, "priority": 1}]}
    made = await client.post("/v1/crisis-calls", json=body, headers=bearer(world["coordinator"]))
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert re.fullmatch(r"Visière de protection — (1er|\d{1,2}) \w+ 20\d\d", name), name
    named = await client.post("/v1/crisis-calls", json={**body, "name": "Visières EHPAD 35"},
                              headers=bearer(world["coordinator"]))
    assert named.status_code == 201 and named.json()["name"] == "Visières EHPAD 35", named.text
    listed = (await client.get("/v1/crisis-calls", headers=bearer(world["coordinator"]))).json()["items"]
    assert {c["name"] for c in listed} == {name, "Visières EHPAD 35"}
    too_long = await client.post("/v1/crisis-calls", json={**body, "name": "x" * 201},
                                 headers=bearer(world["coordinator"]))
    assert too_long.status_code == 400 and too_long.json()["errors"][0]["pointer"] == "/name", too_long.text


async def test_backdrop_draws_department_outlines(client, admin_key, db):
    world = await seed(db, workshops_at=[], admin_token=admin_key)
    coordinator = Browser(client, await signed_in(client, world["coordinator"]))
    svg = await coordinator.get("/app/crises/fond-de-carte.svg?cadre=47.2,48.9,-2.6,-0.6,720,800")
    outline = re.search(r'<path d="(M[^"]+)" fill="none"', svg)
    assert outline and outline.group(1).count("Z") >= 4  # Ille-et-Vilaine and its neighbours
