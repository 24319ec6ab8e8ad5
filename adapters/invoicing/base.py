"""What an invoice document says, independent of its syntax (CII or UBL): the input of the renderers."""

from __future__ import annotations

from datetime import date
from typing import Protocol

import msgspec

from adapters.procurement.base import Address
from broker.domain.invoicing import InvoiceKind, Line, Totals, VatRegime


class Party(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    siret: str  # 14 digits: scheme 0009 (BT-29 / BT-46), SIREN (first 9) as legal registration (0002)
    address: Address
    vat_number: str | None = None  # FRkk + SIREN (BT-31 / BT-48)

    @property
    def siren(self) -> str:
        return self.siret[:9]


class InvoiceDocument(msgspec.Struct, frozen=True, kw_only=True):
    """One invoice (type 380) or credit note (381) as EN 16931 sees it. Amounts are euro cents."""

    kind: InvoiceKind
    number: str  # BT-1
    issue_date: date  # BT-2
    seller: Party
    seller_vat_regime: VatRegime
    buyer: Party
    lines: tuple[Line, ...]
    totals: Totals
    order_number: str  # the broker's order number
    order_reference: str  # BT-13: the engagement number when the buyer has one, else the order number
    service_code: str | None = None  # BT-10 (BuyerReference): the Chorus Pro service code
    engagement_number: str | None = None
    due_on: date | None = None  # BT-9
    payment_terms: str | None = None  # BT-20: the delay, the late-payment interest and the 40 € indemnity
    delivered_on: date | None = None  # BT-72: the service fait
    delivery_address: Address | None = None
    preceding_number: str | None = None  # BT-25: the invoice a credit note corrects
    preceding_issue_date: date | None = None  # BT-26
    notes: tuple[str, ...] = ()  # BT-22: the 293 B mention, a credit note's reason…
    iban: str | None = None  # BT-84 (credit transfer, code 30), when the seller gave one
    currency: str = "EUR"


class InvoiceRenderer(Protocol):
    media_type: str

    def render(self, document: InvoiceDocument) -> bytes:
        """The document's bytes, checked against its schema before they are returned (a failure is a bug,
        raised as ``DocumentInvalid``)."""
        ...


class DocumentInvalid(Exception):
    """A document the broker built failed its schema: a bug of the renderer, never the user's input."""
