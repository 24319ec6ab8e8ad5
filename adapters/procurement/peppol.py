"""PEPPOL BIS Ordering 3, T01 Order (UBL 2.1 ``Order-2``), built with lxml.

Mapping: ``cbc:ID`` = ``document_id`` (engagement number, else the broker's order number: the Order ID is the
buyer's PO number, which the workshop's invoice quotes as BT-13); ``cbc:CustomerReference`` = service code
(BT-10); the broker's order number is an ``AdditionalDocumentReference``; both parties have
``EndpointID``/``PartyIdentification/ID`` with ``schemeID="0009"`` (SIRET) and ``CompanyID`` with ``0002`` (SIREN).
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from adapters.procurement.base import Address, Buyer, OrderDocument, Seller
from adapters.procurement.orderx import amount, decimal_text
from adapters.procurement.rules import validate_document
from adapters.xml_tree import sub as _sub

ORDER = "urn:oasis:names:specification:ubl:schema:xsd:Order-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NSMAP = {None: ORDER, "cac": CAC, "cbc": CBC}
CUSTOMIZATION_ID = "urn:fdc:peppol.eu:poacc:trns:order:3"
PROFILE_ID = "urn:fdc:peppol.eu:poacc:bis:ordering:3"
MEDIA_TYPE = "application/vnd.peppol.order+xml"


def _address(parent: etree._Element, tag: str, address: Address) -> None:
    element = _sub(parent, CAC, tag)
    if address.line:
        _sub(element, CBC, "StreetName", address.line)
    if address.commune:
        _sub(element, CBC, "CityName", address.commune)
    if address.postcode:
        _sub(element, CBC, "PostalZone", address.postcode)
    country = _sub(element, CAC, "Country")
    _sub(country, CBC, "IdentificationCode", address.country)


def _party(parent: etree._Element, tag: str, party: Buyer | Seller) -> None:
    wrapper = _sub(parent, CAC, tag)
    element = _sub(wrapper, CAC, "Party")
    _sub(element, CBC, "EndpointID", party.siret, schemeID="0009")
    identification = _sub(element, CAC, "PartyIdentification")
    _sub(identification, CBC, "ID", party.siret, schemeID="0009")
    name = _sub(element, CAC, "PartyName")
    _sub(name, CBC, "Name", party.name)
    # PEPPOL requires the seller's country; a seller without an address is placed in France.
    _address(element, "PostalAddress", party.address or Address(postcode="", commune="", country="FR"))
    legal = _sub(element, CAC, "PartyLegalEntity")
    _sub(legal, CBC, "RegistrationName", party.name)
    _sub(legal, CBC, "CompanyID", party.siren, schemeID="0002")


def _tax_category(rate: Decimal) -> str:
    return "S" if rate > 0 else "Z"


def build_peppol_order(document: OrderDocument) -> bytes:
    """The PEPPOL BIS 3 Order (UBL 2.1) XML of ``document`` (UTF-8). Raises ``Rejected``."""
    validate_document(document)
    totals = document.totals()
    cur = document.currency
    root = etree.Element(f"{{{ORDER}}}Order", nsmap=NSMAP)
    _sub(root, CBC, "CustomizationID", CUSTOMIZATION_ID)
    _sub(root, CBC, "ProfileID", PROFILE_ID)
    _sub(root, CBC, "ID", document.document_id)
    _sub(root, CBC, "IssueDate", document.issue_date.isoformat())
    _sub(root, CBC, "OrderTypeCode", "220")
    _sub(root, CBC, "Note", f"Broker order {document.order_number} ({document.order_id})")
    _sub(root, CBC, "DocumentCurrencyCode", cur)
    if document.buyer.service_code:
        _sub(root, CBC, "CustomerReference", document.buyer.service_code)
    reference = _sub(root, CAC, "AdditionalDocumentReference")
    _sub(reference, CBC, "ID", document.order_number)
    _sub(reference, CBC, "DocumentType", "Broker order number")

    _party(root, "BuyerCustomerParty", document.buyer)
    _party(root, "SellerSupplierParty", document.seller)

    if document.delivery_address is not None or document.delivery_date is not None:
        delivery = _sub(root, CAC, "Delivery")
        if document.delivery_address is not None:
            location = _sub(delivery, CAC, "DeliveryLocation")
            _address(location, "Address", document.delivery_address)
        if document.delivery_date is not None:
            period = _sub(delivery, CAC, "RequestedDeliveryPeriod")
            _sub(period, CBC, "StartDate", document.delivery_date.isoformat())
            _sub(period, CBC, "EndDate", document.delivery_date.isoformat())

    tax_total = _sub(root, CAC, "TaxTotal")
    _sub(tax_total, CBC, "TaxAmount", amount(totals.tax_total), currencyID=cur)

    monetary = _sub(root, CAC, "AnticipatedMonetaryTotal")
    _sub(monetary, CBC, "LineExtensionAmount", amount(totals.line_total), currencyID=cur)
    _sub(monetary, CBC, "TaxExclusiveAmount", amount(totals.line_total), currencyID=cur)
    _sub(monetary, CBC, "TaxInclusiveAmount", amount(totals.grand_total), currencyID=cur)
    _sub(monetary, CBC, "PayableAmount", amount(totals.grand_total), currencyID=cur)

    for number, line in enumerate(document.lines, start=1):
        order_line = _sub(root, CAC, "OrderLine")
        item_line = _sub(order_line, CAC, "LineItem")
        _sub(item_line, CBC, "ID", str(number))
        _sub(item_line, CBC, "Quantity", decimal_text(line.quantity), unitCode=line.unit_code)
        _sub(item_line, CBC, "LineExtensionAmount", amount(line.total), currencyID=cur)
        price = _sub(item_line, CAC, "Price")
        _sub(price, CBC, "PriceAmount", decimal_text(line.unit_price), currencyID=cur)
        item = _sub(item_line, CAC, "Item")
        _sub(item, CBC, "Name", line.name)
        buyers_id = _sub(item, CAC, "BuyersItemIdentification")
        _sub(buyers_id, CBC, "ID", line.item_slug)
        category = _sub(item, CAC, "ClassifiedTaxCategory")
        _sub(category, CBC, "ID", _tax_category(line.vat_rate))
        _sub(category, CBC, "Percent", decimal_text(line.vat_rate))
        scheme = _sub(category, CAC, "TaxScheme")
        _sub(scheme, CBC, "ID", "VAT")

    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


class PeppolOrderRenderer:
    media_type = MEDIA_TYPE

    def render(self, document: OrderDocument) -> bytes:
        return build_peppol_order(document)
