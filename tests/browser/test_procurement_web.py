"""Public procurement in the browser (issue 17): the procedure shown live as the buyer types the
estimate, the server's refusals explained next to their field, the award rules that ask for a
justification in place, the award record as PDF, and the open consultations a maker may answer.

Its own broker, where matching invites one workshop only: the other eligible workshops of a MAPA
answer through the open consultation."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, tenant
from playwright.sync_api import expect
from support_server import RunningBroker, running_broker

SHOPS = [  # name, INSEE, machines, declared visor capacity per day
    ("Fab lab de Lannion", "22113", FAB_LAB, 25),
    ("Le Bocal, Saint-Brieuc", "22278", FAB_LAB, 30),
    ("Fab lab de Vannes", "56260", FAB_LAB, 20),
    ("Menuiserie du Pays de Rennes", "35238", WOOD_SHOP, None),
]
SOON = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()


class World:
    """Who is who in this module's broker (the shape of conftest's: the ``person`` fixture uses it)."""

    def __init__(self, broker: RunningBroker) -> None:
        self.broker = broker
        self.url = broker.url
        self.admin = broker.admin_key
        self.shops: dict[str, tuple[dict[str, Any], str]] = {}
        self.orgs: dict[str, tuple[dict[str, Any], str]] = {}

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


async def _populate(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
        for name, insee, machines, visors in SHOPS:
            world.shops[name] = await make_workshop(
                client, world.admin, name=name, commune_insee=insee, machines=machines,
                capacities={"face-visor": visors} if visors else None)
        for key, insee, name in [("live", "22113", "Commune de Perros-Guirec"),
                                 ("award", "22113", "Lannion-Trégor Communauté"),
                                 ("mapa", "22113", "Commune de Trégastel")]:
            world.orgs[key] = await tenant(client, world.admin, "collectivite", "buyer", name=name,
                                           commune_insee=insee)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_broker(tmp_path_factory.mktemp("achats"), BROKER_MATCHING_INVITATIONS="1") as broker:
        w = World(broker)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(_populate(w))).result()
        yield w


def api(world: World, method: str, path: str, key: str, body: Any = None, status: int = 200) -> Any:
    headers = {**bearer(key), "Idempotency-Key": str(uuid.uuid4())}
    with world.api() as client:
        response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, (path, response.text)
    return response.json() if response.content else None


def wait_matched(world: World, request_id: str, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        matches = api(world, "GET", f"/v1/requests/{request_id}/matches", key)
        if matches["state"] == "done":
            return dict(matches)
        time.sleep(0.2)
    raise AssertionError("matching did not finish")


def field_error(page: Any, field_id: str) -> str:
    """The message tied to a field by aria-describedby (what a screen reader reads with it)."""
    assert page.locator(f"#{field_id}").count() == 1, page.content()[:1500]
    described = page.locator(f"#{field_id}").get_attribute("aria-describedby") or ""
    ids = [i for i in described.split() if i.startswith("e-")]
    assert ids, f"no error is attached to #{field_id}"
    return str(page.locator(f"#{ids[0]}").inner_text())


def shop(world: World, name: str) -> tuple[dict[str, Any], str]:
    return world.shops[name]


def test_the_procedure_shows_live_and_the_refusals_sit_next_to_their_field(person, world):
    _org, buyer = world.orgs["live"]
    me = person("achats-procedure")
    page = me.sign_in(buyer)
    page = me.go("/app/demandes/nouvelle?article=face-visor")
    expect(page.get_by_label("Code CPV")).to_have_value("18142000-6")  # the item's default CPV
    panel = page.locator("#procedure")
    expect(panel).to_contain_text("Saisissez la valeur estimée")
    expect(panel).to_contain_text("Trois devis")
    expect(panel).to_contain_text("pas une obligation légale sous le seuil de l'article R.2122-8")
    publicity = page.locator("#champ-reference-publicite")
    expect(publicity).to_be_hidden()

    estimate = page.get_by_label("Valeur estimée du besoin")
    estimate.fill("30 000")
    expect(panel).to_contain_text("Marché sans publicité ni mise en concurrence préalables")
    expect(panel).to_contain_text("Visières de sécurité")  # the CPV's French label
    expect(panel).to_contain_text("article R.2122-8")
    expect(publicity).to_be_hidden()
    estimate.fill("75000")
    expect(panel).to_contain_text("Procédure adaptée (MAPA)")
    expect(panel).to_contain_text("7\u00a0jours")
    expect(publicity).to_be_hidden()
    estimate.fill("95000")
    expect(panel).to_contain_text("Procédure adaptée avec avis de publicité")
    expect(publicity).to_be_visible()  # shown as soon as the procedure needs it
    me.shot("procedure-publicite")
    estimate.fill("250000")
    expect(panel).to_contain_text("Procédure formalisée")
    expect(panel).to_contain_text("216\u202f000,00\u202f€")  # the EU threshold of 2026–2027
    # The model decides the CPV while the buyer has not typed another; a wrong check digit is said.
    page.get_by_label("Modèle du catalogue").select_option("monitor-stand")
    expect(page.get_by_label("Code CPV")).to_have_value("39130000-2")
    expect(panel).to_contain_text("Mobilier de bureau")
    page.get_by_label("Code CPV").fill("39130000-3")
    expect(panel).to_contain_text("Chiffre de contrôle erroné")

    # Posted: each refusal of the server next to its field (without JS, the same messages).
    page.get_by_label("Code CPV").fill("39130000-2")
    page.get_by_label("Quantité").fill("12")
    page.get_by_role("button", name="Publier la demande").click()
    assert "procédure formalisée" in field_error(page, "f-estimation")
    me.shot("procedure-formalisee")
    page.get_by_label("Valeur estimée du besoin").fill("75000")
    page.get_by_role("button", name="Publier la demande").click()
    assert "168" in field_error(page, "f-consultation_heures")
    expect(page.locator("#procedure")).to_contain_text("Procédure adaptée (MAPA)")  # rendered by the server too
    page.get_by_label("Durée de la consultation").fill("168")
    page.get_by_label("Valeur estimée du besoin").fill("95000")
    page.get_by_role("button", name="Publier la demande").click()
    assert "BOAMP" in field_error(page, "f-reference_publicite")
    expect(page.locator("#champ-reference-publicite")).to_be_visible()
    page.get_by_label("Référence de l'avis de publicité").fill("BOAMP 26-184512")
    page.get_by_role("button", name="Publier la demande").click()
    expect(page.locator(".flash")).to_contain_text("Demande publiée")
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("Procédure adaptée avec avis de publicité")
    expect(facts).to_contain_text("95\u202f000,00\u202f€ HT")
    expect(facts).to_contain_text("Mobilier de bureau")
    expect(facts).to_contain_text("BOAMP 26-184512")
    me.shot("demande-mapa-publicite")

    # The year's open estimates count: 95 000 € already open, 30 000 € more reaches the MAPA.
    page = me.go("/app/demandes/nouvelle?article=monitor-stand")
    page.get_by_label("Valeur estimée du besoin").fill("30000")
    expect(page.locator("#procedure")).to_contain_text("Procédure adaptée avec avis de publicité")
    expect(page.locator("#procedure")).to_contain_text("Besoin cumulé")
    expect(page.locator("#procedure .notice")).to_contain_text("R.2121-1")


def _quoted_request(world: World, buyer: str, *, prices: list[tuple[str, str]], **extra: Any) -> str:
    """A visor request without publicity, quoted by the named workshops at their price."""
    body = {"item": "face-visor", "quantity": 60, "deadline": (datetime.now(UTC) + timedelta(days=40)).isoformat(),
            "delivery": {"commune_insee": "22113", "address": "Hôtel de ville"}, "budget_eur_ht": "900",
            "min_quotes": 1, "procurement": {"buyer_siret": make_siret()}, **extra}
    created = api(world, "POST", "/v1/requests", buyer, body, status=201)
    wait_matched(world, created["id"], buyer)
    for name, price in prices:
        workshop, key = shop(world, name)
        invited = {i["request_id"] for i in api(world, "GET", "/v1/invitations", key)["items"]}
        if created["id"] not in invited:
            api(world, "POST", f"/v1/requests/{created['id']}/invitations", buyer, {"workshop_id": workshop["id"]},
                status=201)
        api(world, "POST", f"/v1/requests/{created['id']}/quotes", key,
            {"unit_price_eur_ht": price, "vat_rate": "5.5", "quantity": 60, "delivery_date": SOON}, status=201)
    return str(created["id"])


def test_an_award_rule_asks_for_the_justification_in_place_and_the_record_downloads(person, world):
    _org, buyer = world.orgs["award"]
    request_id = _quoted_request(world, buyer, prices=[("Fab lab de Lannion", "3.10"),
                                                       ("Le Bocal, Saint-Brieuc", "2.80")])
    me = person("achats-attribution")
    me.sign_in(buyer)
    page = me.go(f"/app/demandes/{request_id}")
    expect(page.locator("article.quote")).to_have_count(2)
    expect(page.locator("article.quote.best")).to_contain_text("Le Bocal")
    expect(page.locator("article.quote .badge-valid")).to_have_count(2)
    # The dearer quote: the rule fires, the page says which and asks for the justification there.
    page.get_by_label(re.compile("Retenir ce devis de Fab lab de Lannion")).check()
    page.get_by_role("button", name="Attribuer").click()
    rule = page.locator(".rule-fired")
    expect(rule).to_contain_text("moins-disant")
    expect(rule).to_contain_text("Le Bocal")  # the cheapest valid quote, with its total
    expect(rule).to_contain_text("177,24")  # 60 × 2,80 € HT + 5,5 % TVA
    assert field_error(page, "f-justification")
    expect(page.get_by_label(re.compile("Retenir ce devis de Fab lab de Lannion"))).to_be_checked()
    me.shot("regle-moins-disant")
    page.get_by_label("Justification de l'attribution").fill(
        "Atelier de la commune : livraison à pied, pas de transport à payer.")
    page.get_by_role("button", name="Attribuer").click()
    expect(page.locator(".flash")).to_contain_text("Attribution enregistrée")
    expect(page.locator("dl.facts").first).to_contain_text("livraison à pied")
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger la note de choix (PDF)").click()
    assert download.value.path().read_bytes().startswith(b"%PDF")
    me.shot("note-de-choix")


def test_a_maker_answers_an_open_consultation_it_was_not_invited_to(person, world):
    _org, buyer = world.orgs["mapa"]
    body = {"item": "face-visor", "quantity": 60, "deadline": (datetime.now(UTC) + timedelta(days=40)).isoformat(),
            "delivery": {"commune_insee": "22113", "address": "Mairie"}, "quote_window_hours": 168,
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "75000"}}
    created = api(world, "POST", "/v1/requests", buyer, body, status=201)
    assert created["procurement"]["procedure"] == "mapa"
    matches = wait_matched(world, created["id"], buyer)
    invited = {m["workshop_id"] for m in matches["included"] if m["invited"]}
    others = [name for name, _i, machines, _c in SHOPS
              if machines is FAB_LAB and shop(world, name)[0]["id"] not in invited]
    assert others, matches
    me = person("achats-consultation")
    me.sign_in(shop(world, others[0])[1])
    page = me.go("/app/invitations")
    page.get_by_role("link", name="Consultations ouvertes").click()
    expect(page.get_by_role("heading", name="Consultations ouvertes")).to_be_visible()
    card = page.locator("li.consultation", has_text=created["name"])
    expect(card).to_contain_text("Procédure adaptée (MAPA)")
    me.shot("consultations")
    card.get_by_role("link").click()
    page.get_by_label("Prix unitaire").fill("2,95")
    page.get_by_role("button", name="Envoyer le devis").click()
    expect(page.locator(".flash")).to_contain_text("Devis envoyé")
    quotes = api(world, "GET", f"/v1/requests/{created['id']}/quotes", buyer)["items"]
    assert [q["quote"]["unit_price_eur_ht"] for q in quotes] == ["2.95"]
    # A workshop that cannot make the item does not see the consultation (it sees the monitor
    # stands' of the first test, which its machines can make), nor can it open it.
    joiner = person("achats-menuiserie")
    joiner.sign_in(shop(world, "Menuiserie du Pays de Rennes")[1])
    page = joiner.go("/app/consultations")
    expect(page.get_by_role("heading", name="Consultations ouvertes")).to_be_visible()
    expect(page.locator("li.consultation", has_text=created["name"])).to_have_count(0)
    page = joiner.go(f"/app/consultations/{created['id']}")
    expect(page.get_by_role("heading", name="Introuvable")).to_be_visible()
