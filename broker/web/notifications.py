"""The notifications in words: one French sentence per event, with the page of the object it is
about (an order, a request, an invitation, a crisis call, the maker's commitments…), grouped by
day in Paris time. Sentences use the event's numbers and the names of what it mentions
(`broker.domain.notifications.Inbox`), never an id or a status code."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta

import msgspec

from broker.domain.invoicing import LABELS, InvoiceKind, InvoiceStatus
from broker.domain.notifications import Notification, Party
from broker.web.labels import ORDER_STATUS, cents, day, km, moment, number, paris, rate_bp

NBSP = "\u00a0"


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One notification as the page shows it."""

    text: str
    href: str | None
    at: datetime
    time: str  # the hour in Paris (``14 h 05``): the day is the group's title
    unread: bool


class Day(msgspec.Struct, frozen=True, kw_only=True):
    title: str  # « Aujourd'hui », « Hier » or the date
    lines: list[Line]


#: What became of an order, by its new status (« La commande n° … a été expédiée »).
ORDER_MOVED = {
    "confirmed": "a été confirmée par l'atelier",
    "in_production": "est en production",
    "ready": "est prête à être expédiée",
    "shipped": "a été expédiée",
    "delivered": "a été réceptionnée par l'acheteur",
    "closed": "a été clôturée par l'acheteur",
    "cancelled": "a été annulée",
    "disputed": "est en litige",
}

#: Why a crisis call was allocated again (``crisis_call.rebalanced``'s reason).
REBALANCE_WHY = {
    "allocation": "première répartition",
    "decline": "après un refus",
    "expiry": "après une proposition restée sans réponse",
    "lag": "après un retard de production",
    "points_added": "après l'ajout de points de livraison",
    "quantity_raised": "après une hausse des quantités",
}


def quoted(text: object) -> str:
    return f"«{NBSP}{text}{NBSP}»"


def units(count: object) -> str:
    """``1 unité``, ``1 200 unités``."""
    n = count if isinstance(count, int) else 0
    return f"{number(n)}{NBSP}unité" + ("s" if n > 1 else "")


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _on(value: object) -> str:
    """An ISO date or date-time of a payload, as a French date (``12 décembre 2026``)."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return day(date.fromisoformat(value))
        except ValueError:
            return "—"
    return day(_when(value))


class _Speaker:
    """Writes the sentences of one page: the names it found and how communes are called."""

    def __init__(self, names: Mapping[str, Mapping[str, str]], commune: Callable[[str], str]) -> None:
        self.names, self.commune = names, commune

    def name(self, kind: str, ident: object, fallback: str) -> str:
        return self.names.get(kind, {}).get(str(ident), fallback)

    def request(self, ident: object) -> str:
        return quoted(self.name("request", ident, "votre demande"))

    def call(self, ident: object) -> str:
        return f"l'appel {quoted(self.name('call', ident, 'de crise'))}"

    def workshop(self, ident: object) -> str:
        return self.name("workshop", ident, "Un atelier")

    def point(self, ident: object) -> str:
        return self.name("point", ident, "un point de livraison")

    def say(self, n: Notification) -> tuple[str, str | None]:
        """The sentence of ``n`` and the page it links to: the method named after its type
        (``order.status_changed`` -> ``_order_status_changed``), one for each type of ``IN_APP``."""
        speak: Callable[[Mapping[str, object], Party], tuple[str, str | None]] = getattr(
            self, "_" + n.type.replace(".", "_"))
        return speak(n.data, n.party)

    # ---- requests, invitations, quotes --------------------------------------------------------

    def _workshop_verified(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        return "Les labels et certifications de votre atelier ont été vérifiés.", "/app/atelier"

    def _webhook_endpoint_disabled(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        return (f"Votre point de réception webhook {d.get('url')} a été désactivé{NBSP}: les événements restent "
                "consultables par l'API.", None)

    def _request_matched(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        invited = d.get("invited")
        if not isinstance(invited, int) or invited == 0:
            text = f"Aucun atelier n'a pu être invité à chiffrer {self.request(d.get('id'))}."
        else:
            invited_ = "invité" if invited == 1 else "invités"
            text = f"{self.request(d.get('id'))}{NBSP}: {_shops(invited)} {invited_} à chiffrer."
        return text, f"/app/demandes/{d.get('id')}#ateliers"

    def _request_window_closed(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        if d.get("status") == "closed":
            text = f"La période de devis de {self.request(d.get('id'))} est close sans aucun devis."
        else:
            text = f"La période de devis de {self.request(d.get('id'))} est close{NBSP}: vous pouvez attribuer."
        return text, f"/app/demandes/{d.get('id')}#devis"

    def _invitation_created(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        request = d.get("request")
        r: Mapping[str, object] = request if isinstance(request, dict) else {}
        commune = r.get("delivery_commune")
        where = f" à livrer à {self.commune(commune)}" if isinstance(commune, str) else ""
        distance = d.get("distance_km")
        near = f", à {km(distance)} de votre atelier" if isinstance(distance, int | float) else ""
        text = (f"Nouvelle invitation à chiffrer {quoted(r.get('name'))}{NBSP}: {units(r.get('quantity'))}{where} "
                f"avant le {_on(r.get('deadline'))}{near}.")
        return text, f"/app/invitations/{d.get('id')}"

    def _invitation_declined(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        text = (f"{self.workshop(d.get('workshop_id'))} a décliné l'invitation à chiffrer "
                f"{self.request(d.get('request_id'))}{NBSP}: {quoted(d.get('reason'))}.")
        return text, f"/app/demandes/{d.get('request_id')}#ateliers"

    def _quote_submitted(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        price = d.get("unit_price_cents")
        text = (f"Devis reçu de {self.workshop(d.get('workshop_id'))} pour {self.request(d.get('request_id'))}{NBSP}: "
                f"{units(d.get('quantity'))} à {cents(price if isinstance(price, int) else None)} HT l'unité.")
        return text, f"/app/demandes/{d.get('request_id')}#devis"

    def _quote_withdrawn(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        return (f"Un devis pour {self.request(d.get('request_id'))} a été retiré par son atelier.",
                f"/app/demandes/{d.get('request_id')}#devis")

    def _quote_accepted(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        number_ = self.name("order", d.get("order_id"), "")
        order = f"{NBSP}: commande n°{NBSP}{number_}" if number_ else ""
        return (f"Votre devis pour {self.request(d.get('request_id'))} est retenu{order}.",
                f"/app/commandes/{d.get('order_id')}")

    # ---- orders and invoices ------------------------------------------------------------------

    def _order_status_changed(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        to = str(d.get("to"))
        text = f"La commande n°{NBSP}{d.get('number')} {ORDER_MOVED.get(to, 'a changé de statut')}"
        if to == "shipped" and d.get("tracking"):
            text += f" (suivi{NBSP}: {d.get('tracking')})"
        if d.get("note"):
            text += f"{NBSP}: {quoted(d.get('note'))}"
        return text + ".", f"/app/commandes/{d.get('id')}"

    def _order_late(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        status = ORDER_STATUS.get(str(d.get("status")), "").lower()
        text = f"La commande n°{NBSP}{d.get('number')} n'est pas livrée à l'échéance de la demande"
        return text + (f" (statut{NBSP}: {status})." if status else "."), f"/app/commandes/{d.get('id')}"

    def _invoice_issued(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        total = d.get("total_cents")
        amount = cents(total if isinstance(total, int) else None)
        if d.get("kind") == InvoiceKind.CREDIT_NOTE:
            text = f"Avoir {d.get('number')} reçu{NBSP}: {amount} TTC."
        else:
            due = f", à payer avant le {_on(d.get('due_on'))} (date prévisionnelle)" if d.get("due_on") else ""
            text = f"Facture {d.get('number')} reçue{NBSP}: {amount} TTC{due}."
        return text, f"/app/commandes/{d.get('order_id')}#factures"

    def _invoice_status_changed(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        to = str(d.get("to"))
        status = LABELS[InvoiceStatus(to)] if to in {s.value for s in InvoiceStatus} else "a changé de statut"
        text = f"Facture {d.get('number')}{NBSP}: {status}"
        if d.get("reason"):
            text += f" ({quoted(d.get('reason'))})"
        if to == InvoiceStatus.DEPOSEE and d.get("due_on"):
            text += f", échéance le {_on(d.get('due_on'))}"
        return text + ".", f"/app/commandes/{d.get('order_id')}#factures"

    def _invoice_overdue(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        total, rate, indemnity = d.get("total_cents"), d.get("rate_bp"), d.get("indemnity_cents")
        text = (f"La facture {d.get('number')} de {cents(total if isinstance(total, int) else None)} TTC n'est pas "
                f"payée à son échéance du {_on(d.get('due_on'))}{NBSP}: des intérêts de retard courent au taux de "
                f"{rate_bp(rate if isinstance(rate, int) else None)} l'an et l'indemnité forfaitaire de "
                f"{cents(indemnity if isinstance(indemnity, int) else None)} est due.")
        return text, f"/app/commandes/{d.get('order_id')}#factures"

    def _decp_record_created(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        amount = d.get("amount_cents")
        text = (f"Les données essentielles du marché {self.request(d.get('request_id'))} "
                f"({cents(amount if isinstance(amount, int) else None)} HT) sont à publier avant le "
                f"{_on(d.get('due_on'))}.")
        return text, f"/app/demandes/{d.get('request_id')}"

    # ---- crisis calls and commitments ---------------------------------------------------------

    def _crisis_call_allocated(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        text = (f"Répartition de {self.call(d.get('id'))}{NBSP}: {units(d.get('committed'))} sur "
                f"{number(_int(d.get('requested')))} proposées à {_shops(d.get('commitments_created'))}")
        return text + _unmet(d) + ".", f"/app/crises/{d.get('id')}"

    def _crisis_call_rebalanced(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        why = REBALANCE_WHY.get(str(d.get("reason")), "")
        text = (f"Nouvelle répartition de {self.call(d.get('id'))}{f' ({why})' if why else ''}{NBSP}: "
                f"{units(d.get('units_moved'))} réattribuée" + ("s" if _int(d.get("units_moved")) > 1 else ""))
        return text + _unmet(d) + ".", f"/app/crises/{d.get('id')}"

    def _commitment_created(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        item = quoted(self.name("item", d.get("item"), "l'article demandé"))
        text = (f"Proposition d'engagement pour {self.call(d.get('call_id'))}{NBSP}: {units(d.get('quantity'))} de "
                f"{item} pour {self.point(d.get('delivery_point_id'))}, à accepter avant le "
                f"{moment(_when(d.get('expires_at')))}.")
        return text, f"/app/engagements#engagement-{d.get('id')}"

    def _commitment_accepted(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        text = (f"{self.workshop(d.get('workshop_id'))} s'engage à fournir {units(d.get('quantity'))} pour "
                f"{self.point(d.get('delivery_point_id'))} ({self.call(d.get('call_id'))}).")
        return text, f"/app/crises/{d.get('call_id')}"

    def _commitment_declined(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        text = (f"{self.workshop(d.get('workshop_id'))} a refusé de fournir {units(d.get('quantity'))} pour "
                f"{self.point(d.get('delivery_point_id'))} ({self.call(d.get('call_id'))}){NBSP}: "
                f"{quoted(d.get('reason'))}. Une nouvelle répartition suit.")
        return text, f"/app/crises/{d.get('call_id')}"

    def _commitment_expired(self, d: Mapping[str, object], party: Party) -> tuple[str, str | None]:
        if party == Party.PARTNER:
            return (f"Votre proposition d'engagement de {units(d.get('quantity'))} pour {self.call(d.get('call_id'))} "
                    "a expiré sans réponse.", "/app/engagements")
        return (f"Une proposition de {units(d.get('quantity'))} pour {self.call(d.get('call_id'))} est restée sans "
                "réponse. Une nouvelle répartition suit.", f"/app/crises/{d.get('call_id')}")

    def _commitment_cancelled(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        quantity = d.get("previous_quantity") or d.get("quantity")
        return (f"Votre engagement de {units(quantity)} pour {self.call(d.get('call_id'))} a été annulé.",
                "/app/engagements")

    def _commitment_resized(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        return (f"Votre engagement pour {self.call(d.get('call_id'))} passe de {units(d.get('previous_quantity'))} "
                f"à {units(d.get('quantity'))}.", f"/app/engagements#engagement-{d.get('id')}")

    def _commitment_completed(self, d: Mapping[str, object], _: Party) -> tuple[str, str | None]:
        text = (f"{self.workshop(d.get('workshop_id'))} a livré les {units(d.get('quantity'))} promises pour "
                f"{self.point(d.get('delivery_point_id'))} ({self.call(d.get('call_id'))}).")
        return text, f"/app/crises/{d.get('call_id')}"


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _shops(count: object) -> str:
    n = _int(count)
    return f"{number(n)}{NBSP}atelier" + ("s" if n > 1 else "")


def _unmet(d: Mapping[str, object]) -> str:
    unmet = _int(d.get("unmet"))
    return f", {units(unmet)} encore sans atelier" if unmet else ", tout est couvert"


def _day_title(value: date, today: date) -> str:
    if value == today:
        return "Aujourd'hui"
    if value == today - timedelta(days=1):
        return "Hier"
    return day(value)


def by_day(items: Sequence[Notification], names: Mapping[str, Mapping[str, str]], *, commune: Callable[[str], str],
           now: datetime) -> list[Day]:
    """The page's notifications (newest first) in sentences, grouped by their day in Paris; ``names``
    are the names of what they mention (`Inbox.names`)."""
    speaker = _Speaker(names, commune)
    today = paris(now).date()
    days: list[Day] = []
    for n in items:
        text, href = speaker.say(n)
        local = paris(n.at)
        title = _day_title(local.date(), today)
        if not days or days[-1].title != title:
            days.append(Day(title=title, lines=[]))
        days[-1].lines.append(Line(text=text, href=href, at=n.at, time=f"{local.hour}{NBSP}h{NBSP}{local.minute:02d}",
                                   unread=n.unread))
    return days
