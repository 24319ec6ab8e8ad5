"""Each role's main journey in a real browser against a real broker, with screenshots; bad input
keeps what was typed and says what is wrong next to the field; no page shows another tenant's
objects; revoked keys, signed-out sessions and forged forms are refused."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from factories import FAB_LAB, bearer, make_siret, make_workshop
from playwright.sync_api import expect

SOON = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()


def api(world: Any, method: str, path: str, key: str, body: Any = None, status: int = 200) -> Any:
    headers = {**bearer(key), "Idempotency-Key": str(uuid.uuid4())}
    with world.api() as client:
        response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, (path, response.text)
    return response.json() if response.content else None


def wait_matched(world: Any, request_id: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        matches = api(world, "GET", f"/v1/requests/{request_id}/matches", key)
        if matches["state"] == "done":
            return matches
        time.sleep(0.2)
    raise AssertionError("matching did not finish")


def maker_key(world: Any, workshop_id: str) -> str:
    return next(key for shop, key in world.shops.values() if shop["id"] == workshop_id)


UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name || e.id)"""


def assert_accessible_form(page: Any) -> None:
    """Every control has a label, and the page says it is in French."""
    assert page.evaluate(UNLABELLED) == [], page.url
    assert page.locator("html").get_attribute("lang") == "fr"


def field_error(page: Any, field_id: str) -> str:
    """The message tied to a field by aria-describedby (what a screen reader reads with it)."""
    assert page.locator(f"#{field_id}").count() == 1, page.content()[:1500]
    described = page.locator(f"#{field_id}").get_attribute("aria-describedby") or ""
    ids = [i for i in described.split() if i.startswith("e-")]
    assert ids, f"no error is attached to #{field_id}"
    return page.locator(f"#{ids[0]}").inner_text()


def test_buyer_posts_compares_awards_and_receives(person, world):
    buyer_org, buyer = world.orgs["lannion"]
    me = person("acheteur")
    page = me.sign_in(buyer)
    expect(page.get_by_role("heading", name="Mes demandes")).to_be_visible()

    page = me.go("/app/catalogue")
    visor = page.locator("#article-face-visor")
    expect(visor.get_by_role("img")).to_be_visible()  # the item's drawing
    expect(visor).to_contain_text("Découpe laser")
    me.shot("catalogue")
    visor.get_by_role("link", name=re.compile("Demander ce modèle")).click()

    # Bad input: each message next to its field, everything typed kept.
    page.get_by_label("Quantité").fill("deux cents")
    page.get_by_label("Commune de livraison").fill("22300")  # Lannion's postcode, and Saint-Hervé's INSEE code
    page.get_by_label("SIRET de l'acheteur").fill("21220113100018")
    page.get_by_label("Adresse de livraison").fill("Mairie, place du Général Leclerc")
    page.get_by_label("Budget maximal").fill("1 200,505")
    page.get_by_role("button", name="Publier la demande").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert "nombre entier" in field_error(page, "f-quantite")
    assert "désigne 10 communes" in field_error(page, "f-commune")  # 22300: Lannion first, among the choices
    assert "clé de contrôle" in field_error(page, "f-siret")
    assert "décimales" in field_error(page, "f-budget")
    expect(page.get_by_label("Quantité")).to_have_value("deux cents")
    expect(page.get_by_label("Adresse de livraison")).to_have_value("Mairie, place du Général Leclerc")
    expect(page.locator("#f-article")).to_have_value("face-visor")
    assert_accessible_form(page)
    me.shot("demande-erreurs")

    page.get_by_label("Quantité").fill("240")
    page.get_by_label("Commune de livraison").fill("22300 Lannion")
    page.get_by_label("SIRET de l'acheteur").fill(buyer_org["siret"])
    page.get_by_label("Budget maximal").fill("1 200")
    page.get_by_label("Date limite de livraison").fill((datetime.now(UTC).date() + timedelta(days=45)).isoformat())
    page.get_by_label("La commande peut être répartie entre plusieurs ateliers").check()
    page.get_by_role("button", name="Publier la demande").click()
    expect(page.locator(".flash")).to_contain_text("Demande publiée")
    request_id = page.url.rsplit("/", 1)[1]
    # Matching runs in the worker; the page refreshes by itself until the invitations are there.
    expect(page.get_by_role("heading", name=re.compile("Invités à chiffrer"))).to_be_visible(timeout=20_000)
    expect(page.locator(".matches")).to_contain_text("Fab lab de Lannion")
    excluded = page.locator("table", has_text="Raisons")
    expect(excluded).to_contain_text("Menuiserie du Pays de Rennes")
    expect(excluded).to_contain_text("Procédé absent")
    expect(excluded).to_contain_text("Marseille")
    expect(excluded).to_contain_text("Trop loin")
    me.shot("rapprochement")

    # Two invited makers quote (through the API); the buyer compares them side by side.
    invited = [m["workshop_id"] for m in wait_matched(world, request_id, buyer)["included"] if m["invited"]]
    prices = ["3.40", "2.95"]
    for workshop_id, price in zip(invited[:2], prices, strict=True):
        api(world, "POST", f"/v1/requests/{request_id}/quotes", maker_key(world, workshop_id),
            {"unit_price_eur_ht": price, "vat_rate": "5.5", "quantity": 120, "delivery_date": SOON,
             "note": "Serre-tête PLA, écran PETG 0,5 mm"}, status=201)
    page.reload()
    cards = page.locator("article.quote")
    expect(cards).to_have_count(2)
    expect(page.locator("article.quote.best")).to_contain_text("373,47")  # 120 × 2,95 € HT + 5,5 % TVA
    expect(page.locator("article.quote.best")).to_contain_text("Ponctualité")
    me.shot("devis-cote-a-cote")

    # Two quotes of the three expected while the window is open: a justification is required.
    for box in page.get_by_label(re.compile("Retenir ce devis")).all():
        box.check()
    page.get_by_role("button", name="Attribuer").click()
    assert "justifiez" in field_error(page, "f-justification")
    expect(page.get_by_label(re.compile("Retenir ce devis")).first).to_be_checked()  # the choice is kept
    me.shot("attribution-justification")
    page.get_by_label("Justification de l'attribution").fill("Urgence : rentrée des classes, deux ateliers proches.")
    page.get_by_role("button", name="Attribuer").click()
    expect(page.locator(".flash")).to_contain_text("2 commandes créées")
    expect(page.locator("#commandes")).to_contain_text("BC-")

    # The makers produce and ship (API); the buyer follows, confirms receipt, downloads documents.
    orders = [o for o in api(world, "GET", "/v1/orders", buyer)["items"] if o["request_id"] == request_id]
    first = orders[0]
    maker = maker_key(world, first["workshop_id"])
    for step in ("confirmed", "in_production"):
        api(world, "POST", f"/v1/orders/{first['id']}/transitions", maker, {"to": step})
    api(world, "POST", f"/v1/orders/{first['id']}/progress", maker, {"units_done": 120})
    api(world, "POST", f"/v1/orders/{first['id']}/transitions", maker, {"to": "ready"})
    api(world, "POST", f"/v1/orders/{first['id']}/transitions", maker,
        {"to": "shipped", "tracking": "Colissimo 6A123456789"})
    page = me.go("/app/commandes")
    expect(page.locator("tbody tr")).to_have_count(2)
    page.get_by_role("link", name=first["number"]).click()
    expect(page.locator("progress").first).to_have_attribute("value", "120")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Order-X")).click()
    xml = download.value.path().read_text()
    assert "CrossIndustryOrder" in xml or "SCRDMCCBDACIOMessageStructure" in xml
    assert buyer_org["siret"] in xml
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("PEPPOL")).click()
    assert "urn:oasis:names:specification:ubl" in download.value.path().read_text()
    page.get_by_role("button", name="Confirmer la réception").click()
    expect(page.locator(".flash")).to_contain_text("livrée")
    expect(page.locator(".page-head .badge")).to_have_text("Livrée")
    me.shot("commande-livree")


def _request(world: Any, buyer: str, item: str, quantity: int, insee: str, **extra: Any) -> dict[str, Any]:
    body = {"item": item, "quantity": quantity, "deadline": (datetime.now(UTC) + timedelta(days=40)).isoformat(),
            "delivery": {"commune_insee": insee, "address": "Hôtel de ville"},
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}, "budget_eur_ht": "1500", **extra}
    created = api(world, "POST", "/v1/requests", buyer, body, status=201)
    wait_matched(world, created["id"], buyer)
    return created


def test_maker_describes_workshop_quotes_and_produces(person, world):
    _org, newcomer = world.orgs["nouvelle"]
    me = person("atelier")
    page = me.sign_in(newcomer)
    expect(page.get_by_role("link", name="Décrire mon atelier")).to_be_visible()
    page.get_by_role("link", name="Décrire mon atelier").click()
    page.get_by_label("Commune de l'atelier").fill("Atlantide")
    page.get_by_label("Rayon de livraison").fill("loin")
    page.get_by_label("Métiers").fill("numérique, bois/métal")
    page.get_by_role("button", name="Enregistrer le profil").click()
    assert "Aucune commune" in field_error(page, "f-commune")
    assert "nombre positif" in field_error(page, "f-rayon")
    assert "bois/métal" in field_error(page, "f-metiers")
    expect(page.get_by_label("Métiers")).to_have_value("numérique, bois/métal")
    me.shot("profil-erreurs")
    page.get_by_label("Commune de l'atelier").fill("22070")
    page.get_by_label("Rayon de livraison").fill("80")
    page.get_by_label("Métiers").fill("Numérique, bois massif")
    page.get_by_label("Labels").fill("fablab")
    page.get_by_role("button", name="Enregistrer le profil").click()
    expect(page.locator(".flash")).to_contain_text("Profil de l'atelier enregistré")
    expect(page.get_by_label("Commune de l'atelier")).to_have_value("Guingamp (22)")
    expect(page.get_by_label("Métiers")).to_have_value("bois-massif, numerique")

    page.get_by_label("Procédé").select_option("fdm_printing")
    page.get_by_label("Longueur").fill("250")
    page.get_by_label("Largeur").fill("-5")
    page.get_by_label("Hauteur").fill("210")
    page.get_by_label("Heures disponibles par semaine").fill("200")
    page.get_by_role("button", name="Ajouter la machine").click()
    assert "nombre positif" in field_error(page, "f-enveloppe_y")
    assert "au moins un matériau" in field_error(page, "f-materiaux")
    assert "168" in field_error(page, "f-heures")
    expect(page.get_by_label("Longueur")).to_have_value("250")
    assert_accessible_form(page)
    me.shot("machine-erreurs")
    page.get_by_label("Largeur").fill("210")
    page.get_by_label("PLA", exact=True).check()
    page.get_by_label("Épaisseur maximale (PLA)").fill("10")
    page.get_by_label("PETG", exact=True).check()
    page.get_by_label("Épaisseur maximale (PETG)").fill("8")
    page.get_by_label("Heures disponibles par semaine").fill("60")
    page.get_by_role("button", name="Ajouter la machine").click()
    expect(page.locator(".flash")).to_contain_text("Impression 3D à filament")
    expect(page.locator(".machines")).to_contain_text("250 × 210 × 210 mm")
    page.locator("#capacites").get_by_label("Modèle").select_option("door-opener")
    page.get_by_label("Unités par jour").fill("12")
    page.get_by_role("button", name="Déclarer").click()
    expect(page.locator("#capacites")).to_contain_text("Ouvre-porte sans contact : 12 par jour")
    me.shot("atelier")

    # An invited workshop answers a request: why it was chosen, the quote form, production.
    _vannes, vannes = world.orgs["vannes"]
    request = _request(world, vannes, "face-visor", 60, "56121", min_quotes=1)
    lorient_shop, lorient = world.shops["La Fabrique de Lorient"]
    me2 = person("fabrique-lorient")
    page = me2.sign_in(lorient)
    card = page.locator("li.invitation", has_text="à livrer à Lorient")
    card.locator("summary").click()
    expect(card).to_contain_text("à 0 km")
    me2.shot("invitations")
    card.get_by_role("link", name="Visière de protection").click()
    page.get_by_label("Prix unitaire").fill("gratuit")
    page.get_by_label("Date de livraison promise").fill((datetime.now(UTC).date() - timedelta(days=2)).isoformat())
    page.get_by_role("button", name="Envoyer le devis").click()
    assert "nombre positif" in field_error(page, "f-prix")
    assert "passée" in field_error(page, "f-livraison")
    page.get_by_label("Prix unitaire").fill("2,80")
    page.get_by_label("Quantité proposée").fill("70")
    page.get_by_label("Date de livraison promise").fill(SOON)
    page.get_by_label("Note pour l'acheteur").fill("Livraison en deux fois possible.")
    page.get_by_role("button", name="Envoyer le devis").click()
    assert "70" in field_error(page, "f-quantite") and "60" in field_error(page, "f-quantite")  # the service's rule
    expect(page.get_by_label("Prix unitaire")).to_have_value("2,80")
    expect(page.get_by_label("Note pour l'acheteur")).to_have_value("Livraison en deux fois possible.")
    assert_accessible_form(page)
    me2.shot("devis-erreur-service")
    page.get_by_label("Quantité proposée").fill("60")
    page.get_by_role("button", name="Envoyer le devis").click()
    expect(page.locator(".flash")).to_contain_text("Devis envoyé")
    quote = next(q for q in api(world, "GET", f"/v1/requests/{request['id']}/quotes", vannes)["items"]
                 if q["quote"]["workshop_id"] == lorient_shop["id"])
    assert quote["quote"]["total_eur_ttc"] == "201.60"  # 60 × 2,80 € HT + 20 % (the form's default rate)
    order = api(world, "POST", f"/v1/requests/{request['id']}/award", vannes,
                {"quote_ids": [quote["quote"]["id"]]}, status=201)["orders"][0]

    page = me2.go(f"/app/commandes/{order['id']}")
    for step, status in (("Confirmer la commande", "Confirmée par l'atelier"), ("Lancer la production", "En production")):
        page.get_by_role("button", name=step).click()
        expect(page.locator(".page-head .badge")).to_have_text(status)
    page.get_by_label("Unités fabriquées à ce jour").fill("999")
    page.get_by_role("button", name="Enregistrer l'avancement").click()
    assert "999" in field_error(page, "f-unites")
    page.get_by_label("Unités fabriquées à ce jour").fill("60")
    page.get_by_role("button", name="Enregistrer l'avancement").click()
    expect(page.locator(".flash")).to_contain_text("60 sur 60")
    page.get_by_role("button", name="Marquer comme prête").click()
    page.get_by_role("button", name="Marquer comme expédiée").click()
    assert "référence de suivi" in field_error(page, "f-suivi").lower() or "obligatoire" in field_error(page, "f-suivi")
    page.get_by_label("Référence de suivi").fill("DB Schenker 1Z-4471")
    page.get_by_role("button", name="Marquer comme expédiée").click()
    expect(page.locator(".page-head .badge")).to_have_text("Expédiée")
    expect(page.locator(".timeline li")).to_have_count(6)  # awarded, confirmed, in production, 60 units, ready, shipped
    me2.shot("commande-expediee")


async def _join(world: Any, name: str, insee: str) -> None:
    async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
        world.shops[name] = await make_workshop(client, world.admin, name=name, commune_insee=insee,
                                                machines=FAB_LAB, capacities={"face-visor": 40})


def kpi(page: Any, label: str) -> Any:
    return page.locator(".kpis li", has_text=label).locator(".kpi-value")


def test_coordinator_calls_makers_commit_and_the_dashboard_follows(person, world):
    _pref, coordinator = world.orgs["prefecture"]
    boss = person("coordination")
    page = boss.sign_in(coordinator)
    expect(page.get_by_role("heading", name="Appels de crise")).to_be_visible()
    page.get_by_role("link", name="Nouvel appel").first.click()
    page.locator("#f-label_1").fill("CHU de Saint-Brieuc, Yves Le Foll")
    page.locator("#f-commune_1").fill("22278")
    page.locator("#f-quantite_1").fill("mille")
    page.locator("#f-label_2").fill("EHPAD de Lannion")
    page.locator("#f-commune_2").fill("Atlantide")
    page.locator("#f-quantite_2").fill("150")
    page.get_by_role("button", name="Lancer l'appel").click()
    assert "Choisissez" in field_error(page, "f-article")
    assert "nombre entier" in field_error(page, "f-quantite_1")
    assert "Aucune commune" in field_error(page, "f-commune_2")
    expect(page.locator("#f-label_1")).to_have_value("CHU de Saint-Brieuc, Yves Le Foll")
    assert_accessible_form(page)
    boss.shot("appel-erreurs")
    page.get_by_label("Objet à fabriquer").select_option("face-visor")
    page.locator("#f-quantite_1").fill("300")
    page.locator("#f-priorite_1").select_option("1")
    page.locator("#f-commune_2").fill("22300 Lannion")
    page.locator("#f-priorite_2").select_option("2")
    page.locator("#f-label_3").fill("Pharmacie de Guingamp")
    page.locator("#f-commune_3").fill("22070")
    page.locator("#f-quantite_3").fill("80")
    page.get_by_role("button", name="Lancer l'appel").click()
    expect(page.locator(".flash")).to_contain_text("Appel lancé")
    expect(kpi(page, "demandées")).to_have_text("530")
    expect(page.locator("svg.map rect")).to_have_count(3)
    assert page.locator("svg.map circle").count() >= 2
    backdrop = page.locator("svg.map image").get_attribute("href")
    land = page.request.get(world.url + backdrop)
    assert land.ok and land.headers["content-type"].startswith("image/svg+xml") and land.text().count("a") > 100
    expect(kpi(page, "acceptées")).to_have_text("0")
    boss.shot("tableau-de-bord")

    # Makers answer in their own browsers while the coordinator's page stays open.
    brieuc = person("bocal-saint-brieuc")
    p2 = brieuc.sign_in(world.shops["Le Bocal, Saint-Brieuc"][1])
    p2 = brieuc.go("/app/engagements")
    card = p2.locator("li.card", has=p2.get_by_role("button", name=re.compile("^Accepter"))).first
    units = int(re.search(r"— ([\d\u202f]+) unités", card.locator("h2").inner_text()).group(1).replace("\u202f", ""))
    card_id = card.get_attribute("id")
    uid = "c" + card_id.removeprefix("engagement-")[:8] + "-"
    card.get_by_role("button", name=re.compile("^Accepter")).click()
    expect(p2.locator(".flash")).to_contain_text("Engagement accepté")
    accepted = p2.locator(f"#{card_id}")
    accepted.get_by_label("Fabriquées à ce jour").fill(str(units + 1))
    accepted.get_by_role("button", name="Déclarer l'avancement").click()
    assert str(units + 1) in field_error(p2, f"f-{uid}produites")
    expect(p2.locator(f"#f-{uid}produites")).to_have_value(str(units + 1))
    p2.locator(f"#f-{uid}produites").fill(str(units))
    p2.locator(f"#f-{uid}livrees").fill("10")
    p2.locator(f"#{card_id}").get_by_role("button", name="Déclarer l'avancement").click()
    expect(p2.locator(".flash")).to_contain_text(f"{units} fabriquées, 10 livrées")
    brieuc.shot("engagements")

    # A workshop joins with spare capacity, so the rebalance after the decline has somewhere to go.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(_join(world, "Fab lab de Saint-Malo", "35288"))).result()

    lannion = person("fablab-lannion")
    p3 = lannion.sign_in(world.shops["Fab lab de Lannion"][1])
    p3 = lannion.go("/app/engagements")
    proposal = p3.locator("li.card", has=p3.get_by_role("button", name=re.compile("^Accepter"))).first
    card_id = proposal.get_attribute("id")
    uid = "c" + card_id.removeprefix("engagement-")[:8] + "-"
    proposal.locator("summary", has_text="Décliner").click()
    proposal.get_by_role("button", name="Décliner").click()
    assert "obligatoire" in field_error(p3, f"f-{uid}motif")
    proposal = p3.locator(f"#{card_id}")
    proposal.get_by_label("Motif").fill("Imprimantes mobilisées par l'hôpital de Lannion cette semaine.")
    proposal.get_by_role("button", name="Décliner").click()
    expect(p3.locator(".flash")).to_contain_text("Engagement décliné")

    # The dashboard refreshes by itself: the acceptance, the production and the rebalance appear.
    expect(kpi(page, "acceptées")).to_have_text(re.compile(r"^[1-9]"), timeout=20_000)
    expect(kpi(page, "livrées")).to_have_text("10", timeout=20_000)
    expect(page.locator("#tableau")).to_contain_text("Après un refus", timeout=20_000)
    assert "/nouvel-appel" not in page.url  # never reloaded by navigation
    boss.shot("tableau-de-bord-apres")

    # A new delivery point mid-crisis.
    page.locator("#ajout summary").click()
    page.locator("#f-label_1").fill("Centre hospitalier de Paimpol")
    page.locator("#f-commune_1").fill("22162")
    page.locator("#f-quantite_1").fill("-60")
    page.get_by_role("button", name="Ajouter et répartir").click()
    assert "nombre entier" in field_error(page, "f-quantite_1") or "entre 1" in field_error(page, "f-quantite_1")
    expect(page.locator("#f-label_1")).to_have_value("Centre hospitalier de Paimpol")
    page.locator("#f-quantite_1").fill("60")
    page.get_by_role("button", name="Ajouter et répartir").click()
    expect(page.locator(".flash")).to_contain_text("1 point(s) de livraison ajouté(s)")
    expect(kpi(page, "demandées")).to_have_text("590")
    expect(page.locator("svg.map rect")).to_have_count(4)


def test_admin_organisations_keys_verification_and_audit(person, world):
    admin = person("administration")
    page = admin.sign_in(world.admin)
    expect(page.get_by_role("heading", name="Organisations")).to_be_visible()
    page.get_by_label("Type").select_option("collectivite")
    page.locator("#f-nom").fill("Commune de Paimpol")
    page.get_by_label("SIRET").fill("2122016200001")
    page.get_by_label("Commune du siège").fill("22500")
    page.get_by_role("button", name="Créer l'organisation").click()
    assert "14 chiffres" in field_error(page, "f-siret")
    assert "désigne 2 communes" in field_error(page, "f-commune")  # 22500: Paimpol, Kerfot
    expect(page.locator("#f-nom")).to_have_value("Commune de Paimpol")
    assert_accessible_form(page)
    admin.shot("organisation-erreurs")
    taken = world.orgs["lannion"][0]["siret"]
    page.get_by_label("SIRET").fill(taken)
    page.get_by_label("Commune du siège").fill("22500 Paimpol")
    page.get_by_role("button", name="Créer l'organisation").click()
    assert "existe déjà" in field_error(page, "f-siret")  # the unique constraint, next to its field
    page.get_by_label("SIRET").fill(make_siret())
    page.get_by_role("button", name="Créer l'organisation").click()
    expect(page.locator(".flash")).to_contain_text("Organisation créée : Commune de Paimpol")

    page.get_by_label("Rôle").select_option("buyer")
    page.get_by_label("Libellé").fill("service achats")
    page.get_by_role("button", name="Créer la clé").click()
    key = page.locator("#nouvelle-cle").input_value()
    assert key.startswith("fab_")
    admin.shot("cle-creee")

    # The new key signs in elsewhere; revoking it ends that session at its next page.
    paimpol = person("paimpol")
    p2 = paimpol.sign_in(key)
    expect(p2.locator(".who-name")).to_have_text("Commune de Paimpol")
    page.reload()
    assert page.locator("#nouvelle-cle").count() == 0  # shown once only
    assert len(api(world, "GET", f"/v1/organizations/{p2_org_id(world, key)}/api-keys", world.admin)["items"]) == 1
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("^Révoquer")).click()
    expect(page.locator(".flash")).to_contain_text("révoquée")
    p2.reload()
    expect(p2).to_have_url(re.compile(r"/app/connexion\?motif=revoquee"))
    expect(p2.locator(".notice")).to_contain_text("révoquée")
    paimpol.shot("session-revoquee")

    # Verification: a workshop's declared label becomes trusted.
    org, maker = asyncio_free_workshop(world)
    page = admin.go("/app/admin/ateliers")
    card = page.locator("li.card", has_text=org["name"])
    card.get_by_label("Label Fab lab").check()
    card.get_by_role("button", name=re.compile("Enregistrer la vérification")).click()
    expect(page.locator(".flash")).to_contain_text(f"Vérification enregistrée pour {org['name']}")
    assert api(world, "GET", "/v1/workshops/me", maker)["verified_labels"] == ["fablab"]
    admin.shot("ateliers")

    page = admin.go("/app/admin/journal")
    expect(page.locator("table.audit")).to_contain_text("a créé")  # sentences, never routes (issue 21)
    admin.shot("journal")


def p2_org_id(world: Any, key: str) -> str:
    return api(world, "GET", "/v1/organizations", key)["items"][0]["id"]


def asyncio_free_workshop(world: Any) -> tuple[dict[str, Any], str]:
    """A manufacture with a declared, unverified label (made through the API)."""
    with world.api() as client:
        org = client.post("/v1/organizations", headers=bearer(world.admin), json={
            "kind": "manufacture", "name": "Recyclerie de Morlaix", "siret": make_siret(), "commune_insee": "29151"})
        assert org.status_code == 201, org.text
        key = client.post(f"/v1/organizations/{org.json()['id']}/api-keys", headers=bearer(world.admin),
                          json={"role": "maker", "label": "atelier"}).json()["key"]
        profile = client.put("/v1/workshops/me", headers=bearer(key), json={
            "commune_insee": "29151", "delivery_radius_km": 60, "labels": ["fablab"], "trades": ["reemploi"]})
        assert profile.status_code == 200, profile.text
    return org.json(), key


def test_no_page_shows_another_tenants_objects(person, world):
    _lannion, lannion = world.orgs["lannion"]
    _vannes, vannes = world.orgs["vannes"]
    stand = _request(world, lannion, "monitor-stand", 6, "22113", min_quotes=1)
    invited = [m["workshop_id"] for m in wait_matched(world, stand["id"], lannion)["included"] if m["invited"]]
    wood = maker_key(world, invited[0])
    quote = api(world, "POST", f"/v1/requests/{stand['id']}/quotes", wood,
                {"unit_price_eur_ht": "89.00", "vat_rate": "20", "quantity": 6, "delivery_date": SOON}, status=201)
    order = api(world, "POST", f"/v1/requests/{stand['id']}/award", lannion, {"quote_ids": [quote["id"]]},
                status=201)["orders"][0]
    invitation = next(i for i in api(world, "GET", "/v1/invitations", wood)["items"] if i["request_id"] == stand["id"])
    call = api(world, "POST", "/v1/crisis-calls", world.orgs["prefecture"][1], {
        "item": "door-opener", "deadline": (datetime.now(UTC) + timedelta(days=9)).isoformat(), "priority": 3,
        "delivery_points": [{"label": "Mairie de Guingamp", "commune_insee": "22070", "quantity": 40, "priority": 3}]},
        status=201)

    other_buyer = person("intrus-acheteur")
    page = other_buyer.sign_in(vannes)
    for path in (f"/app/demandes/{stand['id']}", f"/app/commandes/{order['id']}",
                 f"/app/commandes/{order['id']}/documents/order-x"):
        response = page.goto(world.url + path)
        assert response.status == 404, path
        expect(page.get_by_role("heading", name="Introuvable")).to_be_visible()
        assert "Réhausse" not in page.content() and order["number"] not in page.content()
    other_buyer.shot("introuvable")
    response = page.goto(world.url + "/app/admin/organisations")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Page réservée")).to_be_visible()
    page = other_buyer.go("/app/commandes")
    assert order["number"] not in page.content()

    other_maker = person("intrus-atelier")
    page = other_maker.sign_in(world.shops["Fab lab de Vannes"][1])
    for path in (f"/app/invitations/{invitation['id']}", f"/app/commandes/{order['id']}"):
        assert page.goto(world.url + path).status == 404, path
    other_coordinator = person("intrus-coordination")
    page = other_coordinator.sign_in(world.orgs["ars"][1])
    assert page.goto(world.url + f"/app/crises/{call['id']}").status == 404
    assert page.goto(world.url + f"/app/crises/{call['id']}/tableau").status == 404
    page = other_coordinator.go("/app/crises")
    assert "Ouvre-porte" not in page.content()


def test_forged_forms_and_closed_sessions_are_refused(person, world):
    _lannion, lannion = world.orgs["lannion"]
    mine = _request(world, lannion, "door-opener", 30, "22113")
    buyer = person("securite")
    page = buyer.sign_in(lannion)
    cookies = buyer.context.cookies()
    session = next(c for c in cookies if c["name"] == "broker_session")
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
    # A post without the session's CSRF token (as another site would send it) changes nothing.
    forged = buyer.context.request.post(world.url + f"/app/demandes/{mine['id']}/annulation",
                                         form={"_csrf": "not-the-token"}, max_redirects=0)
    assert forged.status == 403 and "Formulaire expiré" in forged.text()
    assert api(world, "GET", f"/v1/requests/{mine['id']}", lannion)["status"] == "open"

    # Signing out closes the session on the server: the old cookie no longer opens a page.
    page = buyer.go("/app/demandes")
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.locator(".notice")).to_contain_text("déconnecté")
    replay = person("cookie-rejoue")
    replay.context.add_cookies([session])
    page = replay.go("/app/demandes")
    expect(page).to_have_url(re.compile(r"/app/connexion\?motif=deconnecte"))
    # An unknown key is refused with the reason next to the field.
    page.get_by_label("Clé d'API").fill("fab_000000000000_pas-une-vraie-cle-du-tout")
    page.get_by_role("button", name="Se connecter").click()
    assert "inconnue ou révoquée" in field_error(page, "f-cle")
    replay.shot("connexion-refusee")


def test_pages_fit_a_phone(person, world):
    _lannion, lannion = world.orgs["lannion"]
    phone = person("telephone", phone=True)
    page = phone.sign_in(lannion)
    page.keyboard.press("Tab")  # the first stop skips the menu
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "contenu"
    for path, label in (("/app/catalogue", "catalogue"), ("/app/demandes/nouvelle?article=uns1-mask", "demande"),
                        ("/app/commandes", "commandes")):
        page = phone.go(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)  # nothing wider than the phone (tables scroll inside their box)
        phone.shot(label)
    call = api(world, "POST", "/v1/crisis-calls", world.orgs["prefecture"][1], {
        "item": "face-visor", "deadline": (datetime.now(UTC) + timedelta(days=8)).isoformat(), "priority": 2,
        "delivery_points": [{"label": "Centre hospitalier de Paimpol", "commune_insee": "22162", "quantity": 90,
                             "priority": 1}]}, status=201)
    coordinator = person("telephone-coordination", phone=True)
    coordinator.sign_in(world.orgs["prefecture"][1])
    page = coordinator.go(f"/app/crises/{call['id']}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    coordinator.shot("tableau-de-bord")
