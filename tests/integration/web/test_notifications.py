"""Issue 21 item 8 on the pages (in-process, signed in by session cookie): the header's counter of
unread notifications moves for the maker on an invitation and an award, for the buyer on a quote and
each move of the maker up to the shipment; ``/app/notifications`` says each in a French sentence
(no id, no code) linking to its object, grouped by day; « Tout marquer comme lu » empties the
counter; another organisation sees none of it. The e-mails of an award (to the maker), a shipment
(to the buyer) and a crisis proposal (to the maker, with its expiry) leave through the notify job."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import FAB_LAB, WOOD_SHOP, bearer, make_workshop, tenant
from sqlalchemy import select, update
from support_web import Browser, signed_in, visible

from adapters.notifications.fake import FakeNotifier
from broker.db.models import OrganizationRow, OutboxRow
from broker.domain.notifications import IN_APP, Notification, Party
from broker.web.notifications import _Speaker, by_day
from workers.jobs.notifications import notify

NBSP = "\u00a0"
ITEM = "Bureau d'accueil France Services"
#: Codes a page must never show (event types, statuses, rule parties).
CODES = ["invitation.created", "quote.submitted", "quote.accepted", "order.status_changed", "request.matched",
         "workshop.verified", "commitment.created", "crisis_call.allocated", "shipped", "in_production", "confirmed",
         "tenant", "partner", "face-visor", "france-services-desk"]


def counter(page: str) -> str | None:
    """The header's counter: the number beside « Notifications », or None when nothing is unread."""
    found = re.search(r'class="bell"[^>]*>Notifications(?: <span class="bell-count">([^<]+)<)?', page)
    assert found, page[:1500]
    return found.group(1)


def assert_plain(page: str, *ids: str) -> None:
    text = visible(page)
    for code in CODES:
        assert not re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w-])", text), (code, text)
    for identifier in ids:
        assert identifier not in text, (identifier, text)


async def outbox(db: Any, kind: str) -> list[OutboxRow]:
    async with db.reader() as session:
        query = select(OutboxRow).where(OutboxRow.type == kind).order_by(OutboxRow.created_at, OutboxRow.id)
        return list((await session.execute(query)).scalars())


async def give_address(db: Any, org_id: str, email: str) -> None:
    async with db.writer() as session:
        await session.execute(update(OrganizationRow).where(OrganizationRow.id == org_id).values(contact_email=email))
        await session.commit()


def test_every_notification_has_a_sentence():
    """Each type the rules notify has its sentence (the page would fail on one without)."""
    for rule in IN_APP:
        assert callable(getattr(_Speaker, "_" + rule.type.replace(".", "_"), None)), rule.type


def test_sentences_by_day_say_numbers_and_names_never_codes():
    """The page's grouping (today, yesterday, then the date, in Paris) and sentences of invoices,
    lateness and crisis rebalances: amounts, dates and names, without the codes of the payloads."""
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    names = {"request": {"r1": ITEM}, "call": {"c1": "Visières Bretagne"}}

    def n(at: datetime, event: str, party: Party, **data: Any) -> Notification:
        return Notification(id=str(uuid.uuid4()), at=at, type=event, party=party, data=data, unread=True)

    items = [
        n(now, "invoice.issued", Party.TENANT, kind="invoice", number="F-000001", order_id="o1", total_cents=792000,
          due_on="2027-01-02", maker_org_id="m1", id="i1"),
        n(now - timedelta(hours=1), "invoice.status_changed", Party.PARTNER, number="F-000001", order_id="o1",
          to="suspendue", reason="Bon de commande manquant", maker_org_id="m1", id="i1"),
        n(now - timedelta(days=1), "invoice.overdue", Party.TENANT, number="F-000001", order_id="o1", total_cents=792000,
          due_on="2026-11-30", rate_bp=1015, indemnity_cents=4000, maker_org_id="m1", id="i1"),
        n(now - timedelta(days=1, hours=2), "order.late", Party.PARTNER, id="o1", number="BC-1", status="in_production",
          maker_org_id="m1"),
        n(now - timedelta(days=6), "crisis_call.rebalanced", Party.TENANT, id="c1", revision=2, reason="decline",
          requested=40, committed=30, unmet=10, units_moved=12, commitments_created=1, workshops_able=2),
        n(now - timedelta(days=6), "commitment.resized", Party.PARTNER, id="k1", call_id="c1", quantity=8,
          previous_quantity=12, reason="lag", maker_org_id="m1"),
        n(now - timedelta(days=7), "request.window_closed", Party.TENANT, id="r1", status="quoting"),
    ]
    days = by_day(items, names, commune=str, now=now)
    assert [d.title for d in days] == ["Aujourd'hui", "Hier", "27 novembre 2026", "26 novembre 2026"]
    lines = [line.text for d in days for line in d.lines]
    nnbsp = "\u202f"
    assert lines == [
        f"Facture F-000001 reçue{NBSP}: 7{nnbsp}920,00{nnbsp}€ TTC, à payer avant le 2 janvier 2027 (date prévisionnelle).",
        f"Facture F-000001{NBSP}: suspendue («{NBSP}Bon de commande manquant{NBSP}»).",
        f"La facture F-000001 de 7{nnbsp}920,00{nnbsp}€ TTC n'est pas payée à son échéance du 30 novembre 2026{NBSP}: "
        f"des intérêts de retard courent au taux de 10,15{nnbsp}% l'an et l'indemnité forfaitaire de "
        f"40,00{nnbsp}€ est due.",
        f"La commande n°{NBSP}BC-1 n'est pas livrée à l'échéance de la demande (statut{NBSP}: en production).",
        f"Nouvelle répartition de l'appel «{NBSP}Visières Bretagne{NBSP}» (après un refus){NBSP}: 12{NBSP}unités "
        f"réattribuées, 10{NBSP}unités encore sans atelier.",
        f"Votre engagement pour l'appel «{NBSP}Visières Bretagne{NBSP}» passe de 12{NBSP}unités à 8{NBSP}unités.",
        f"La période de devis de «{NBSP}{ITEM}{NBSP}» est close{NBSP}: vous pouvez attribuer.",
    ]
    assert days[0].lines[0].href == "/app/commandes/o1#factures" and days[0].lines[0].time == f"11{NBSP}h{NBSP}00"
    assert days[2].lines[1].href == "/app/engagements#engagement-k1"


async def test_counters_pages_mark_read_and_mails_along_an_order(client, admin_key, db, settings, redis_client):
    shop, maker_key = await make_workshop(client, admin_key, name="Menuiserie du Pays de Rennes",
                                          commune_insee="35238", machines=WOOD_SHOP,
                                          capacities={"france-services-desk": 50})
    buyer_org, buyer_key = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Vitré",
                                        commune_insee="35360")
    _other_org, other_key = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Fougères",
                                         commune_insee="35115")
    await give_address(db, shop["org_id"], "atelier@menuiserie-pays-rennes.fr")
    await give_address(db, buyer_org["id"], "achats@vitre.fr")
    maker, buyer, other = [Browser(client, await signed_in(client, key)) for key in (maker_key, buyer_key, other_key)]

    # The maker's workshop was verified while it was set up: that is its first notification.
    assert counter(await maker.get("/app/invitations")) == "1"
    assert counter(await buyer.get("/app/demandes")) is None

    body = {"item": "france-services-desk", "quantity": 6, "deadline": (datetime.now(UTC) + timedelta(days=30))
            .isoformat(), "delivery": {"commune_insee": "35360", "address": "Maison France Services, 2 rue de la Mairie"},
            "procurement": {"buyer_siret": buyer_org["siret"], "estimated_value_eur_ht": "1.00"}}
    made = await client.post("/v1/requests", json=body, headers={**bearer(buyer_key), "Idempotency-Key": str(uuid.uuid4())})
    assert made.status_code == 201 and made.json()["invited"] == 1, made.text
    request = made.json()
    assert counter(await maker.get("/app/invitations")) == "2"  # + the invitation
    assert counter(await buyer.get("/app/demandes")) == "1"  # its request was matched

    quote = {"unit_price_eur_ht": "1100.00", "vat_rate": "20", "quantity": 6,
             "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()}
    quoted = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote,
                               headers={**bearer(maker_key), "Idempotency-Key": str(uuid.uuid4())})
    assert quoted.status_code == 201, quoted.text
    assert counter(await buyer.get("/app/demandes")) == "2"  # + the quote
    awarded = await client.post(f"/v1/requests/{request['id']}/award", json={"quote_ids": [quoted.json()["id"]],
                                "justification": "Seul devis reçu"},
                                headers={**bearer(buyer_key), "Idempotency-Key": str(uuid.uuid4())})
    assert awarded.status_code == 201, awarded.text
    order = awarded.json()["orders"][0]
    assert counter(await maker.get("/app/commandes")) == "3"  # + the award
    for to, extra in (("confirmed", {}), ("in_production", {}), ("ready", {}),
                      ("shipped", {"tracking": "Colissimo 6A12345678901"})):
        moved = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": to, **extra},
                                  headers=bearer(maker_key))
        assert moved.status_code == 200, moved.text
    assert counter(await buyer.get("/app/commandes")) == "6"  # + four moves of the maker, up to the shipment
    assert counter(await maker.get("/app/commandes")) == "3"  # its own moves are not news to it

    page = await buyer.get("/app/notifications")
    text = visible(page)
    number = order["number"]
    assert "6 notifications non lues." in text
    assert "Aujourd'hui" in text
    assert f"La commande n°{NBSP}{number} a été expédiée (suivi{NBSP}: Colissimo 6A12345678901)." in text
    assert f"La commande n°{NBSP}{number} a été confirmée par l'atelier." in text
    assert (f"Devis reçu de Menuiserie du Pays de Rennes pour «{NBSP}{ITEM}{NBSP}»{NBSP}: 6{NBSP}unités à "
            f"1\u202f100,00\u202f€ HT l'unité.") in text
    assert f"«{NBSP}{ITEM}{NBSP}»{NBSP}: 1{NBSP}atelier invité à chiffrer." in text
    # newest first: the shipment above the quote
    assert text.index("a été expédiée") < text.index("Devis reçu de")
    assert f'href="/app/commandes/{order["id"]}"' in page and f'href="/app/demandes/{request["id"]}#devis"' in page
    assert_plain(page, request["id"], order["id"], quoted.json()["id"], shop["id"], buyer_org["id"])

    page = await maker.get("/app/notifications")
    text = visible(page)
    assert (f"Nouvelle invitation à chiffrer «{NBSP}{ITEM}{NBSP}»{NBSP}: 6{NBSP}unités à livrer à Vitré (35) avant le"
            in text)
    assert f"Votre devis pour «{NBSP}{ITEM}{NBSP}» est retenu{NBSP}: commande n°{NBSP}{number}." in text
    assert "Les labels et certifications de votre atelier ont été vérifiés." in text
    assert text.count("Nouveau") == 3
    invitation = re.search(r'href="/app/invitations/([^"#]+)"', page)
    assert invitation and f'href="/app/commandes/{order["id"]}"' in page
    assert_plain(page, request["id"], order["id"], invitation.group(1), shop["id"])

    # « Tout marquer comme lu »: the counter goes, the notifications stay (no longer new).
    await buyer.post("/app/notifications/lu", {"jusqua": _mark_token(await buyer.get("/app/notifications"))})
    page = await buyer.get("/app/notifications")
    assert counter(page) is None and "Toutes les notifications sont marquées comme lues." in visible(page)
    assert "Nouveau" not in visible(page) and "a été expédiée" in visible(page)
    assert "Tout marquer comme lu" not in page
    assert counter(await maker.get("/app/commandes")) == "3"  # the maker's are its own
    # The buyer confirms receipt: news for the maker, and a new one for nobody else.
    delivered = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": "delivered"},
                                  headers=bearer(buyer_key))
    assert delivered.status_code == 200, delivered.text
    assert counter(await maker.get("/app/commandes")) == "4"
    assert counter(await buyer.get("/app/commandes")) is None
    assert f"La commande n°{NBSP}{number} a été réceptionnée par l'acheteur." in visible(
        await maker.get("/app/notifications"))

    # Another organisation sees none of it, and cannot move the watermark of the buyer.
    page = await other.get("/app/notifications")
    assert counter(page) is None and "Aucune notification pour l'instant." in visible(page)
    assert number not in page and ITEM not in page

    # The e-mails: the award to the maker, the shipment (and no other move) to the buyer.
    notifier = FakeNotifier()
    ctx: Any = {"db": db, "settings": settings, "redis": redis_client, "notifier": notifier}
    [award] = await outbox(db, "quote.accepted")
    assert await notify(ctx, award.id) == "sent"
    moves = await outbox(db, "order.status_changed")
    assert [await notify(ctx, m.id) for m in moves] == ["nothing to send"] * 3 + ["sent", "nothing to send"]
    first, second = notifier.sent
    assert first.to == "atelier@menuiserie-pays-rennes.fr"
    assert first.subject == f"Devis retenu : commande n° {number} — {ITEM}"
    assert "Commune de Vitré a retenu le devis de Menuiserie du Pays de Rennes" in first.body
    assert "6 unité(s) à 1\u202f100,00 € HT l'unité" in first.body and f"/app/commandes/{order['id']}" in first.body
    assert second.to == "achats@vitre.fr" and second.subject == f"Commande n° {number} expédiée"
    assert "L'atelier Menuiserie du Pays de Rennes a expédié la commande" in second.body
    assert "Suivi : Colissimo 6A12345678901." in second.body
    assert await notify(ctx, award.id) == "already sent" and len(notifier.sent) == 2


def _mark_token(page: str) -> str:
    found = re.search(r'name="jusqua" value="([^"]+)"', page)
    assert found, page[:1500]
    return found.group(1)


async def test_a_crisis_proposal_reaches_its_maker_and_the_allocation_its_coordinator(
    client, admin_key, db, settings, redis_client,
):
    shop, maker_key = await make_workshop(client, admin_key, name="Fab lab des Champs Libres", commune_insee="35238",
                                          machines=FAB_LAB, radius_km=80, capacities={"face-visor": 30})
    _org, coordinator_key = await tenant(client, admin_key, "coordination", "coordinator",
                                         name="ARS Bretagne - cellule de crise", commune_insee="35238")
    await give_address(db, shop["org_id"], "contact@fablab-champs-libres.fr")
    maker, coordinator = [Browser(client, await signed_in(client, key)) for key in (maker_key, coordinator_key)]
    body = {"item": "face-visor", "deadline": (datetime.now(UTC) + timedelta(days=10)).isoformat(), "priority": 1,
            "delivery_points": [{"label": "CHU de Rennes", "commune_insee": "35238", "quantity": 40, "priority": 1}]}
    call = await client.post("/v1/crisis-calls", json=body, headers=bearer(coordinator_key))
    assert call.status_code == 201, call.text
    call_id = call.json()["id"]

    page = await maker.get("/app/engagements")
    assert counter(page) == "2"  # verified, then the proposal
    text = visible(await maker.get("/app/notifications"))
    found = re.search(rf"Proposition d'engagement pour l'appel «{NBSP}(.+?){NBSP}»{NBSP}: (\d+){NBSP}unités de "
                      rf"«{NBSP}(.+?){NBSP}» pour CHU de Rennes, à accepter avant le (.+? à \d+ h \d\d)\.", text)
    assert found, text
    assert 0 < int(found.group(2)) <= 40
    page = await maker.get("/app/notifications")
    assert "/app/engagements#engagement-" in page
    assert_plain(page, call_id, shop["id"])

    page = await coordinator.get("/app/crises")
    assert counter(page) == "1"
    text = visible(await coordinator.get("/app/notifications"))
    assert re.search(rf"Répartition de l'appel «{NBSP}.+?{NBSP}»{NBSP}: \d+{NBSP}unités sur 40 proposées à 1{NBSP}atelier",
                     text), text
    assert_plain(await coordinator.get("/app/notifications"), call_id)

    notifier = FakeNotifier()
    ctx: Any = {"db": db, "settings": settings, "redis": redis_client, "notifier": notifier}
    [proposal] = await outbox(db, "commitment.created")
    assert await notify(ctx, proposal.id) == "sent"
    [mail] = notifier.sent
    assert mail.to == "contact@fablab-champs-libres.fr"
    assert mail.subject.startswith("Appel de crise « ") and " : proposition à accepter avant le " in mail.subject
    assert f"de « {found.group(3)} » pour CHU de Rennes" in mail.body
    assert "Cette proposition expire le " in mail.body and "(heure de Paris)" in mail.body
    assert f"{settings.api.public_url.rstrip('/')}/app/engagements" in mail.body
