"""Issue 21 item 2 on the pages (in-process, signed in by session cookie): where each invitation stands,
as its maker and as the buyer see it, step by step on one request with four invited workshops: one
quotes and wins; one declines with a reason, which the buyer reads; one quotes, withdraws, quotes
again and loses; one never answers. « Devis reçus (n) » counts the quotes compared below it, never a
withdrawn one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import WOOD_SHOP, bearer, make_siret, make_workshop, tenant
from support_web import Browser, signed_in, visible

NBSP = "\u00a0"
DELIVERY = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
REASON = "Plan de charge complet jusqu'en mars."
ITEM = "Bureau d'accueil France Services"


class Maker:
    """A maker's browser on its one invitation of the request."""

    def __init__(self, browser: Browser, name: str) -> None:
        self.browser, self.name, self.invitation = browser, name, ""

    async def listed(self) -> str:
        """The status on the invitations list (the badge right after the request's line)."""
        page = visible(await self.browser.get("/app/invitations"))
        found = re.search(rf"{ITEM} \d+ unités pour le .*?km\)\. (.+?) (?:Réponse attendue|L'acheteur|Pourquoi)",
                          page)
        assert found, page
        return found.group(1)

    async def shown(self) -> str:
        """The status at the head of the invitation's page."""
        page = visible(await self.browser.get(f"/app/invitations/{self.invitation}"))
        found = re.search(rf"Invitations › {ITEM} (.+?) La demande ", page)
        assert found, page
        return found.group(1)

    async def both(self) -> str:
        listed, shown = await self.listed(), await self.shown()
        assert listed == shown, (self.name, listed, shown)
        return listed

    async def quote(self, unit_price: str) -> str:
        await self.browser.get(f"/app/invitations/{self.invitation}")
        await self.browser.post(f"/app/invitations/{self.invitation}/devis", {
            "prix": unit_price, "tva": "20", "quantite": "6", "livraison": DELIVERY})
        page = await self.browser.get(f"/app/invitations/{self.invitation}")
        assert "Devis envoyé à l'acheteur." in visible(page)
        return re.findall(r'action="/app/devis/([^/]+)/retrait"', page)[-1]


async def buyer_sees(buyer: Browser, request_id: str) -> tuple[dict[str, str], str]:
    """Each invited workshop's status on the buyer's request page, and the page's text."""
    text = visible(await buyer.get(f"/app/demandes/{request_id}"))
    section = text.split("Invités à chiffrer", 1)[1]
    states = {name: re.search(rf"{name} (Invité|Devis reçu|A décliné|Retenu|Non retenu|Sans réponse)",
                              section).group(1) for name in NAMES}
    return states, text


NAMES = ("Menuiserie Alpha", "Atelier Bravo", "Ébénisterie Charlie", "Fabrique Delta")


async def world(client: Any, admin_key: str) -> tuple[str, dict[str, Maker], Browser]:
    makers = {}
    for name in NAMES:
        _shop, key = await make_workshop(client, admin_key, name=name, commune_insee="35238", machines=WOOD_SHOP,
                                         capacities={"france-services-desk": 50})
        makers[name] = Maker(Browser(client, await signed_in(client, key)), name)
    _org, buyer_key = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Vitré",
                                   commune_insee="35360")
    body = {"item": "france-services-desk", "quantity": 6, "min_quotes": 2,
            "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "delivery": {"commune_insee": "35360", "address": "Maison France Services, 2 rue de la Mairie"},
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "1.00"}}
    made = await client.post("/v1/requests", json=body,
                             headers={**bearer(buyer_key), "Idempotency-Key": str(uuid.uuid4())})
    assert made.status_code == 201, made.text
    for maker in makers.values():
        page = await maker.browser.get("/app/invitations")
        maker.invitation = re.search(r'href="/app/invitations/([^"]+)"', page).group(1)
    return made.json()["id"], makers, Browser(client, await signed_in(client, buyer_key))


async def test_each_party_sees_where_each_invitation_stands(client, admin_key):
    request_id, makers, buyer = await world(client, admin_key)
    alpha, bravo, charlie, delta = (makers[n] for n in NAMES)

    # Invited: every maker has to answer; the buyer sees four workshops invited and no quote.
    for maker in makers.values():
        assert await maker.both() == "À répondre"
    states, text = await buyer_sees(buyer, request_id)
    assert states == dict.fromkeys(NAMES, "Invité")
    assert "Devis reçus (0)" in text and "Invités à chiffrer (4)" in text

    # Alpha quotes: its invitation is no longer « à répondre », the buyer has one quote.
    await alpha.quote("1100.00")
    assert await alpha.both() == "Devis envoyé"
    states, text = await buyer_sees(buyer, request_id)
    assert states[alpha.name] == "Devis reçu" and states[bravo.name] == "Invité"
    assert "Devis reçus (1)" in text

    # Bravo declines with a reason: the buyer reads it.
    await bravo.browser.get(f"/app/invitations/{bravo.invitation}")
    await bravo.browser.post(f"/app/invitations/{bravo.invitation}/refus", {"motif": REASON})
    assert await bravo.both() == "Déclinée"
    states, text = await buyer_sees(buyer, request_id)
    assert states[bravo.name] == "A décliné"
    assert f"{bravo.name} A décliné" in text and f"Motif{NBSP}: « {REASON} »" in text

    # Charlie quotes, then withdraws: the heading counts the one quote compared, and says who withdrew.
    withdrawn = await charlie.quote("1300.00")
    states, text = await buyer_sees(buyer, request_id)
    assert states[charlie.name] == "Devis reçu" and "Devis reçus (2)" in text
    await charlie.browser.post(f"/app/devis/{withdrawn}/retrait",
                               {"retour": f"/app/invitations/{charlie.invitation}"})
    assert await charlie.both() == "À répondre"  # it may quote again
    states, text = await buyer_sees(buyer, request_id)
    assert states[charlie.name] == "Invité" and f"{charlie.name} Invité (1 devis retiré)" in text
    assert "Devis reçus (1)" in text
    assert f"Devis retiré par son atelier, hors comparaison{NBSP}: {charlie.name}." in text
    compared = text.split("Devis reçus (1)", 1)[1].split("Commandes", 1)[0].split("Ateliers sollicités", 1)[0]
    assert compared.count("Total TTC") == 1 and "Retiré" not in compared

    # … and quotes again, dearer than Alpha.
    await charlie.quote("1250.00")
    assert await charlie.both() == "Devis envoyé"
    states, text = await buyer_sees(buyer, request_id)
    assert "Devis reçus (2)" in text and states[charlie.name] == "Devis reçu"

    # The award: Alpha is retained, Charlie is not, Bravo declined, Delta never answered.
    page = await buyer.get(f"/app/demandes/{request_id}")
    cheapest = re.search(r'name="devis" value="([^"]+)"', page).group(1)  # Alpha's quote comes first
    await buyer.post(f"/app/demandes/{request_id}/attribution", {"devis": cheapest})
    assert await alpha.both() == "Retenu"
    assert await bravo.both() == "Déclinée"
    assert await charlie.both() == "Non retenu"
    assert await delta.both() == "Demande close"
    states, text = await buyer_sees(buyer, request_id)
    assert states == {alpha.name: "Retenu", bravo.name: "A décliné", charlie.name: "Non retenu",
                      delta.name: "Sans réponse"}
    assert "Devis reçus (2)" in text
    for maker in makers.values():
        page = visible(await maker.browser.get("/app/invitations"))
        assert "À répondre" not in page and "Réponse attendue" not in page, (maker.name, page)
