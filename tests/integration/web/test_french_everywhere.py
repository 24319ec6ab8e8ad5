"""Issue 21 item 1 on the pages (in-process, signed in by session cookie): the refusals reported in
English now read in French on their pages (crisis progress, the cancel of a call with accepted
commitments, a call no workshop can reach), and the audit journal reads as sentences — with names,
French verbs and objects — filtered, and exported as a CSV holding the same rows."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import FAB_LAB, bearer, delivered_order, make_workshop, tenant
from support_web import Browser, signed_in, visible

from broker.web.journal import VERBS

ENGLISH = ("units_delivered", "units_produced", "is more than", "makers already", "no workshop", "within reach",
           "close it instead", "commitment", "crisis call")


def _deadline(days: int = 10) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def assert_french(page: str) -> str:
    text = visible(page)
    for words in ENGLISH:
        assert words not in text, (words, text)
    return text


async def _call_with_an_accepted_commitment(client: Any, admin_key: str) -> tuple[str, str, dict[str, Any], str]:
    """A visor call around Rennes; the one fab lab's maker accepted its commitment (100 units)."""
    _shop, maker = await make_workshop(client, admin_key, name="Fab lab de Rennes", commune_insee="35238",
                                       machines=FAB_LAB, radius_km=80, capacities={"face-visor": 30})
    _org, coordinator = await tenant(client, admin_key, "coordination", "coordinator", name="ARS Bretagne")
    body = {"item": "face-visor", "deadline": _deadline(), "priority": 1,
            "delivery_points": [{"label": "CHU de Rennes", "commune_insee": "35238", "quantity": 100, "priority": 1}]}
    created = await client.post("/v1/crisis-calls", json=body, headers=bearer(coordinator))
    assert created.status_code == 201, created.text
    call_id = created.json()["id"]
    detail = (await client.get(f"/v1/crisis-calls/{call_id}", headers=bearer(coordinator))).json()
    commitment = detail["commitments"][0]
    accepted = await client.post(f"/v1/commitments/{commitment['id']}/accept", headers=bearer(maker))
    assert accepted.status_code == 200, accepted.text
    return call_id, coordinator, commitment, maker


async def test_crisis_refusals_read_in_french(client, admin_key):
    call_id, coordinator, commitment, maker = await _call_with_an_accepted_commitment(client, admin_key)
    person = Browser(client, await signed_in(client, maker))
    await person.get("/app/engagements")
    refused = await person.post(f"/app/engagements/{commitment['id']}/avancement",
                                {"produites": "10", "livrees": "20"}, status=422)
    text = assert_french(refused.text)
    assert "20 unités livrées, c'est plus que les 10 unités fabriquées." in text

    boss = Browser(client, await signed_in(client, coordinator))
    await boss.get(f"/app/crises/{call_id}")
    await boss.post(f"/app/crises/{call_id}/cloture", {"confirmer": "on", "annuler": "oui"})
    text = assert_french(await boss.get(f"/app/crises/{call_id}"))
    assert "Des ateliers ont déjà accepté des engagements de cet appel : il ne peut plus être annulé." in text

    await boss.get("/app/crises/nouvel-appel")
    far = await boss.post("/app/crises/nouvel-appel", {
        "article": "uns1-mask", "echeance": (datetime.now(UTC) + timedelta(days=10)).date().isoformat(),
        "priorite": "1", "label_1": "Mairie de Brest", "commune_1": "29019", "quantite_1": "500",
        "priorite_1": "1"}, status=422)
    text = assert_french(far.text)
    assert "Aucun atelier à portée des points de livraison ne sait fabriquer" in text, text
    assert "AFNOR Spec S76-001 (masques barrières)" in text and "afnor-spec-s76-001" not in text


async def test_the_audit_journal_reads_as_sentences_filters_and_exports(client, admin_key):
    world = await delivered_order(client, admin_key, buyer_name="Commune de Vitré")
    other, other_key = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Fougères")
    assert (await client.patch(f"/v1/organizations/{other['id']}", json={"legal_form": "7210"},
                               headers=bearer(other_key))).status_code == 200
    admin = Browser(client, await signed_in(client, admin_key))
    page = await admin.get("/app/admin/journal")
    text = visible(page)
    prefix = world["buyer"][:16]  # fab_ and the key's public prefix
    assert re.search(r"\d{1,2} \w+\.? 20\d\d à \d{1,2} h \d\d — Commune de Vitré \(acheteur, clé "
                     + re.escape(prefix) + r"[^)]*…\) a créé la demande «\u00a0Bureau d'accueil France Services\u00a0»",
                     text), text
    assert "Menuiserie du Pays de Rennes (atelier, clé" in text and "a envoyé un devis sur la demande" in text
    assert "a fait avancer la commande" in text and "Commune de Fougères (acheteur" in text
    for raw in ("POST /v1", "/v1/requests", "request ", "organization ", world["buyer_org"]["id"]):
        assert raw not in text, raw

    vitre = world["buyer_org"]["id"]
    filtered = _sentences(await admin.get(f"/app/admin/journal?organisation={vitre}&action=demande"))
    assert [s.split(" — ", 1)[1] for s in filtered] == [
        "Commune de Vitré (acheteur, clé " + prefix + "…) a attribué la demande «\u00a0Bureau d'accueil France "
        "Services\u00a0».",
        "Commune de Vitré (acheteur, clé " + prefix + "…) a créé la demande «\u00a0Bureau d'accueil France "
        "Services\u00a0».",
    ]  # not « a modifié l'organisation » (another kind of action), nor Fougères' entries
    today = datetime.now(UTC).date()
    assert "Aucune entrée pour ces filtres" in visible(
        await admin.get(f"/app/admin/journal?du={(today + timedelta(days=2)).isoformat()}"))

    shown = await admin.get("/app/admin/journal")
    exported = await client.get("/app/admin/journal?format=csv", headers={"Cookie": admin.cookie})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["N°", "Date et heure", "Organisation", "Rôle", "Clé", "Type d'action", "Objet", "Résultat",
                       "Entrée"]
    page_rows = _rows(shown)
    assert len(page_rows) == len(rows) - 1 > 20
    assert [(r[0], r[-1]) for r in rows[1:]] == page_rows
    assert any(r[2] == "Commune de Vitré" and r[6] == "demande Bureau d'accueil France Services" for r in rows[1:])

    buyer = Browser(client, await signed_in(client, world["buyer"]))
    await buyer.get("/app/admin/journal", status=403)  # the journal stays the operator's


def _rows(page: str) -> list[tuple[str, str]]:
    """The journal's entries on a page: (number, sentence)."""
    found = re.findall(r'<tr id="entree-(\d+)"><td class="num">\d+</td><td class="audit-sentence">(.*?)</td>',
                       page, flags=re.S)
    return [(number, html.unescape(text)) for number, text in found]


def _sentences(page: str) -> list[str]:
    return [text for _number, text in _rows(page)]


async def test_every_write_of_the_app_has_its_verb_in_the_journal(client):
    writes = {f"{method} {route.path_format}" for route in client.app.routes
              for handler in getattr(route, "route_handlers", [])
              for method in set(handler.http_methods) - {"GET", "HEAD", "OPTIONS"}}
    assert writes and not sorted(writes - set(VERBS)), sorted(writes - set(VERBS))
