"""E-mails to people, driven by the outbox: a maker is told of a new invitation, a buyer of a new
quote, an endpoint's owner that it was disabled. The relay enqueues one ``notify`` job per such
event (job id ``notify:<outbox id>``); the job builds the message here and hands it to the notifier
(the log one by default, SMTP when ``BROKER_SMTP_HOST`` is set). Messages are in French: they go to
the agents of a collectivité and to workshop managers."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import OrganizationRow, OutboxRow
from broker.domain.events import InvitationCreated, QuoteSubmitted, WebhookEndpointDisabled, event_type
from broker.services.webhooks import NOTIFY_TYPES


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


def _compose(event: OutboxRow, *, org_name: str, public_url: str) -> tuple[str, str] | None:
    data = event.payload
    sign = f"\n\n— Le courtier de fabrication\n{public_url}/\n"
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


async def message_for(session: AsyncSession, *, outbox_id: str, public_url: str) -> Message | None:
    """The e-mail for this event, or None: not a notified type, or the organisation gave no
    contact address (``contact_email``)."""
    event = await session.get(OutboxRow, outbox_id)
    if event is None or event.type not in NOTIFY_TYPES:
        return None
    org = await session.get(OrganizationRow, event.org_id)
    if org is None or not org.contact_email:
        return None
    composed = _compose(event, org_name=org.name, public_url=public_url.rstrip("/"))
    if composed is None:
        return None
    return Message(to=org.contact_email, subject=composed[0], body=composed[1])
