"""PEPPOL BIS 3 Order (UBL 2.1): schema validation, mandatory PEPPOL elements, references, totals.

Validated against the official OASIS ``UBL-Order-2.1.xsd`` and its common library, as shipped in the project
(``adapters.invoicing.schemas``)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree
from procurement_samples import BUYER_SIRET, SAFE_PARSER, SELLER_SIRET, sample_order, with_buyer

from adapters.invoicing.schemas import validate_ubl
from adapters.procurement.base import ChorusRequirement
from adapters.procurement.peppol import PeppolOrderRenderer, build_peppol_order
from adapters.procurement.rules import ChorusReferenceMissing

NS = {
    "o": "urn:oasis:names:specification:ubl:schema:xsd:Order-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def _xpath(xml: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(xml, SAFE_PARSER).xpath(path, namespaces=NS)]


def test_validates_against_ubl_order_schema() -> None:
    assert validate_ubl(build_peppol_order(sample_order()), "Order") == []


def test_schema_is_not_vacuous() -> None:
    root = etree.fromstring(build_peppol_order(sample_order()), SAFE_PARSER)
    root.remove(root.find("cbc:ID", NS))
    assert validate_ubl(etree.tostring(root), "Order") != []
    root = etree.fromstring(build_peppol_order(sample_order()), SAFE_PARSER)
    price = root.find(".//cac:Price", NS)
    price.getparent().remove(price)
    price.tag = f"{{{NS['cac']}}}Bogus"
    root.find(".//cac:LineItem", NS).append(price)
    assert validate_ubl(etree.tostring(root), "Order") != []


def test_peppol_mandatory_elements() -> None:
    xml = build_peppol_order(sample_order())
    assert _xpath(xml, "/o:Order/cbc:CustomizationID/text()") == ["urn:fdc:peppol.eu:poacc:trns:order:3"]
    assert _xpath(xml, "/o:Order/cbc:ProfileID/text()") == ["urn:fdc:peppol.eu:poacc:bis:ordering:3"]
    assert _xpath(xml, "/o:Order/cbc:IssueDate/text()") == ["2025-03-01"]
    assert _xpath(xml, "/o:Order/cbc:DocumentCurrencyCode/text()") == ["EUR"]
    for party in ("BuyerCustomerParty", "SellerSupplierParty"):
        base = f"/o:Order/cac:{party}/cac:Party"
        assert _xpath(xml, f"{base}/cbc:EndpointID/@schemeID") == ["0009"]
        assert len(_xpath(xml, f"{base}/cac:PartyLegalEntity/cbc:RegistrationName/text()")) == 1
    assert _xpath(
        xml, "/o:Order/cac:SellerSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode/text()"
    ) == ["FR"]
    assert len(_xpath(xml, "/o:Order/cac:OrderLine/cac:LineItem/cbc:ID")) == 3
    assert _xpath(xml, "//cac:LineItem/cbc:Quantity/@unitCode") == ["C62"] * 3
    assert _xpath(xml, "//cac:LineItem/cac:Item/cbc:Name/text()")[0] == "Banc en chêne 2 m"


def test_buyer_siret_service_code_and_engagement() -> None:
    xml = build_peppol_order(sample_order())
    buyer = "/o:Order/cac:BuyerCustomerParty/cac:Party"
    assert _xpath(xml, f"{buyer}/cbc:EndpointID[@schemeID='0009']/text()") == [BUYER_SIRET]
    assert _xpath(xml, f"{buyer}/cac:PartyIdentification/cbc:ID[@schemeID='0009']/text()") == [BUYER_SIRET]
    assert _xpath(xml, f"{buyer}/cac:PartyLegalEntity/cbc:CompanyID[@schemeID='0002']/text()") == [BUYER_SIRET[:9]]
    assert _xpath(xml, "/o:Order/cac:SellerSupplierParty/cac:Party/cbc:EndpointID/text()") == [SELLER_SIRET]
    assert _xpath(xml, "/o:Order/cbc:CustomerReference/text()") == ["SERV-TECH-01"]
    assert _xpath(xml, "/o:Order/cbc:ID/text()") == ["EJ-2025-000417"]
    assert _xpath(xml, "/o:Order/cac:AdditionalDocumentReference/cbc:ID/text()") == ["CMD-2025-0042"]


def test_totals_consistent_in_the_document() -> None:
    xml = build_peppol_order(sample_order())
    lines = [Decimal(v) for v in _xpath(xml, "//cac:LineItem/cbc:LineExtensionAmount/text()")]
    quantities = [Decimal(v) for v in _xpath(xml, "//cac:LineItem/cbc:Quantity/text()")]
    prices = [Decimal(v) for v in _xpath(xml, "//cac:LineItem/cac:Price/cbc:PriceAmount/text()")]
    for line, qty, price in zip(lines, quantities, prices, strict=True):
        assert line == (qty * price).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    total = "/o:Order/cac:AnticipatedMonetaryTotal"
    assert Decimal(_xpath(xml, f"{total}/cbc:LineExtensionAmount/text()")[0]) == sum(lines) == Decimal("1527.15")
    tax = Decimal(_xpath(xml, "/o:Order/cac:TaxTotal/cbc:TaxAmount/text()")[0])
    assert tax == Decimal("295.33")
    assert Decimal(_xpath(xml, f"{total}/cbc:PayableAmount/text()")[0]) == sum(lines) + tax == Decimal("1822.48")
    assert set(_xpath(xml, "//@currencyID")) == {"EUR"}
    assert _xpath(xml, "//cac:ClassifiedTaxCategory/cbc:Percent/text()") == ["20", "20", "5.5"]


def test_service_only_buyer() -> None:
    xml = build_peppol_order(with_buyer(engagement_number=None, chorus_requirement=ChorusRequirement.SERVICE))
    assert _xpath(xml, "/o:Order/cbc:ID/text()") == ["CMD-2025-0042"]
    assert validate_ubl(xml, "Order") == []


def test_missing_engagement_raises_the_chorus_error() -> None:
    with pytest.raises(ChorusReferenceMissing) as caught:
        build_peppol_order(with_buyer(engagement_number="  "))
    assert caught.value.code == "chorus-reference-missing"
    assert caught.value.pointer == "/buyer/engagement_number"


def test_renderer_media_type() -> None:
    assert PeppolOrderRenderer.media_type == "application/vnd.peppol.order+xml"
    assert PeppolOrderRenderer().render(sample_order()).startswith(b"<?xml")
