"""Checks before any document is produced: Chorus Pro references (DOC-3), identifiers, lines and amounts."""

from __future__ import annotations

import re
from decimal import Decimal

from adapters.procurement.base import Address, Buyer, ChorusRequirement, OrderDocument
from broker.domain.identifiers import is_postcode, siret_problem
from broker.errors import Rejected

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_UNIT = re.compile(r"^[A-Z0-9]{2,3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class ChorusReferenceMissing(Rejected):
    """The buyer's Chorus Pro structure requires a reference the order does not carry (422)."""

    code = "chorus-reference-missing"
    title = "Chorus Pro reference missing"


def _present(value: str | None) -> bool:
    return value is not None and value.strip() != ""


def check_chorus_references(buyer: Buyer, *, pointer_prefix: str = "/buyer") -> None:
    """Raise ``ChorusReferenceMissing`` when ``buyer.chorus_requirement`` is not met.

    ``service`` needs ``service_code`` (BT-10); ``engagement`` needs ``engagement_number`` (BT-13);
    ``service_and_engagement`` both; ``service_or_engagement`` at least one; ``none`` nothing."""
    has_service = _present(buyer.service_code)
    has_engagement = _present(buyer.engagement_number)
    service_ptr = f"{pointer_prefix}/service_code"
    engagement_ptr = f"{pointer_prefix}/engagement_number"
    requirement = buyer.chorus_requirement
    if requirement in (ChorusRequirement.SERVICE, ChorusRequirement.SERVICE_AND_ENGAGEMENT) and not has_service:
        raise ChorusReferenceMissing(
            f"this buyer's Chorus Pro structure requires a service code (requirement: {requirement})",
            pointer=service_ptr, figures={"missing": "service"},
        )
    if requirement in (ChorusRequirement.ENGAGEMENT, ChorusRequirement.SERVICE_AND_ENGAGEMENT) and not has_engagement:
        raise ChorusReferenceMissing(
            f"this buyer's Chorus Pro structure requires an engagement number (requirement: {requirement})",
            pointer=engagement_ptr, figures={"missing": "engagement"},
        )
    if requirement is ChorusRequirement.SERVICE_OR_ENGAGEMENT and not (has_service or has_engagement):
        raise ChorusReferenceMissing(
            "this buyer's Chorus Pro structure requires a service code or an engagement number",
            pointer=engagement_ptr, figures={"missing": "service_or_engagement"},
        )


def _check_address(address: Address, pointer: str) -> None:
    if not _COUNTRY.fullmatch(address.country):
        raise Rejected("a country is an ISO 3166-1 alpha-2 code", pointer=f"{pointer}/country")
    if address.country == "FR" and not is_postcode(address.postcode):
        raise Rejected("a French postcode is 5 digits", pointer=f"{pointer}/postcode")
    if not address.commune.strip():
        raise Rejected("the commune is required", pointer=f"{pointer}/commune")


def validate_document(document: OrderDocument) -> None:
    """Everything a document needs before rendering; raises ``Rejected`` (or ``ChorusReferenceMissing``)."""
    for pointer, siret in (("/buyer/siret", document.buyer.siret), ("/seller/siret", document.seller.siret)):
        problem = siret_problem(siret)
        if problem:
            raise Rejected(problem, pointer=pointer)
    check_chorus_references(document.buyer)
    _check_address(document.buyer.address, "/buyer/address")
    if document.seller.address is not None:
        _check_address(document.seller.address, "/seller/address")
    if document.delivery_address is not None:
        _check_address(document.delivery_address, "/delivery_address")
    if not _CURRENCY.fullmatch(document.currency):
        raise Rejected("the currency is an ISO 4217 code", pointer="/currency")
    if not document.buyer.name.strip() or not document.seller.name.strip():
        raise Rejected("buyer and seller names are required", pointer="/buyer/name")
    if not document.order_number.strip():
        raise Rejected("the order number is required", pointer="/order_number")
    if not document.lines:
        raise Rejected("an order has at least one line", pointer="/lines")
    for index, line in enumerate(document.lines):
        where = f"/lines/{index}"
        if not line.quantity.is_finite() or line.quantity <= 0:
            raise Rejected("a quantity is positive", pointer=f"{where}/quantity")
        if not line.unit_price.is_finite() or line.unit_price < 0:
            raise Rejected("a unit price is zero or more", pointer=f"{where}/unit_price")
        if not line.vat_rate.is_finite() or not Decimal(0) <= line.vat_rate <= Decimal(100):
            raise Rejected("a VAT rate is a percentage between 0 and 100", pointer=f"{where}/vat_rate")
        if not _UNIT.fullmatch(line.unit_code):
            raise Rejected("a unit code is a UN/ECE Rec 20 code such as C62", pointer=f"{where}/unit_code")
        if not line.name.strip():
            raise Rejected("a line has a name", pointer=f"{where}/name")
