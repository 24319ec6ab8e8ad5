"""Input values for procurement documents, money arithmetic, and the DocumentRenderer port."""

from __future__ import annotations

import enum
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

import msgspec

CENT = Decimal("0.01")
FR = "FR"


def money(value: Decimal) -> Decimal:
    """Round half-up to the cent (the only rounding used in documents)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class ChorusRequirement(enum.StrEnum):
    """What the buyer's Chorus Pro structure requires on invoices, hence on orders (DOC-3)."""

    NONE = "none"
    SERVICE = "service"
    ENGAGEMENT = "engagement"
    SERVICE_AND_ENGAGEMENT = "service_and_engagement"
    SERVICE_OR_ENGAGEMENT = "service_or_engagement"


class Address(msgspec.Struct, frozen=True, kw_only=True):
    line: str | None = None
    postcode: str
    commune: str
    country: str = FR
    insee: str | None = None


class Buyer(msgspec.Struct, frozen=True, kw_only=True):
    """The public buyer. ``service_code`` is BT-10, ``engagement_number`` BT-13 (the PO number)."""

    name: str
    siret: str  # 14 digits, scheme 0009
    address: Address
    service_code: str | None = None
    engagement_number: str | None = None
    chorus_requirement: ChorusRequirement = ChorusRequirement.NONE

    @property
    def siren(self) -> str:
        return self.siret[:9]


class Seller(msgspec.Struct, frozen=True, kw_only=True):
    """The workshop."""

    name: str
    siret: str
    address: Address | None = None

    @property
    def siren(self) -> str:
        return self.siret[:9]


class OrderLine(msgspec.Struct, frozen=True, kw_only=True):
    item_slug: str
    name: str
    quantity: Decimal
    unit_price: Decimal  # HT, per unit, in the document currency
    vat_rate: Decimal  # percent, e.g. Decimal("20")
    unit_code: str = "C62"  # UN/ECE Rec 20 "one" (piece)

    @property
    def total(self) -> Decimal:
        """Line net amount = quantity × unit price, rounded half-up to the cent."""
        return money(self.quantity * self.unit_price)


class TaxBreakdown(msgspec.Struct, frozen=True, kw_only=True):
    rate: Decimal
    basis: Decimal
    amount: Decimal


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    line_total: Decimal  # sum of the line net amounts (HT)
    taxes: tuple[TaxBreakdown, ...]  # one per VAT rate, ascending
    tax_total: Decimal
    grand_total: Decimal  # TTC = line_total + tax_total


class OrderDocument(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str  # the broker's id
    order_number: str  # the broker's human order number
    issue_date: date
    buyer: Buyer
    seller: Seller
    lines: tuple[OrderLine, ...]
    delivery_date: date | None = None
    delivery_address: Address | None = None
    currency: str = "EUR"

    @property
    def document_id(self) -> str:
        """The order's identifier in the documents: the buyer's PO number (engagement juridique) when it has
        one, which is what the workshop's invoice must quote in BT-13; otherwise the broker's order number."""
        return self.buyer.engagement_number or self.order_number

    def totals(self) -> Totals:
        """Line totals, VAT per rate (rounded once per rate, on the rate's basis) and the grand total."""
        line_total = sum((line.total for line in self.lines), Decimal("0.00"))
        bases: dict[Decimal, Decimal] = {}
        for line in self.lines:
            rate = line.vat_rate.normalize()
            bases[rate] = bases.get(rate, Decimal("0.00")) + line.total
        taxes = tuple(
            TaxBreakdown(rate=rate, basis=basis, amount=money(basis * rate / 100))
            for rate, basis in sorted(bases.items())
        )
        tax_total = sum((t.amount for t in taxes), Decimal("0.00"))
        return Totals(line_total=line_total, taxes=taxes, tax_total=tax_total, grand_total=line_total + tax_total)


class DocumentRenderer(Protocol):
    media_type: str

    def render(self, document: OrderDocument) -> bytes:
        """The document as XML bytes (UTF-8, with declaration). Raises ``Rejected`` for an unacceptable order."""
        ...
