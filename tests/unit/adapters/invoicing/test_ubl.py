"""PEPPOL BIS Billing 3 (UBL 2.1): the OASIS schema, the PEPPOL identifiers, the same content as the CII."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from invoicing_samples import (
    BUYER_SIRET,
    ENGAGEMENT,
    IBAN,
    MICRO_SIRET,
    SAFE_PARSER,
    SELLER_SIRET,
    SERVICE_CODE,
    credit_note,
    franchise_invoice,
    invoice,
)
from lxml import etree

from adapters.invoicing import ubl
from adapters.invoicing.base import DocumentInvalid
from adapters.invoicing.schemas import validate_ubl
from adapters.invoicing.ubl import UblInvoiceRenderer, build_ubl
from broker.domain.invoicing import FRANCHISE_MENTION, FRANCHISE_VATEX

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def _xpath(xml: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(xml, SAFE_PARSER).xpath(path, namespaces=NS)]


@pytest.mark.parametrize(("sample", "root"), [(invoice, "Invoice"), (credit_note, "CreditNote"),
                                              (franchise_invoice, "Invoice")])
def test_valid_against_the_oasis_schema(sample, root: str) -> None:
    xml = build_ubl(sample())
    assert etree.QName(etree.fromstring(xml, SAFE_PARSER)).localname == root
    assert validate_ubl(xml, root) == []


def test_peppol_header_and_references() -> None:
    xml = build_ubl(invoice())
    assert _xpath(xml, "/inv:Invoice/cbc:CustomizationID/text()") == [
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"]
    assert _xpath(xml, "/inv:Invoice/cbc:ProfileID/text()") == ["urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"]
    assert _xpath(xml, "/inv:Invoice/cbc:ID/text()") == ["F-000042"]
    assert _xpath(xml, "/inv:Invoice/cbc:IssueDate/text()") == ["2025-06-20"]
    assert _xpath(xml, "/inv:Invoice/cbc:DueDate/text()") == ["2025-07-20"]
    assert _xpath(xml, "/inv:Invoice/cbc:InvoiceTypeCode/text()") == ["380"]
    assert _xpath(xml, "/inv:Invoice/cbc:BuyerReference/text()") == [SERVICE_CODE]
    assert _xpath(xml, "/inv:Invoice/cac:OrderReference/cbc:ID/text()") == [ENGAGEMENT]
    assert _xpath(xml, "/inv:Invoice/cac:Delivery/cbc:ActualDeliveryDate/text()") == ["2025-06-18"]
    assert _xpath(xml, "/inv:Invoice/cac:PaymentMeans/cbc:PaymentMeansCode/text()") == ["30"]
    assert _xpath(xml, "/inv:Invoice/cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID/text()") == [IBAN]
    assert "R.2192-31" in _xpath(xml, "/inv:Invoice/cac:PaymentTerms/cbc:Note/text()")[0]


def test_parties_carry_siret_siren_and_vat_number() -> None:
    xml = build_ubl(invoice())
    for party, siret in (("AccountingSupplierParty", SELLER_SIRET), ("AccountingCustomerParty", BUYER_SIRET)):
        base = f"/inv:Invoice/cac:{party}/cac:Party"
        assert _xpath(xml, f"{base}/cbc:EndpointID[@schemeID='0009']/text()") == [siret]
        assert _xpath(xml, f"{base}/cac:PartyIdentification/cbc:ID[@schemeID='0009']/text()") == [siret]
        assert _xpath(xml, f"{base}/cac:PartyLegalEntity/cbc:CompanyID[@schemeID='0002']/text()") == [siret[:9]]
        assert _xpath(xml, f"{base}/cac:PostalAddress/cac:Country/cbc:IdentificationCode/text()") == ["FR"]
    seller = "/inv:Invoice/cac:AccountingSupplierParty/cac:Party"
    assert _xpath(xml, f"{seller}/cac:PartyTaxScheme/cbc:CompanyID/text()") == ["FR19812345676"]
    assert _xpath(xml, f"{seller}/cac:PartyTaxScheme/cac:TaxScheme/cbc:ID/text()") == ["VAT"]
    assert _xpath(xml, "//cac:AccountingCustomerParty//cac:PartyLegalEntity/cbc:RegistrationName/text()") == [
        "Commune de Rennes"]


def test_lines_tax_and_totals() -> None:
    xml = build_ubl(invoice())
    assert _xpath(xml, "//cac:InvoiceLine/cbc:ID/text()") == ["1", "2", "3"]
    assert _xpath(xml, "//cac:InvoiceLine/cbc:InvoicedQuantity/@unitCode") == ["C62", "C62", "HUR"]
    assert _xpath(xml, "//cac:InvoiceLine/cac:Price/cbc:PriceAmount/text()") == ["48.50", "3.25", "65.00"]
    assert _xpath(xml, "//cac:ClassifiedTaxCategory/cbc:ID/text()") == ["S"] * 3
    assert _xpath(xml, "//cac:ClassifiedTaxCategory/cbc:Percent/text()") == ["20"] * 3
    assert _xpath(xml, "/inv:Invoice/cac:TaxTotal/cbc:TaxAmount/text()") == ["181.40"]
    assert _xpath(xml, "//cac:TaxSubtotal/cbc:TaxableAmount/text()") == ["907.00"]
    total = "/inv:Invoice/cac:LegalMonetaryTotal"
    lines = sum(Decimal(v) for v in _xpath(xml, "//cac:InvoiceLine/cbc:LineExtensionAmount/text()"))
    assert Decimal(_xpath(xml, f"{total}/cbc:LineExtensionAmount/text()")[0]) == lines == Decimal("907.00")
    assert _xpath(xml, f"{total}/cbc:TaxInclusiveAmount/text()") == ["1088.40"]
    assert _xpath(xml, f"{total}/cbc:PayableAmount/text()") == ["1088.40"]
    assert set(_xpath(xml, "//@currencyID")) == {"EUR"}


def test_credit_note() -> None:
    xml = build_ubl(credit_note())
    assert _xpath(xml, "/cn:CreditNote/cbc:CreditNoteTypeCode/text()") == ["381"]
    assert _xpath(xml, "/cn:CreditNote/cbc:ID/text()") == ["AV-000003"]
    reference = "/cn:CreditNote/cac:BillingReference/cac:InvoiceDocumentReference"
    assert _xpath(xml, f"{reference}/cbc:ID/text()") == ["F-000042"]
    assert _xpath(xml, f"{reference}/cbc:IssueDate/text()") == ["2025-06-20"]
    assert _xpath(xml, "/cn:CreditNote/cac:OrderReference/cbc:ID/text()") == [ENGAGEMENT]
    assert _xpath(xml, "//cac:CreditNoteLine/cbc:CreditedQuantity/text()") == ["3"]
    assert _xpath(xml, "/cn:CreditNote/cac:LegalMonetaryTotal/cbc:PayableAmount/text()") == ["234.00"]


def test_a_credit_note_puts_its_due_date_in_the_payment_means() -> None:
    xml = build_ubl(credit_note(iban=IBAN, due_on=date(2025, 8, 1)))
    assert validate_ubl(xml, "CreditNote") == []
    assert _xpath(xml, "/cn:CreditNote/cac:PaymentMeans/cbc:PaymentDueDate/text()") == ["2025-08-01"]
    assert _xpath(xml, "/cn:CreditNote/cbc:DueDate") == []


def test_franchise_en_base_is_exempt_with_the_293_b_mention() -> None:
    xml = build_ubl(franchise_invoice())
    category = "/inv:Invoice/cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory"
    assert _xpath(xml, f"{category}/cbc:ID/text()") == ["E"]
    assert _xpath(xml, f"{category}/cbc:Percent/text()") == ["0"]
    assert _xpath(xml, f"{category}/cbc:TaxExemptionReasonCode/text()") == [FRANCHISE_VATEX]
    assert _xpath(xml, f"{category}/cbc:TaxExemptionReason/text()") == [FRANCHISE_MENTION]
    assert _xpath(xml, "/inv:Invoice/cac:TaxTotal/cbc:TaxAmount/text()") == ["0.00"]
    assert _xpath(xml, "//cac:ClassifiedTaxCategory/cbc:ID/text()") == ["E", "E"]
    assert _xpath(xml, "/inv:Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount/text()") == ["930.00"]
    assert _xpath(xml, "/inv:Invoice/cbc:Note/text()") == [FRANCHISE_MENTION]
    assert _xpath(xml, "//cac:AccountingSupplierParty//cbc:EndpointID/text()") == [MICRO_SIRET]
    assert _xpath(xml, "//cac:AccountingSupplierParty//cac:PartyTaxScheme") == []


def test_notes_are_one_peppol_note() -> None:
    xml = build_ubl(invoice(notes=("Première remarque.", "Seconde remarque.")))
    assert _xpath(xml, "/inv:Invoice/cbc:Note/text()") == ["Première remarque.\nSeconde remarque."]


def test_a_broken_document_raises() -> None:
    with pytest.raises(DocumentInvalid, match="BR-02"):
        UblInvoiceRenderer().render(invoice(number=""))


def test_a_schema_failure_raises_document_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ubl, "_totals", lambda root, document: None)  # drops the mandatory LegalMonetaryTotal
    with pytest.raises(DocumentInvalid, match=r"UBL 2\.1 Invoice schema"):
        build_ubl(invoice())


def test_renderer_media_type() -> None:
    assert UblInvoiceRenderer.media_type == "application/xml"
    assert UblInvoiceRenderer().render(invoice()).startswith(b"<?xml")
