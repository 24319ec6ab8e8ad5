"""Issue 21, a web interface people can trust, proved in a real browser against one real ``broker up``:
no English on any page or refusal; where each invitation stands, for the maker and for the buyer
(with the reason of a decline); no cancellation without its confirmation box; a commune typed by
name, an ambiguous postcode answered with choices; a CSV export that reopens with the rows shown; a
purchase order in PDF with its number and the buyer's SIRET; a person invited by e-mail who chooses a
password and signs in with it; the notification counter; tables that fit a phone.

The module starts its own broker (the `world` fixture below overrides the package's): it sends its
e-mails by SMTP to a loopback sink (`Mailbox`), since the default log notifier writes no link (on
purpose: a link is a secret). Every step leaves a screenshot under ``var/test-artifacts/screenshots``
(files ``confiance-*``)."""

from __future__ import annotations

import asyncio
import csv
import email
import email.policy
import io
import re
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import FAB_LAB, WOOD_SHOP, bearer, make_workshop, tenant
from playwright.sync_api import Page, expect
from pypdf import PdfReader
from support_server import RunningBroker, running_broker

from broker.errors import Rejected
from broker.web.refusals import DETAIL, REFUSALS, french

SOON = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
SHOPS = [  # name, INSEE, machines, declared visor capacity per day: Brittany only
    ("Fab lab de Lannion", "22113", FAB_LAB, 25),
    ("Le Bocal, Saint-Brieuc", "22278", FAB_LAB, 30),
    ("Fab lab de Vannes", "56260", FAB_LAB, 20),
    ("La Fabrique de Lorient", "56121", FAB_LAB, 15),
    ("Menuiserie du Pays de Rennes", "35238", WOOD_SHOP, None),
]

# English, as whole words: what an untranslated message or label would carry. Tuned against every
# page below: none of these is a French word (« thé », accented, is not « the » for `re`).
ENGLISH = re.compile(
    r"\b(the|is|are|not|must|cannot|can't|more than|less than|required|invalid|found|please|error|failed|"
    r"should|your|you|with|this|that|and|of|to|missing|unknown|allowed|forbidden|field|value|expected|"
    r"already|no such|does|doesn't)\b", re.IGNORECASE)

# Every text a person can read or hear on the page: text nodes outside code, pre, script and style
# (an <input>'s value is no text node), and the attributes assistive technologies read out.
READABLE_TEXT = """() => {
  const skipped = new Set(["CODE", "PRE", "SCRIPT", "STYLE", "NOSCRIPT", "TEXTAREA"]);
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let parent = node.parentElement, skip = false;
    for (; parent; parent = parent.parentElement) { if (skipped.has(parent.tagName)) { skip = true; break; } }
    if (!skip && node.textContent.trim()) { out.push(node.textContent.trim()); }
  }
  for (const element of document.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    for (const name of ["title", "aria-label", "placeholder", "alt"]) {
      const value = element.getAttribute(name);
      if (value) { out.push(value); }
    }
  }
  return out;
}"""

# Each table of the page, and whether it sits in a `.table-wrap` that scrolls sideways.
TABLES_IN_SCROLL_BOXES = """() => [...document.querySelectorAll("table")].map(table => {
  const wrap = table.closest(".table-wrap");
  const overflow = wrap ? getComputedStyle(wrap).overflowX : "";
  return {caption: (table.caption ? table.caption.textContent : table.className).trim(),
          wrapped: !!wrap && (overflow === "auto" || overflow === "scroll"),
          fits: wrap ? wrap.getBoundingClientRect().right <= window.innerWidth + 0.5 : false};
})"""


# ---- the world: a broker whose e-mails reach a loopback SMTP sink ---------------------------------


class Mailbox:
    """The messages a loopback SMTP server received (just enough of RFC 5321 for ``smtplib``)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        mailbox = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 boite.test ESMTP\r\n")
                lines: list[bytes] | None = None
                while line := self.rfile.readline():
                    if lines is not None:  # inside DATA: until the lone dot, undoing the dot-stuffing
                        if line.rstrip(b"\r\n") == b".":
                            parsed = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                            assert isinstance(parsed, EmailMessage)
                            with mailbox.lock:
                                mailbox.messages.append(parsed)
                            lines = None
                            self.wfile.write(b"250 2.0.0 queued\r\n")
                        else:
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        continue
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        self.wfile.write(b"250-boite.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    elif verb == b"DATA":
                        lines = []
                        self.wfile.write(b"354 end with <CRLF>.<CRLF>\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 2.0.0 bye\r\n")
                        return
                    else:  # HELO, MAIL, RCPT, RSET, NOOP
                        self.wfile.write(b"250 2.0.0 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Mailbox:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, to: str, timeout_s: float = 15) -> EmailMessage:
        """The first message to ``to`` (sent after the commit, so not at once)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if to in str(m["To"])]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no e-mail to {to}")


class World:
    """Who is who in the running broker (keys and ids, made through the HTTP API), and its mailbox."""

    def __init__(self, broker: RunningBroker, mailbox: Mailbox) -> None:
        self.broker = broker
        self.url = broker.url
        self.admin = broker.admin_key
        self.mailbox = mailbox
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
        for key, kind, role, name, insee in [
            ("lannion", "collectivite", "buyer", "Commune de Lannion", "22113"),
            ("prefecture", "coordination", "coordinator", "Préfecture des Côtes-d'Armor", "22278"),
        ]:
            world.orgs[key] = await tenant(client, world.admin, kind, role, name=name, commune_insee=insee)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """This module's broker (overrides the package's `world`): e-mails go to the loopback `Mailbox`."""
    with Mailbox() as mailbox, running_broker(
            tmp_path_factory.mktemp("confiance"), BROKER_SMTP_HOST="127.0.0.1", BROKER_SMTP_PORT=str(mailbox.port),
            BROKER_SMTP_SENDER="courtier@fabrication.test", BROKER_SMTP_STARTTLS="0") as broker:
        w = World(broker, mailbox)
        # Playwright's sync API keeps an event loop in this thread: populate from another one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(_populate(w))).result()
        yield w


# ---- helpers ----------------------------------------------------------------------------------------


def api(world: World, method: str, path: str, key: str, body: Any = None, status: int = 200) -> Any:
    headers = {**bearer(key), "Idempotency-Key": str(uuid.uuid4())}
    with world.api() as client:
        response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == status, (path, response.text)
    return response.json() if response.content else None


def invited(world: World, request_id: str, key: str) -> list[str]:
    """The ids of the workshops the matching invited, once it is done."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        matches = api(world, "GET", f"/v1/requests/{request_id}/matches", key)
        if matches["state"] == "done":
            return [m["workshop_id"] for m in matches["included"] if m["invited"]]
        time.sleep(0.2)
    raise AssertionError("matching did not finish")


def shop_id(world: World, name: str) -> str:
    return str(world.shops[name][0]["id"])


def post_request(world: World, *, item: str = "face-visor", quantity: int = 60, insee: str = "22113",
                 min_quotes: int = 1) -> dict[str, Any]:
    """A request of the Lannion buyer (its own SIRET as the buyer's), matched."""
    buyer_org, buyer = world.orgs["lannion"]
    body = {"item": item, "quantity": quantity, "deadline": (datetime.now(UTC) + timedelta(days=40)).isoformat(),
            "delivery": {"commune_insee": insee, "address": "Hôtel de ville"}, "min_quotes": min_quotes,
            "procurement": {"buyer_siret": buyer_org["siret"], "estimated_value_eur_ht": "500"},
            "budget_eur_ht": "1500"}
    created: dict[str, Any] = api(world, "POST", "/v1/requests", buyer, body, status=201)
    created["invited"] = invited(world, created["id"], buyer)
    return created


def quote(world: World, request_id: str, shop: str, price: str, quantity: int) -> dict[str, Any]:
    body = {"unit_price_eur_ht": price, "vat_rate": "20", "quantity": quantity, "delivery_date": SOON}
    made: dict[str, Any] = api(world, "POST", f"/v1/requests/{request_id}/quotes", world.shops[shop][1], body,
                               status=201)
    return made


def awarded_order(world: World, shop: str = "Fab lab de Lannion") -> dict[str, Any]:
    """An order of the Lannion buyer with ``shop``, just awarded (request, quote and award by the API)."""
    request = post_request(world, quantity=40)
    assert shop_id(world, shop) in request["invited"], request["invited"]
    made = quote(world, request["id"], shop, "3.10", 40)
    order: dict[str, Any] = api(world, "POST", f"/v1/requests/{request['id']}/award", world.orgs["lannion"][1],
                                {"quote_ids": [made["id"]]}, status=201)["orders"][0]
    return order


def invitation_of(world: World, shop: str, request_id: str) -> str:
    items = api(world, "GET", "/v1/invitations", world.shops[shop][1])["items"]
    return str(next(i["id"] for i in items if i["request_id"] == request_id))


def english_in(page: Page) -> list[str]:
    """The readable texts of the page with an English word in them."""
    return [text for text in page.evaluate(READABLE_TEXT) if ENGLISH.search(text)]


def assert_french(page: Page) -> None:
    assert english_in(page) == [], page.url


def field_error(page: Page, field_id: str) -> str:
    """The message tied to a field by aria-describedby (what a screen reader reads with it)."""
    described = page.locator(f"#{field_id}").get_attribute("aria-describedby") or ""
    ids = [i for i in described.split() if i.startswith("e-")]
    assert ids, f"no error is attached to #{field_id}"
    return page.locator(f"#{ids[0]}").inner_text()


def badge_of(page: Page, invitation_id: str) -> Any:
    """The state badge of one invitation on the maker's list."""
    card = page.locator("li.invitation", has=page.locator(f"a[href='/app/invitations/{invitation_id}']"))
    return card.locator(".badge")


def unread(page: Page) -> int:
    """The header's counter (0 when it is not shown)."""
    counter = page.locator(".bell-count")
    if counter.count() == 0:
        return 0
    return int(re.sub(r"\D", "", counter.inner_text().split()[0]))


# ---- 1. French everywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(c for c in REFUSALS if REFUSALS[c] != DETAIL))
def test_every_refusal_of_the_map_reads_french(code: str) -> None:
    """Every sentence of the services' refusal map, with figures, passes the same English detector as
    the pages (tests/unit/web/test_french_map.py checks that every code raised has its sentence)."""
    exc = Rejected("the detail, in English, never shown", code=code, figures={
        "quantity": 7, "requested": 6, "remaining": 6, "total": 8, "done": 9, "ordered": 8, "reported": 3,
        "produced": 100, "delivered": 200, "committed": 50, "high": 100_000, "current": 40, "commune": "99999",
        "item": "Visière de protection", "considered": 12, "label": "CHU de Rennes", "received": 1, "required": 3})
    text = french(exc)
    assert text and not ENGLISH.search(text), (code, text)


def test_no_english_on_any_page_or_refusal(person: Any, world: World) -> None:
    detector = person("confiance-detecteur")
    detector.page.set_content("<p>La quantité</p><p>Quantity is required</p><pre>the stack</pre><code>not found</code>"
                              "<input value='the value'><button aria-label='Please confirm'>Oui</button>")
    assert english_in(detector.page) == ["Quantity is required", "Please confirm"]  # the detector detects
    order = awarded_order(world)
    call = api(world, "POST", "/v1/crisis-calls", world.orgs["prefecture"][1], {
        "item": "face-visor", "deadline": (datetime.now(UTC) + timedelta(days=9)).isoformat(), "priority": 2,
        "delivery_points": [{"label": "CHU de Saint-Brieuc", "commune_insee": "22278", "quantity": 50,
                             "priority": 1}]}, status=201)
    lannion_invitation = invitation_of(world, "Fab lab de Lannion", order["request_id"])
    order_page, request_page = f"/app/commandes/{order['id']}", f"/app/demandes/{order['request_id']}"
    roles = {  # who: (key, [(address, screenshot label)])
        "confiance-acheteur": (world.orgs["lannion"][1], [
            ("/app/demandes", "demandes"), ("/app/catalogue", "catalogue"), ("/app/commandes", "commandes"),
            ("/app/demandes/nouvelle?article=face-visor", "nouvelle-demande"), (request_page, "demande"),
            (order_page, "commande"), ("/app/notifications", "notifications")]),
        "confiance-atelier": (world.shops["Fab lab de Lannion"][1], [
            ("/app/invitations", "invitations"), (f"/app/invitations/{lannion_invitation}", "invitation"),
            ("/app/consultations", "consultations"), ("/app/commandes", "commandes"), (order_page, "commande"),
            ("/app/engagements", "engagements"), ("/app/atelier", "atelier"), ("/app/notifications", "notifications")]),
        "confiance-coordination": (world.orgs["prefecture"][1], [
            ("/app/crises", "appels"), ("/app/crises/nouvel-appel", "nouvel-appel"),
            (f"/app/crises/{call['id']}", "tableau-de-bord"), ("/app/notifications", "notifications")]),
        "confiance-administration": (world.admin, [
            ("/app/admin/organisations", "organisations"),
            (f"/app/admin/organisations/{world.orgs['lannion'][0]['id']}", "organisation"),
            ("/app/admin/ateliers", "ateliers"), ("/app/admin/journal", "journal"), ("/app/demandes", "demandes"),
            ("/app/crises", "appels")]),
    }
    for name, (key, paths) in roles.items():
        me = person(name)
        me.sign_in(key)
        for path, label in paths:
            response = me.page.goto(world.url + path)
            assert response is not None and response.status == 200, path
            me.shot(label)
            assert_french(me.page)

    visitor = person("confiance-visiteur")
    for path in ("/app/connexion", "/app/mentions-legales", "/app/accessibilite", "/app/donnees-personnelles",
                 "/app/aide", "/app/mot-de-passe-oublie"):
        visitor.go(path)
        assert_french(visitor.page)
    visitor.shot("connexion")

    # Refusals: a form with errors, a page of another role, an address that leads nowhere, a wrong key,
    # a service's refusal, a form posted without its session's token.
    me = person("confiance-refus")
    page = me.sign_in(world.orgs["lannion"][1])
    page = me.go("/app/demandes/nouvelle?article=face-visor")
    page.get_by_label("Quantité").fill("beaucoup")
    page.get_by_label("Commune de livraison").fill("Atlantide")
    page.get_by_role("button", name="Publier la demande").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert "Atlantide" in field_error(page, "f-commune")
    me.shot("formulaire-erreurs")
    assert_french(page)
    response = page.goto(world.url + "/app/admin/journal")
    assert response is not None and response.status == 403
    me.shot("page-reservee")
    assert_french(page)
    response = page.goto(world.url + "/app/nulle-part/ici")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Introuvable")).to_be_visible()
    me.shot("introuvable")
    assert_french(page)
    page = me.go(f"/app/commandes/{order['id']}")
    page.locator("summary", has_text="Annuler ou signaler").click()
    page.get_by_label("Action").select_option("cancelled")
    page.get_by_role("button", name="Envoyer").click()  # neither the reason nor the confirmation
    expect(page.locator(".error-summary")).to_be_visible()
    assert "Cochez la case" in field_error(page, "f-confirmer")
    me.shot("refus-du-service")
    assert_french(page)
    forged = me.context.request.post(world.url + f"/app/commandes/{order['id']}/statut",
                                     form={"_csrf": "pas-le-jeton", "vers": "cancelled"}, max_redirects=0)
    assert forged.status == 403
    page.set_content(forged.text())
    assert "Formulaire expiré" in page.content()
    assert_french(page)
    me.shot("formulaire-expire")

    stranger = person("confiance-cle-inconnue")
    page = stranger.go("/app/connexion")
    page.get_by_label("Clé d'API").fill("fab_000000000000_pas-une-vraie-cle-du-tout")
    page.get_by_role("button", name="Se connecter").click()
    assert "inconnue" in field_error(page, "f-cle")
    stranger.shot("cle-refusee")
    assert_french(page)


# ---- 2. Where each invitation stands --------------------------------------------------------------


def test_invitation_states_and_the_decline_reason(person: Any, world: World) -> None:
    request = post_request(world, min_quotes=2)
    names = ["Fab lab de Lannion", "Le Bocal, Saint-Brieuc", "Fab lab de Vannes"]
    assert {shop_id(world, n) for n in names} <= set(request["invited"]), request["invited"]
    invitation = {n: invitation_of(world, n, request["id"]) for n in names}

    lannion = person("confiance-etats-lannion")
    page = lannion.sign_in(world.shops["Fab lab de Lannion"][1])
    page = lannion.go("/app/invitations")
    expect(badge_of(page, invitation["Fab lab de Lannion"])).to_have_text("À répondre")
    lannion.shot("a-repondre")
    winner = quote(world, request["id"], "Fab lab de Lannion", "2.90", 60)
    page.reload()
    expect(badge_of(page, invitation["Fab lab de Lannion"])).to_have_text("Devis envoyé")
    page = lannion.go(f"/app/invitations/{invitation['Fab lab de Lannion']}")
    expect(page.locator(".page-head .badge")).to_have_text("Devis envoyé")
    lannion.shot("devis-envoye")

    reason = "Plan de charge complet jusqu'à la fin du mois : imprimantes réservées à l'hôpital."
    brieuc = person("confiance-etats-saint-brieuc")
    page = brieuc.sign_in(world.shops["Le Bocal, Saint-Brieuc"][1])
    page = brieuc.go(f"/app/invitations/{invitation['Le Bocal, Saint-Brieuc']}")
    page.locator("summary", has_text="Décliner l'invitation").click()
    page.get_by_label("Motif").fill(reason)
    page.get_by_role("button", name="Décliner").click()
    expect(page.locator(".flash")).to_contain_text("Invitation déclinée")
    expect(badge_of(page, invitation["Le Bocal, Saint-Brieuc"])).to_have_text("Déclinée")
    brieuc.shot("declinee")
    quote(world, request["id"], "Fab lab de Vannes", "3.40", 60)

    buyer = person("confiance-etats-acheteur")
    page = buyer.sign_in(world.orgs["lannion"][1])
    page = buyer.go(f"/app/demandes/{request['id']}")

    def match(name: str) -> Any:
        return page.locator("li.match", has_text=name)

    expect(match("Fab lab de Lannion").locator(".badge")).to_have_text("Devis reçu")
    expect(match("Le Bocal, Saint-Brieuc").locator(".badge")).to_have_text("A décliné")
    expect(match("Le Bocal, Saint-Brieuc")).to_contain_text(f"Motif\u00a0: « {reason} »")
    expect(match("La Fabrique de Lorient").locator(".badge")).to_have_text("Invité")
    buyer.shot("avant-attribution")
    assert_french(page)

    page.get_by_label("Retenir ce devis de Fab lab de Lannion").check()
    page.get_by_role("button", name="Attribuer").click()
    expect(page.locator(".flash")).to_contain_text("commande")
    expect(match("Fab lab de Lannion").locator(".badge")).to_have_text("Retenu")
    expect(match("Fab lab de Vannes").locator(".badge")).to_have_text("Non retenu")
    expect(match("Le Bocal, Saint-Brieuc").locator(".badge")).to_have_text("A décliné")
    expect(match("La Fabrique de Lorient").locator(".badge")).to_have_text("Sans réponse")
    buyer.shot("apres-attribution")
    assert api(world, "GET", f"/v1/requests/{request['id']}/quotes", world.orgs["lannion"][1])["items"]

    page = lannion.go("/app/invitations")
    expect(badge_of(page, invitation["Fab lab de Lannion"])).to_have_text("Retenu")
    lannion.shot("retenu")
    vannes = person("confiance-etats-vannes")
    page = vannes.sign_in(world.shops["Fab lab de Vannes"][1])
    page = vannes.go("/app/invitations")
    expect(badge_of(page, invitation["Fab lab de Vannes"])).to_have_text("Non retenu")
    vannes.shot("non-retenu")
    assert winner["id"]


# ---- 3. No cancellation in one click ------------------------------------------------------------


def test_cancelling_an_order_needs_the_confirmation_box(person: Any, world: World) -> None:
    order = awarded_order(world)
    buyer = person("confiance-annulation")
    page = buyer.sign_in(world.orgs["lannion"][1])
    page = buyer.go(f"/app/commandes/{order['id']}")
    page.locator("summary", has_text="Annuler ou signaler").click()
    page.get_by_label("Action").select_option("cancelled")
    page.get_by_label("Motif").fill("Besoin couvert par un don de la région.")
    page.get_by_role("button", name="Envoyer").click()
    assert "Cochez la case" in field_error(page, "f-confirmer")
    expect(page.get_by_label("Motif")).to_have_value("Besoin couvert par un don de la région.")
    assert api(world, "GET", f"/v1/orders/{order['id']}", world.orgs["lannion"][1])["status"] == "awarded"
    buyer.shot("sans-confirmation")
    assert_french(page)
    page.get_by_label(re.compile("Je confirme")).check()
    page.get_by_role("button", name="Envoyer").click()
    expect(page.locator(".flash")).to_contain_text("annulée")
    expect(page.locator(".page-head .badge")).to_have_text("Annulée")
    assert api(world, "GET", f"/v1/orders/{order['id']}", world.orgs["lannion"][1])["status"] == "cancelled"
    buyer.shot("annulee")


# ---- 4. Communes by name, and an ambiguous postcode ------------------------------------------------


def test_a_commune_typed_by_name_and_an_ambiguous_postcode(person: Any, world: World) -> None:
    buyer_org, buyer = world.orgs["lannion"]
    me = person("confiance-commune")
    page = me.sign_in(buyer)

    def fill_request(commune: str) -> None:
        page.get_by_label("Quantité").fill("30")
        page.get_by_label("Date limite de livraison").fill((datetime.now(UTC).date() + timedelta(days=45)).isoformat())
        page.get_by_label("Commune de livraison").fill(commune)
        page.get_by_label("SIRET de l'acheteur").fill(buyer_org["siret"])
        page.get_by_label("Valeur estimée du besoin").fill("400")
        page.get_by_role("button", name="Publier la demande").click()

    page = me.go("/app/demandes/nouvelle?article=face-visor")
    fill_request("Lannion")
    expect(page.locator(".flash")).to_contain_text("Demande publiée")
    expect(page.locator(".facts")).to_contain_text("Lannion (22)")
    request_id = page.url.rsplit("/", 1)[1]
    assert api(world, "GET", f"/v1/requests/{request_id}", buyer)["delivery"]["commune_insee"] == "22113"
    me.shot("commune-par-son-nom")

    # 22300 is Lannion's postcode, shared with nine other communes (and Saint-Hervé's INSEE code).
    page = me.go("/app/demandes/nouvelle?article=face-visor")
    fill_request("22300")
    assert "désigne" in field_error(page, "f-commune")
    choices = page.locator(".commune-choices label")
    assert choices.count() >= 2
    expect(choices.first).to_contain_text("Lannion")
    me.shot("code-postal-ambigu")
    assert_french(page)
    page.get_by_label(re.compile("^Ploubezre")).check()
    page.get_by_role("button", name="Publier la demande").click()
    expect(page.locator(".flash")).to_contain_text("Demande publiée")
    expect(page.locator(".facts")).to_contain_text("Ploubezre (22)")
    me.shot("commune-choisie")

    # With JavaScript, the field suggests communes while one types.
    page = me.go("/app/demandes/nouvelle?article=face-visor")
    page.get_by_label("Commune de livraison").fill("")  # the form proposes the last commune used
    page.get_by_label("Commune de livraison").press_sequentially("Lanni", delay=30)
    expect(page.locator("datalist option").first).to_have_attribute("value", re.compile("^Lannion"))


# ---- 5. A CSV export that reopens with the rows shown ----------------------------------------------


def test_the_audit_csv_reopens_with_the_rows_shown(person: Any, world: World) -> None:
    post_request(world, quantity=12)  # at least one entry for the buyer's organisation
    admin = person("confiance-export")
    page = admin.sign_in(world.admin)
    page = admin.go("/app/admin/journal")
    page.get_by_label("Organisation").select_option(label="Commune de Lannion")
    page.get_by_role("button", name="Filtrer").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_have_attribute("id", re.compile("^entree-"))
    shown = [[" ".join(cell.split()) for cell in row.locator("td").all_inner_texts()] for row in rows.all()]
    admin.shot("journal-filtre")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Exporter ces entrées")).click()
    raw = Path(download.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the byte order mark a spreadsheet reads the accents by
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    header, body = table[0], table[1:]
    assert header[0] == "N°" and header[-1] == "Entrée" and "Résultat" in header
    result = header.index("Résultat")
    reopened = [[row[0], " ".join(row[-1].split()), row[result]] for row in body]
    assert all(row[2] == "Commune de Lannion" for row in body)
    if page.get_by_role("link", name="Entrées plus anciennes").count() == 0:
        assert len(reopened) == len(shown)
    assert reopened[:len(shown)] == shown


# ---- 6. The purchase order in PDF -----------------------------------------------------------------


def test_the_purchase_order_pdf(person: Any, world: World) -> None:
    order = awarded_order(world, "Fab lab de Vannes")
    buyer = person("confiance-bon-de-commande")
    page = buyer.sign_in(world.orgs["lannion"][1])
    page = buyer.go(f"/app/commandes/{order['id']}")
    buyer.shot("commande")
    with page.expect_download() as download:
        page.get_by_role("link", name="Bon de commande (PDF)").click()
    assert download.value.suggested_filename.endswith(".pdf")
    reader = PdfReader(download.value.path())
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert order["number"] in text, text[:500]
    assert world.orgs["lannion"][0]["siret"] in re.sub(r"[\s\u00a0\u202f]", "", text), text[:500]


# ---- 7. A person invited by e-mail --------------------------------------------------------------


def test_an_invited_person_signs_in_with_email_and_password(person: Any, world: World) -> None:
    org = world.orgs["lannion"][0]
    address = "maelle.le-gall@lannion.fr"
    admin = person("confiance-invitation-admin")
    page = admin.sign_in(world.admin)
    page = admin.go(f"/app/admin/organisations/{org['id']}")
    page.locator("#f-p-nom_personne").fill("Maëlle Le Gall")
    page.locator("#f-p-courriel").fill(address)
    page.locator("#f-p-role_personne").select_option("buyer")
    page.get_by_role("button", name="Envoyer l'invitation").click()
    expect(page.locator(".flash")).to_contain_text("Invitation envoyée")
    expect(page.locator("#personnes")).to_contain_text("invitation envoyée")
    admin.shot("invitation-envoyee")

    message = world.mailbox.wait_for(address)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"/app/invitation/[A-Za-z0-9_-]+", body.get_content())
    assert link, body.get_content()
    password = "quatre vaches bretonnes au pré"
    invitee = person("confiance-invitee")
    page = invitee.go(link.group(0))
    expect(page.get_by_role("heading", name="Choisissez votre mot de passe")).to_be_visible()
    invitee.shot("choisir-mot-de-passe")
    page.locator("#f-mot_de_passe").fill(password)
    page.locator("#f-confirmation").fill(password)
    page.get_by_role("button", name="Activer mon compte").click()
    expect(page.locator(".flash")).to_contain_text("Bienvenue, Maëlle Le Gall")
    expect(page.locator(".who-name")).to_have_text("Commune de Lannion")
    invitee.shot("compte-actif")
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.locator(".notice")).to_contain_text("déconnecté")

    page.get_by_label("Adresse e-mail").fill(address)
    page.locator("#f-mot_de_passe").fill(password)
    page.get_by_role("button", name="Accéder à mon espace").click()
    expect(page).to_have_url(re.compile(r"/app/demandes$"))
    expect(page.locator(".who-name")).to_have_text("Commune de Lannion")
    invitee.shot("connexion-par-mot-de-passe")
    assert invitee.page.goto(world.url + link.group(0)).status == 410  # the link served once


# ---- 8. The notification counter ------------------------------------------------------------------


def test_the_notification_counter_moves(person: Any, world: World) -> None:
    maker = person("confiance-notifications")
    page = maker.sign_in(world.shops["La Fabrique de Lorient"][1])
    page = maker.go("/app/notifications")
    if page.get_by_role("button", name="Tout marquer comme lu").count():
        page.get_by_role("button", name="Tout marquer comme lu").click()
    before = unread(page)  # 0, unless an earlier test's invitation was notified since
    request = post_request(world, quantity=20, insee="56121")
    assert shop_id(world, "La Fabrique de Lorient") in request["invited"]
    page = maker.go("/app/invitations")
    deadline = time.monotonic() + 15
    while unread(page) <= before and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    assert unread(page) > before
    maker.shot("compteur")
    page.locator("a.bell").click()
    expect(page.locator(".notif-unread").first).to_be_visible()
    maker.shot("notifications-non-lues")
    page.get_by_role("button", name="Tout marquer comme lu").click()
    expect(page.locator(".flash")).to_contain_text("marquées comme lues")
    assert unread(page) == 0
    assert page.locator(".notif-unread").count() == 0
    maker.shot("tout-lu")


# ---- 9. A phone's width ---------------------------------------------------------------------------


def test_lists_and_tables_fit_a_phone(person: Any, world: World) -> None:
    order = awarded_order(world)
    phone = person("confiance-telephone", phone=True)
    phone.sign_in(world.orgs["lannion"][1])
    for path, label, least in (("/app/demandes", "demandes", 1), ("/app/commandes", "commandes", 1),
                               (f"/app/commandes/{order['id']}", "commande", 0),
                               ("/app/notifications", "notifications", 0)):
        page = phone.go(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        tables = page.evaluate(TABLES_IN_SCROLL_BOXES)
        assert len(tables) >= least, (path, tables)  # the lists are tables: the check is not vacuous
        assert [t for t in tables if not (t["wrapped"] and t["fits"])] == [], (path, tables)
        phone.shot(label)
