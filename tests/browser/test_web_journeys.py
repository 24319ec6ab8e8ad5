"""Each role's main journey in a real browser against a real broker, with screenshots; bad input
keeps what was typed and says what is wrong next to the field; no page shows another tenant's
objects; revoked keys, signed-out sessions and forged forms are refused."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from factories import bearer, make_siret

SOON = (date.today() + timedelta(days=30)).isoformat()


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


def field_error(page: Any, field_id: str) -> str:
    """The message tied to a field by aria-describedby (what a screen reader reads with it)."""
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
    assert "Lannion (code postal, INSEE 22113)" in field_error(page, "f-commune")
    assert "clé de contrôle" in field_error(page, "f-siret")
    assert "décimales" in field_error(page, "f-budget")
    expect(page.get_by_label("Quantité")).to_have_value("deux cents")
    expect(page.get_by_label("Adresse de livraison")).to_have_value("Mairie, place du Général Leclerc")
    expect(page.locator("#f-article")).to_have_value("face-visor")
    me.shot("demande-erreurs")

    page.get_by_label("Quantité").fill("240")
    page.get_by_label("Commune de livraison").fill("22300 Lannion")
    page.get_by_label("SIRET de l'acheteur").fill(buyer_org["siret"])
    page.get_by_label("Budget maximal").fill("1 200")
    page.get_by_label("Date limite de livraison").fill((date.today() + timedelta(days=45)).isoformat())
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
