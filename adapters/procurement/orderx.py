"""Order-X BASIC (UN/CEFACT Cross Industry Order, D20B), TypeCode 220, built with lxml.

Mapping: ``ExchangedDocument/ID`` = ``document_id`` (engagement number, else the broker's order number);
``BuyerReference`` = service code (BT-10); ``BuyerOrderReferencedDocument/IssuerAssignedID`` = engagement
number (BT-13); both parties carry ``GlobalID[@schemeID=0009]`` (SIRET) and
``SpecifiedLegalOrganization/ID[@schemeID=0002]`` (SIREN); the broker's order number is an ``IncludedNote``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from adapters.procurement.base import Address, Buyer, OrderDocument, Seller
from adapters.procurement.rules import validate_document
from adapters.xml_tree import cii_address, cii_date
from adapters.xml_tree import sub as _sub

RSM = "urn:un:unece:uncefact:data:SCRDMCCBDACIOMessageStructure:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:128"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:128"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:128"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
PROFILE_BASIC = "urn:order-x.eu:1p0:basic"
TYPE_ORDER = "220"
MEDIA_TYPE = "application/vnd.order-x+xml"


def amount(value: Decimal) -> str:
    return f"{value:.2f}"


def decimal_text(value: Decimal) -> str:
    """A plain decimal (no exponent, no trailing zeros beyond what is needed)."""
    return format(value.normalize(), "f")


def _date(parent: etree._Element, tag: str, day: date) -> None:
    cii_date(parent, tag, day, ram=RAM, udt=UDT)


def _address(parent: etree._Element, address: Address) -> None:
    cii_address(parent, address, ram=RAM)


def _party(parent: etree._Element, tag: str, party: Buyer | Seller) -> None:
    element = _sub(parent, RAM, tag)
    _sub(element, RAM, "GlobalID", party.siret, schemeID="0009")
    _sub(element, RAM, "Name", party.name)
    legal = _sub(element, RAM, "SpecifiedLegalOrganization")
    _sub(legal, RAM, "ID", party.siren, schemeID="0002")
    if party.address is not None:
        _address(element, party.address)


def build_orderx(document: OrderDocument) -> bytes:
    """The Order-X BASIC XML of ``document`` (UTF-8). Raises ``Rejected`` / ``ChorusReferenceMissing``."""
    validate_document(document)
    totals = document.totals()
    root = etree.Element(f"{{{RSM}}}SCRDMCCBDACIOMessageStructure", nsmap=NSMAP)

    context = _sub(root, RSM, "ExchangedDocumentContext")
    guideline = _sub(context, RAM, "GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, RAM, "ID", PROFILE_BASIC)

    header = _sub(root, RSM, "ExchangedDocument")
    _sub(header, RAM, "ID", document.document_id)
    _sub(header, RAM, "TypeCode", TYPE_ORDER)
    _date(header, "IssueDateTime", document.issue_date)
    note = _sub(header, RAM, "IncludedNote")
    _sub(note, RAM, "Content", f"Broker order {document.order_number} ({document.order_id})")

    transaction = _sub(root, RSM, "SupplyChainTradeTransaction")
    for number, line in enumerate(document.lines, start=1):
        item = _sub(transaction, RAM, "IncludedSupplyChainTradeLineItem")
        line_doc = _sub(item, RAM, "AssociatedDocumentLineDocument")
        _sub(line_doc, RAM, "LineID", str(number))
        product = _sub(item, RAM, "SpecifiedTradeProduct")
        _sub(product, RAM, "BuyerAssignedID", line.item_slug)
        _sub(product, RAM, "Name", line.name)
        agreement = _sub(item, RAM, "SpecifiedLineTradeAgreement")
        price = _sub(agreement, RAM, "NetPriceProductTradePrice")
        _sub(price, RAM, "ChargeAmount", decimal_text(line.unit_price))
        delivery = _sub(item, RAM, "SpecifiedLineTradeDelivery")
        _sub(delivery, RAM, "RequestedQuantity", decimal_text(line.quantity), unitCode=line.unit_code)
        settlement = _sub(item, RAM, "SpecifiedLineTradeSettlement")
        summation = _sub(settlement, RAM, "SpecifiedTradeSettlementLineMonetarySummation")
        _sub(summation, RAM, "LineTotalAmount", amount(line.total))

    agreement = _sub(transaction, RAM, "ApplicableHeaderTradeAgreement")
    if document.buyer.service_code:
        _sub(agreement, RAM, "BuyerReference", document.buyer.service_code)
    _party(agreement, "SellerTradeParty", document.seller)
    _party(agreement, "BuyerTradeParty", document.buyer)
    if document.buyer.engagement_number:
        reference = _sub(agreement, RAM, "BuyerOrderReferencedDocument")
        _sub(reference, RAM, "IssuerAssignedID", document.buyer.engagement_number)

    delivery = _sub(transaction, RAM, "ApplicableHeaderTradeDelivery")
    if document.delivery_address is not None:
        ship_to = _sub(delivery, RAM, "ShipToTradeParty")
        _sub(ship_to, RAM, "Name", document.buyer.name)
        _address(ship_to, document.delivery_address)
    if document.delivery_date is not None:
        event = _sub(delivery, RAM, "RequestedDeliverySupplyChainEvent")
        _date(event, "OccurrenceDateTime", document.delivery_date)

    settlement = _sub(transaction, RAM, "ApplicableHeaderTradeSettlement")
    _sub(settlement, RAM, "OrderCurrencyCode", document.currency)
    summation = _sub(settlement, RAM, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(summation, RAM, "LineTotalAmount", amount(totals.line_total))
    _sub(summation, RAM, "TaxBasisTotalAmount", amount(totals.line_total))
    _sub(summation, RAM, "TaxTotalAmount", amount(totals.tax_total), currencyID=document.currency)
    _sub(summation, RAM, "GrandTotalAmount", amount(totals.grand_total))

    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


class OrderXRenderer:
    media_type = MEDIA_TYPE

    def render(self, document: OrderDocument) -> bytes:
        return build_orderx(document)
