"""Issue 21 items 3, 4 and 5 on the maker's pages (in-process, signed in by session cookie).

A maker declares a machine by picking its process and its materials from lists of French names (the
engine gets its identifiers: « contreplaqué de bouleau » is ``birch_plywood``), edits it, removes it,
changes and withdraws a declared capacity; another workshop's machine is a 404. The quote form tells,
before the quote goes, that the buyer will see it late or partial (the award rules' flags), holds it
back once for confirmation, then sends it; « Mes devis » lists the quotes newest first, and exports
them as CSV for a French spreadsheet."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import FAB_LAB, bearer, make_siret, make_workshop, tenant
from support_web import Browser, signed_in, visible

ITEM = "face-visor"
MACHINE = {"procede": "cnc_routing", "enveloppe_x": "2500", "enveloppe_y": "1250", "enveloppe_z": "100",
           "materiau_birch_plywood": "on", "epaisseur_birch_plywood": "18", "heures": "35"}


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="e-{name}">.*?</span>(.*?)</p>', page, re.S)
    return html.unescape(found.group(1)) if found else ""


async def _machines(client: Any, key: str) -> list[dict[str, Any]]:
    return (await client.get("/v1/workshops/me", headers=bearer(key))).json()["machines"]


async def test_machines_are_picked_from_lists_edited_and_removed(client, admin_key):
    _shop, key = await make_workshop(client, admin_key, name="Fab lab de Rennes", commune_insee="35238",
                                     machines=FAB_LAB, capacities={ITEM: 30})
    _other, other_key = await make_workshop(client, admin_key, name="Fab lab de Cesson", commune_insee="35051",
                                            machines=FAB_LAB[:1])
    maker = Browser(client, await signed_in(client, key))

    # The process and the materials are lists with their French names; no identifier to type.
    page = await maker.get("/app/atelier")
    assert '<option value="cnc_routing">Fraisage numérique (défonceuse CNC)</option>' in page
    assert re.search(r'name="materiau_birch_plywood" type="checkbox"[^>]*>\s*<label for="f-materiau_birch_plywood">'
                     r"Contreplaqué de bouleau</label>", page)
    assert 'list="materiaux"' not in page and "Identifiant" not in page

    # Refusals: a thickness missing, a thickness for a material not ticked, an unknown process, none at all.
    refused = await maker.post("/app/atelier/machines", {**MACHINE, "procede": "plasma", "epaisseur_birch_plywood": "",
                                                         "epaisseur_mdf": "12"}, status=422)
    assert "Cette valeur n'est pas dans la liste proposée." in field_error(refused.text, "procede")
    assert field_error(refused.text, "epaisseur_birch_plywood") == (
        "Indiquez l'épaisseur maximale pour « Contreplaqué de bouleau ».")
    assert field_error(refused.text, "epaisseur_mdf") == "Cochez « MDF » ou effacez cette épaisseur."
    bare = {k: v for k, v in MACHINE.items() if not k.endswith("birch_plywood")}
    refused = await maker.post("/app/atelier/machines", bare, status=422)
    assert field_error(refused.text, "materiaux") == "Cochez au moins un matériau et indiquez son épaisseur maximale."
    assert 'href="#f-materiaux"' in refused.text and 'id="f-materiaux"' in refused.text

    # Added: the engine's identifiers are stored, the page says them in French.
    await maker.post("/app/atelier/machines", MACHINE)
    page = visible(await maker.get("/app/atelier"))
    assert "Machine ajoutée : Fraisage numérique (défonceuse CNC)." in page
    assert "contreplaqué de bouleau jusqu'à 18\u202fmm" in page
    added = (await _machines(client, key))[-1]
    assert added["process"] == "cnc_routing"
    assert added["materials"] == [{"material": "birch_plywood", "max_thickness_mm": 18}]

    # Edited: its form comes filled in; MDF added, fewer hours.
    page = await maker.get(f"/app/atelier/machines/{added['id']}")
    assert re.search(r'name="materiau_birch_plywood" type="checkbox" checked', page)
    assert 'name="epaisseur_birch_plywood" type="text" value="18"' in page
    assert '<option value="cnc_routing" selected>' in page
    await maker.post(f"/app/atelier/machines/{added['id']}", {**MACHINE, "materiau_mdf": "on",
                                                             "epaisseur_mdf": "22,5", "heures": "20"})
    assert "Machine modifiée : Fraisage numérique (défonceuse CNC)." in visible(await maker.get("/app/atelier"))
    edited = (await _machines(client, key))[-1]
    assert edited["id"] == added["id"] and edited["hours_per_week"] == 20
    assert edited["materials"] == [{"material": "birch_plywood", "max_thickness_mm": 18},
                                   {"material": "mdf", "max_thickness_mm": 22.5}]
    refused = await maker.post(f"/app/atelier/machines/{added['id']}", {**MACHINE, "heures": "200"}, status=422)
    assert "168" in field_error(refused.text, "heures")

    # Another workshop's machine does not exist for this maker.
    theirs = (await _machines(client, other_key))[0]
    await maker.get(f"/app/atelier/machines/{theirs['id']}", status=404)
    await maker.post(f"/app/atelier/machines/{theirs['id']}/retrait", status=404)
    assert (await _machines(client, other_key))[0] == theirs

    # Removed.
    await maker.get("/app/atelier")
    await maker.post(f"/app/atelier/machines/{added['id']}/retrait")
    assert "Machine retirée : Fraisage numérique (défonceuse CNC)." in visible(await maker.get("/app/atelier"))
    assert added["id"] not in {m["id"] for m in await _machines(client, key)}

    # A declared capacity: changed through its own form, then withdrawn (twice: the second says so).
    page = await maker.get(f"/app/atelier?capacite={ITEM}")
    assert '<option value="face-visor" selected>' in page and 'name="unites_par_jour" type="text" value="30"' in page
    assert "Modifier la capacité pour « Visière de protection »" in html.unescape(page)
    await maker.post("/app/atelier/capacites", {"article": ITEM, "unites_par_jour": "45"})
    me = (await client.get("/v1/workshops/me", headers=bearer(key))).json()
    assert me["capacities"] == {ITEM: 45}
    await maker.get("/app/atelier")
    await maker.post(f"/app/atelier/capacites/{ITEM}/retrait")
    page = visible(await maker.get("/app/atelier"))
    assert "Capacité retirée pour « Visière de protection »" in page
    assert (await client.get("/v1/workshops/me", headers=bearer(key))).json()["capacities"] == {}
    await maker.post(f"/app/atelier/capacites/{ITEM}/retrait")
    assert "Aucune capacité n'est déclarée pour « Visière de protection »" in visible(await maker.get("/app/atelier"))


async def _request(client: Any, buyer: str, *, quantity: int, split: bool, days: int) -> str:
    body = {"item": ITEM, "quantity": quantity, "allow_split": split, "min_quotes": 1,
            "deadline": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            "delivery": {"commune_insee": "35238", "address": "Mairie, place de la Mairie"},
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "100.00"}}
    made = await client.post("/v1/requests", json=body, headers={**bearer(buyer), "Idempotency-Key": str(uuid.uuid4())})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _invitation(request_id: str, client: Any, key: str) -> str:
    invitations = (await client.get("/v1/invitations", headers=bearer(key))).json()["items"]
    return next(i["id"] for i in invitations if i["request_id"] == request_id)


async def test_the_quote_form_flags_late_and_partial_quotes_and_the_quotes_list_exports(client, admin_key):
    _shop, key = await make_workshop(client, admin_key, name="Fab lab de Rennes", commune_insee="35238",
                                     machines=FAB_LAB, capacities={ITEM: 30})
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Rennes",
                               commune_insee="35238")
    split = await _request(client, buyer, quantity=6, split=True, days=20)
    whole = await _request(client, buyer, quantity=8, split=False, days=25)
    maker = Browser(client, await signed_in(client, key))
    invitation = await _invitation(split, client, key)
    on_time = (datetime.now(UTC) + timedelta(days=19)).date()
    late = (datetime.now(UTC) + timedelta(days=30)).date()

    # Before anything is typed: no warning, but what app.js needs to say them as the maker types.
    page = await maker.get(f"/app/invitations/{invitation}")
    assert "livraison après l'échéance demandée" not in visible(page)
    form = re.search(r'<form method="post" action="/app/invitations/[^"]+/devis"[^>]*>', page, re.S).group(0)
    assert 'data-quote-requested="6"' in form and 'data-quote-deadline="' in form
    assert "livraison après l&#39;échéance demandée : promise le {livraison}" in form
    assert "devis partiel : {quantite} sur 6 unités demandées" in form

    # Late and partial: held back once, with both warnings; nothing is sent.
    quote = {"prix": "3,10", "tva": "20", "quantite": "4", "livraison": late.isoformat()}
    held = await maker.post(f"/app/invitations/{invitation}/devis", quote, status=422)
    text = visible(held.text)
    assert "livraison après l'échéance demandée : promise le" in text
    assert "devis partiel : 4 sur 6 unités demandées ; la demande accepte les devis partiels" in text
    assert "Ce devis appelle votre attention (ci-dessous) : envoyez-le à nouveau pour confirmer." in text
    assert "Envoyer le devis malgré l'avertissement" in text
    confirm = re.search(r'name="confirme" value="([^"]+)"', held.text).group(1)
    quotes = await client.get(f"/v1/requests/{split}/quotes", headers=bearer(buyer))
    assert quotes.json()["items"] == []

    # Changed figures are warned about again; the same figures sent again are the confirmation.
    again = await maker.post(f"/app/invitations/{invitation}/devis", {**quote, "quantite": "5", "confirme": confirm},
                             status=422)
    assert "devis partiel : 5 sur 6" in visible(again.text)
    confirm = re.search(r'name="confirme" value="([^"]+)"', again.text).group(1)
    await maker.post(f"/app/invitations/{invitation}/devis", {**quote, "quantite": "5", "confirme": confirm})
    page = visible(await maker.get(f"/app/invitations/{invitation}"))
    assert "Devis envoyé à l'acheteur, qui le verra signalé : en retard. Devis partiel : 5 sur 6 unités." in page
    assert "En retard livraison promise après la date limite" in page

    # A request that may not be split: the partial quote is refused outright, no confirmation asked.
    other = await _invitation(whole, client, key)
    await maker.get(f"/app/invitations/{other}")
    refused = await maker.post(f"/app/invitations/{other}/devis", {**quote, "livraison": on_time.isoformat()},
                               status=422)
    assert "n'est pas fractionnable" in visible(refused.text)
    assert "envoyez-le à nouveau pour confirmer" not in visible(refused.text)
    await maker.post(f"/app/invitations/{other}/devis", {**quote, "quantite": "8", "livraison": on_time.isoformat()})
    assert "Devis envoyé à l'acheteur." in visible(await maker.get(f"/app/invitations/{other}"))

    # « Mes devis »: in the menu, newest first, the flags the buyer sees.
    page = await maker.get("/app/devis")
    assert '<a href="/app/devis" aria-current="page">Mes devis</a>' in page
    rows = re.findall(r'<td><a href="/app/invitations/([^"]+)">', page)
    assert rows == [other, invitation]
    assert visible(page).count("En retard") == 1

    # Its CSV: a byte order mark, « ; », French headers, the same order.
    export = await client.get("/app/devis?format=csv", headers={"Cookie": maker.cookie})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.content.startswith(b"\xef\xbb\xbf")
    lines = export.content.decode("utf-8-sig").splitlines()
    assert lines[0] == ("Envoyé le;Demande;Quantité proposée;Quantité demandée;Prix unitaire HT;Taux de TVA;"
                        "Livraison promise;Échéance demandée;Valable jusqu'au;Statut;Signalements")
    assert [line.split(";")[2:4] for line in lines[1:]] == [["8", "8"], ["5", "6"]]
    assert lines[2].endswith(";Envoyé;En retard") and lines[1].endswith(";Envoyé;")
    assert "3,10 €" in lines[1] and "20 %" in lines[1]
