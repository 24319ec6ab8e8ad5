"""E-mails to people, driven by the outbox: a maker is told of a new invitation, of an award
(its quote retenu) and of a crisis proposal, a buyer of a new quote and of a shipment, an
endpoint's owner that it was disabled (who is told of what: `broker.domain.notifications.BY_EMAIL`).
The relay enqueues one ``notify`` job per such event (job id ``notify:<outbox id>``); the job builds
the message here and hands it to the notifier (the log one by default, SMTP when
``BROKER_SMTP_HOST`` is set). Messages are in French: they go to the agents of a collectivité and
to workshop managers.

A crisis proposal lives only BROKER_CRISIS_COMMITMENT_EXPIRY_HOURS (2 h by default): its e-mail
leaves when it is made and says when it expires, rather than a reminder shortly before (there is
no job for one, and the maker's time to answer is what the e-mail should not eat into)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.notifications.base import Notifier, SmtpConfig
from adapters.notifications.email import make_notifier
from broker.db.models import (
    CatalogueItemRow,
    CrisisCallRow,
    DeliveryPointRow,
    OrderRow,
    OrganizationRow,
    OutboxRow,
    RequestRow,
    WorkshopRow,
)
from broker.domain.events import (
    CommitmentCreated,
    InvitationCreated,
    OrderStatusChanged,
    QuoteAccepted,
    QuoteSubmitted,
    WebhookEndpointDisabled,
    event_type,
)
from broker.domain.notifications import BY_EMAIL, EMAILED_TYPES, Party, parties
from broker.settings import NotificationSettings

PARIS = ZoneInfo("Europe/Paris")


def email_recipient(kind: str, *, org_id: str, partner_org_id: str | None) -> str | None:
    """The organisation an event of type ``kind`` may e-mail (its tenant, or the maker it names),
    or None when the type sends none. Whether it does depends on the payload for a status event
    (an order's shipment only): `message_for` decides; this is what the relay can know before."""
    for rule in BY_EMAIL:
        if rule.type == kind:
            return org_id if rule.party == Party.TENANT else partner_org_id
    return None


class Message(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    subject: str
    body: str


def _euros(cents: object) -> str:
    if not isinstance(cents, int):
        return "?"
    units, rest = divmod(cents, 100)
    return f"{units:,}".replace(",", "\u202f") + f",{rest:02d} €"


def _date(value: object) -> str:
    if not isinstance(value, str):
        return "?"
    try:
        return datetime.fromisoformat(value).strftime("%d/%m/%Y")
    except ValueError:
        return value


def _moment(value: object) -> str:
    """An ISO date-time as a French reader expects it, in Paris time: ``04/05/2026 à 14 h 05``."""
    if not isinstance(value, str):
        return "?"
    try:
        local = datetime.fromisoformat(value).astimezone(PARIS)
    except ValueError:
        return value
    return f"{local:%d/%m/%Y} à {local.hour} h {local.minute:02d}"


def _units(count: object) -> str:
    return f"{count} unité(s)"


async def _compose(
    session: AsyncSession, event: OutboxRow, *, org_name: str, public_url: str
) -> tuple[str, str] | None:
    data = event.payload
    sign = f"\n\n— Le courtier de fabrication\n{public_url}/\n"
    if event.type == event_type(QuoteAccepted):
        return await _award(session, data, org_name=org_name, public_url=public_url, sign=sign)
    if event.type == event_type(OrderStatusChanged):
        return await _shipment(session, data, org_name=org_name, public_url=public_url, sign=sign)
    if event.type == event_type(CommitmentCreated):
        return await _proposal(session, data, org_name=org_name, public_url=public_url, sign=sign)
    if event.type == event_type(InvitationCreated):
        request = data.get("request") if isinstance(data.get("request"), dict) else {}
        assert isinstance(request, dict)
        name = request.get("name") or request.get("item") or "une demande"
        subject = f"Nouvelle invitation à chiffrer : {name}"
        body = (
            f"Bonjour,\n\nL'atelier de {org_name} est invité à remettre un devis pour « {name} » : "
            f"{request.get('quantity', '?')} unité(s), à livrer dans la commune {request.get('delivery_commune', '?')} "
            f"avant le {_date(request.get('deadline'))}. Distance : {data.get('distance_km', '?')} km.\n\n"
            f"Référence de l'invitation : {data.get('id')}\nRéférence de la demande : {request.get('id')}\n\n"
            f"Répondez depuis votre espace ou par l'API : devis par POST /v1/requests/{request.get('id')}/quotes, "
            f"refus par POST /v1/invitations/{data.get('id')}/decline."
            + sign
        )
        return subject, body
    if event.type == event_type(QuoteSubmitted):
        quantity = data.get("quantity")
        unit = data.get("unit_price_cents")
        total = quantity * unit if isinstance(quantity, int) and isinstance(unit, int) else None
        subject = f"Nouveau devis reçu pour votre demande {data.get('request_id')}"
        body = (
            f"Bonjour,\n\n{org_name} a reçu un nouveau devis : {quantity} unité(s) à {_euros(unit)} HT l'unité, "
            f"soit {_euros(total)} HT.\n\nRéférence du devis : {data.get('id')}\n"
            f"Référence de la demande : {data.get('request_id')}\n\n"
            "Comparez les devis et attribuez la commande depuis votre espace ou par l'API."
            + sign
        )
        return subject, body
    if event.type == event_type(WebhookEndpointDisabled):
        subject = "Point de réception webhook désactivé"
        body = (
            f"Bonjour,\n\nLe point de réception {data.get('url')} de {org_name} a été désactivé : "
            f"{data.get('reason')}.\n\nLes événements restent consultables par GET /v1/events. Après correction, "
            f"réactivez-le (POST /v1/webhook-endpoints/{data.get('id')}/enable) puis renvoyez les messages en "
            f"échec (POST /v1/webhook-endpoints/{data.get('id')}/recover)."
            + sign
        )
        return subject, body
    return None


async def _award(
    session: AsyncSession, data: dict[str, object], *, org_name: str, public_url: str, sign: str
) -> tuple[str, str] | None:
    """``quote.accepted``, to the maker: its quote is retenu, the order is created."""
    order = await session.get(OrderRow, str(data.get("order_id")))
    request = await session.get(RequestRow, str(data.get("request_id")))
    if order is None or request is None:
        return None
    buyer = await session.get(OrganizationRow, order.buyer_org_id)
    who = buyer.name if buyer else "L'acheteur"
    subject = f"Devis retenu : commande n° {order.number} — {request.name}"
    body = (
        f"Bonjour,\n\n{who} a retenu le devis de {org_name} pour « {request.name} » : "
        f"commande n° {order.number}, {_units(order.quantity)} à {_euros(order.unit_price_cents)} HT l'unité, "
        f"livraison promise le {order.delivery_date:%d/%m/%Y}.\n\n"
        f"Confirmez la commande depuis votre espace : {public_url}/app/commandes/{order.id}\n"
        f"(ou par l'API : POST /v1/orders/{order.id}/transitions, vers « confirmed »)."
        + sign
    )
    return subject, body


async def _shipment(
    session: AsyncSession, data: dict[str, object], *, org_name: str, public_url: str, sign: str
) -> tuple[str, str] | None:
    """``order.status_changed`` to shipped, to the buyer (`message_for` let no other status through)."""
    order = await session.get(OrderRow, str(data.get("id")))
    if order is None:
        return None
    workshop = await session.get(WorkshopRow, order.workshop_id)
    request = await session.get(RequestRow, order.request_id)
    tracking = f" Suivi : {data['tracking']}." if data.get("tracking") else ""
    subject = f"Commande n° {order.number} expédiée"
    body = (
        f"Bonjour,\n\nL'atelier {workshop.name if workshop else ''} a expédié la commande n° {order.number} de "
        f"{org_name} : {_units(order.quantity)}, « {request.name if request else ''} ».{tracking}\n\n"
        f"À réception, confirmez la livraison depuis votre espace : {public_url}/app/commandes/{order.id}"
        + sign
    )
    return subject, body


async def _proposal(
    session: AsyncSession, data: dict[str, object], *, org_name: str, public_url: str, sign: str
) -> tuple[str, str] | None:
    """``commitment.created``, to the maker: units of a crisis call to accept before the proposal expires."""
    call = await session.get(CrisisCallRow, str(data.get("call_id")))
    point = await session.get(DeliveryPointRow, str(data.get("delivery_point_id")))
    item = await session.get(CatalogueItemRow, str(data.get("item")))
    if call is None or point is None:
        return None
    item_name = item.name if item else str(data.get("item"))
    expires = _moment(data.get("expires_at"))
    subject = f"Appel de crise « {call.name} » : proposition à accepter avant le {expires}"
    body = (
        f"Bonjour,\n\nL'appel de crise « {call.name} » propose à l'atelier de {org_name} de fournir "
        f"{_units(data.get('quantity'))} de « {item_name} » pour {point.label} ({data.get('distance_km', '?')} km), "
        f"à livrer avant le {_moment(data.get('deadline'))}.\n\n"
        f"Cette proposition expire le {expires} (heure de Paris) : sans réponse, les unités sont proposées à un "
        f"autre atelier. Acceptez-la ou refusez-la depuis votre espace : {public_url}/app/engagements"
        + sign
    )
    return subject, body


async def message_for(session: AsyncSession, *, outbox_id: str, public_url: str) -> Message | None:
    """The e-mail for this event, or None: not a type e-mailed (nor, for an order's status, a
    shipment), or the organisation it reaches gave no contact address (``contact_email``)."""
    event = await session.get(OutboxRow, outbox_id)
    if event is None or event.type not in EMAILED_TYPES or not parties(BY_EMAIL, event.type, event.payload):
        return None
    org_id = email_recipient(event.type, org_id=event.org_id, partner_org_id=event.partner_org_id)
    org = await session.get(OrganizationRow, org_id) if org_id else None
    if org is None or not org.contact_email:
        return None
    composed = await _compose(session, event, org_name=org.name, public_url=public_url.rstrip("/"))
    if composed is None:
        return None
    return Message(to=org.contact_email, subject=composed[0], body=composed[1])


def notifier_for(settings: NotificationSettings) -> Notifier:
    """The log notifier unless ``BROKER_SMTP_HOST`` is set (then SMTP; the sender is required)."""
    if settings.smtp_host is None:
        return make_notifier(None)
    if not settings.smtp_sender:
        raise RuntimeError("BROKER_SMTP_SENDER (the From address) is required with BROKER_SMTP_HOST")
    return make_notifier(SmtpConfig(
        host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_sender,
        username=settings.smtp_username, password=settings.smtp_password,
        starttls=settings.smtp_starttls and not settings.smtp_tls, use_tls=settings.smtp_tls,
    ))
