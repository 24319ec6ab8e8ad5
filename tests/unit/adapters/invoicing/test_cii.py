"""Factur-X EN 16931 CII: the XSD, the EN 16931 mapping of each business term, the franchise en base, refusals."""

from __future__ import annotations

from decimal import Decimal

import facturx
import msgspec
import pytest
from invoicing_samples import (
    BUYER_SIRET,
    ENGAGEMENT,
    IBAN,
    SAFE_PARSER,
    SELLER_SIRET,
    SERVICE_CODE,
    credit_note,
    franchise_invoice,
    invoice,
)
from lxml import etree

from adapters.invoicing import cii
from adapters.invoicing.base import DocumentInvalid
from adapters.invoicing.cii import CiiInvoiceRenderer, build_cii, document_problems
from broker.domain.invoicing import FRANCHISE_MENTION, FRANCHISE_VATEX

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
SETTLEMENT = "//ram:ApplicableHeaderTradeSettlement"


def _xpath(xml: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(xml, SAFE_PARSER).xpath(path, namespaces=NS)]


@pytest.mark.parametrize("sample", [invoice, credit_note, franchise_invoice])
def test_passes_the_facturx_en16931_xsd(sample) -> None:
    xml = build_cii(sample())
    assert xml.startswith(b"<?xml")
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert facturx.get_level(etree.fromstring(xml, SAFE_PARSER)) == "en16931"


def test_header_and_references() -> None:
    xml = build_cii(invoice())
    assert _xpath(xml, "//rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID/text()"
                  ) == ["urn:cen.eu:en16931:2017"]
    assert _xpath(xml, "/rsm:*/rsm:ExchangedDocument/ram:ID/text()") == ["F-000042"]
    assert _xpath(xml, "/rsm:*/rsm:ExchangedDocument/ram:TypeCode/text()") == ["380"]
    assert _xpath(xml, "//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/text()") == ["20250620"]
    assert _xpath(xml, "//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference/text()") == [SERVICE_CODE]
    assert _xpath(xml, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID/text()") == [ENGAGEMENT]
    assert _xpath(xml, "//ram:ActualDeliverySupplyChainEvent//udt:DateTimeString/text()") == ["20250618"]
    assert _xpath(xml, "//ram:InvoiceReferencedDocument") == []


def test_parties() -> None:
    xml = build_cii(invoice())
    seller = "//ram:SellerTradeParty"
    assert _xpath(xml, f"{seller}/ram:Name/text()") == ["Fab Lab des Champs Libres"]
    assert _xpath(xml, f"{seller}/ram:GlobalID[@schemeID='0009']/text()") == [SELLER_SIRET]
    assert _xpath(xml, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']/text()") == [SELLER_SIRET[:9]]
    assert _xpath(xml, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']/text()") == ["FR19812345676"]
    buyer = "//ram:BuyerTradeParty"
    assert _xpath(xml, f"{buyer}/ram:Name/text()") == ["Commune de Rennes"]
    assert _xpath(xml, f"{buyer}/ram:GlobalID[@schemeID='0009']/text()") == [BUYER_SIRET]
    assert _xpath(xml, f"{buyer}/ram:URIUniversalCommunication/ram:URIID[@schemeID='0009']/text()") == [BUYER_SIRET]
    assert _xpath(xml, f"{buyer}/ram:PostalTradeAddress/ram:CountryID/text()") == ["FR"]
    assert _xpath(xml, f"{buyer}/ram:PostalTradeAddress/ram:PostcodeCode/text()") == ["35000"]


def test_lines_vat_and_totals() -> None:
    xml = build_cii(invoice())
    line = "//ram:IncludedSupplyChainTradeLineItem"
    assert _xpath(xml, f"{line}/ram:AssociatedDocumentLineDocument/ram:LineID/text()") == ["1", "2", "3"]
    assert _xpath(xml, f"{line}//ram:BilledQuantity/@unitCode") == ["C62", "C62", "HUR"]
    assert _xpath(xml, f"{line}//ram:NetPriceProductTradePrice/ram:ChargeAmount/text()") == ["48.50", "3.25", "65.00"]
    assert _xpath(xml, f"{line}//ram:LineTotalAmount/text()") == ["582.00", "130.00", "195.00"]
    assert _xpath(xml, f"{line}//ram:ApplicableTradeTax/ram:CategoryCode/text()") == ["S"] * 3
    assert _xpath(xml, f"{line}//ram:SellerAssignedID/text()") == ["panneau-grave", "support-3d"]
    assert _xpath(xml, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:RateApplicablePercent/text()") == ["20"]
    assert _xpath(xml, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:BasisAmount/text()") == ["907.00"]
    assert _xpath(xml, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:CalculatedAmount/text()") == ["181.40"]
    summation = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    values = {name: _xpath(xml, f"{summation}/ram:{name}/text()")[0] for name in (
        "LineTotalAmount", "TaxBasisTotalAmount", "TaxTotalAmount", "GrandTotalAmount", "DuePayableAmount")}
    assert values == {"LineTotalAmount": "907.00", "TaxBasisTotalAmount": "907.00", "TaxTotalAmount": "181.40",
                      "GrandTotalAmount": "1088.40", "DuePayableAmount": "1088.40"}
    assert _xpath(xml, f"{summation}/ram:TaxTotalAmount/@currencyID") == ["EUR"]
    lines = sum(Decimal(v) for v in _xpath(xml, f"{line}//ram:LineTotalAmount/text()"))
    assert lines == Decimal(values["LineTotalAmount"])


def test_payment() -> None:
    xml = build_cii(invoice())
    assert _xpath(xml, f"{SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode/text()") == ["30"]
    assert _xpath(xml, "//ram:PayeePartyCreditorFinancialAccount/ram:IBANID/text()") == [IBAN]
    assert _xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString/text()") == ["20250720"]
    assert "R.2192-10" in _xpath(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description/text()")[0]


def test_credit_note_quotes_its_invoice() -> None:
    xml = build_cii(credit_note())
    assert _xpath(xml, "/rsm:*/rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    assert _xpath(xml, "/rsm:*/rsm:ExchangedDocument/ram:ID/text()") == ["AV-000003"]
    reference = f"{SETTLEMENT}/ram:InvoiceReferencedDocument"
    assert _xpath(xml, f"{reference}/ram:IssuerAssignedID/text()") == ["F-000042"]
    assert _xpath(xml, f"{reference}/ram:FormattedIssueDateTime/qdt:DateTimeString/text()") == ["20250620"]
    assert _xpath(xml, "//ram:GrandTotalAmount/text()") == ["234.00"]
    assert "F-000042" in _xpath(xml, "//ram:IncludedNote/ram:Content/text()")[0]


def test_franchise_en_base_is_exempt_with_the_293_b_mention() -> None:
    xml = build_cii(franchise_invoice())
    tax = f"{SETTLEMENT}/ram:ApplicableTradeTax"
    assert _xpath(xml, f"{tax}/ram:CategoryCode/text()") == ["E"]
    assert _xpath(xml, f"{tax}/ram:RateApplicablePercent/text()") == ["0"]
    assert _xpath(xml, f"{tax}/ram:CalculatedAmount/text()") == ["0.00"]
    assert _xpath(xml, f"{tax}/ram:ExemptionReason/text()") == [FRANCHISE_MENTION]
    assert _xpath(xml, f"{tax}/ram:ExemptionReasonCode/text()") == [FRANCHISE_VATEX]
    assert _xpath(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:CategoryCode/text()") == ["E", "E"]
    assert _xpath(xml, "//ram:TaxTotalAmount/text()") == ["0.00"]
    assert _xpath(xml, "//ram:GrandTotalAmount/text()") == ["930.00"]
    assert _xpath(xml, "//ram:IncludedNote/ram:Content/text()") == [FRANCHISE_MENTION]
    assert _xpath(xml, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration") == []


def test_franchise_mention_is_added_when_the_notes_lack_it() -> None:
    xml = build_cii(franchise_invoice(notes=()))
    assert _xpath(xml, "//ram:IncludedNote/ram:Content/text()") == [FRANCHISE_MENTION]


def test_without_service_code_nor_iban() -> None:
    xml = build_cii(invoice(service_code=None, iban=None))
    assert _xpath(xml, "//ram:BuyerReference") == []
    assert _xpath(xml, "//ram:SpecifiedTradeSettlementPaymentMeans") == []
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True


@pytest.mark.parametrize(("changes", "rule"), [
    ({"number": ""}, "BR-02"),
    ({"number": "   "}, "BR-02"),
    ({"lines": ()}, "BR-16"),
    ({"currency": "EURO"}, "BR-CL-04"),
    ({"order_reference": ""}, "BT-13"),
    ({"due_on": None, "payment_terms": None}, "BR-CO-25"),
])
def test_a_broken_document_raises(changes: dict[str, object], rule: str) -> None:
    with pytest.raises(DocumentInvalid, match=rule):
        CiiInvoiceRenderer().render(invoice(**changes))


def test_inconsistent_totals_and_identifiers_are_refused() -> None:
    document = invoice()
    wrong = msgspec.structs.replace(document.totals, total_cents=document.totals.total_cents + 1)
    assert any("BR-CO-15" in p for p in document_problems(invoice(totals=wrong)))
    bad_siret = msgspec.structs.replace(document.buyer, siret="21350238800018")
    assert any("buyer SIRET" in p for p in document_problems(invoice(buyer=bad_siret)))
    no_vat_number = msgspec.structs.replace(document.seller, vat_number=None)
    assert any("BR-S-02" in p for p in document_problems(invoice(seller=no_vat_number)))
    assert any("BT-25" in p for p in document_problems(credit_note(preceding_number=None)))
    assert document_problems(document) == []


def test_an_xsd_failure_raises_document_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cii, "_settlement", lambda transaction, document: None)  # drops a mandatory element
    with pytest.raises(DocumentInvalid, match="XSD"):
        build_cii(invoice())


def test_renderer_media_type() -> None:
    assert CiiInvoiceRenderer.media_type == "application/xml"
