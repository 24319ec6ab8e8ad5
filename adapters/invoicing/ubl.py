"""PEPPOL BIS Billing 3.0 invoices (UBL 2.1 ``Invoice``, 380) and credit notes (``CreditNote``, 381), with lxml.

Same content as the Factur-X CII (``adapters.invoicing.cii``): ``BuyerReference`` = BT-10 service code,
``OrderReference/ID`` = BT-13 ``order_reference``, ``BillingReference/InvoiceDocumentReference`` = BT-25 / BT-26
for a credit note; both parties carry ``EndpointID`` and ``PartyIdentification/ID`` with ``schemeID="0009"``
(SIRET), ``PartyLegalEntity/CompanyID`` with ``0002`` (SIREN) and, when known, ``PartyTaxScheme`` with the VAT
number. Elements follow the sequence of the OASIS schema, which every output is validated against.

PEPPOL-specific choices: the notes (BT-22) are joined into one ``cbc:Note`` (PEPPOL-EN16931-R002 allows a single
one); a credit note has no ``cbc:DueDate`` in UBL, so its due date (BT-9) goes to ``PaymentMeans/PaymentDueDate``
and is left out when there is no payment means (no IBAN); the payment terms (BT-20) still carry the delay."""

from __future__ import annotations

from typing import NamedTuple

from lxml import etree

from adapters.invoicing.base import DocumentInvalid, InvoiceDocument, Party
from adapters.invoicing.cii import (
    CREDIT_TRANSFER,
    SIREN_SCHEME,
    SIRET_SCHEME,
    amount,
    check,
    line_tax,
    notes,
    percent,
)
from adapters.invoicing.schemas import UblDocument, validate_ubl
from adapters.procurement.base import Address
from adapters.xml_tree import sub as _sub
from broker.domain.invoicing import TYPE_CODE, InvoiceKind, Line, VatBreakdown

INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
MEDIA_TYPE = "application/xml"


class _Syntax(NamedTuple):
    """What differs between the two UBL document types."""

    root: UblDocument
    namespace: str
    type_code: str
    line: str
    quantity: str


_SYNTAX = {
    InvoiceKind.INVOICE: _Syntax("Invoice", INVOICE, "InvoiceTypeCode", "InvoiceLine", "InvoicedQuantity"),
    InvoiceKind.CREDIT_NOTE: _Syntax("CreditNote", CREDIT_NOTE, "CreditNoteTypeCode", "CreditNoteLine",
                                     "CreditedQuantity"),
}


def _address(parent: etree._Element, tag: str, address: Address) -> None:
    element = _sub(parent, CAC, tag)
    if address.line:
        _sub(element, CBC, "StreetName", address.line)
    _sub(element, CBC, "CityName", address.commune)
    _sub(element, CBC, "PostalZone", address.postcode)
    _sub(_sub(element, CAC, "Country"), CBC, "IdentificationCode", address.country)


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    element = _sub(_sub(parent, CAC, tag), CAC, "Party")
    _sub(element, CBC, "EndpointID", party.siret, schemeID=SIRET_SCHEME)
    _sub(_sub(element, CAC, "PartyIdentification"), CBC, "ID", party.siret, schemeID=SIRET_SCHEME)
    _sub(_sub(element, CAC, "PartyName"), CBC, "Name", party.name)
    _address(element, "PostalAddress", party.address)
    if party.vat_number:
        scheme = _sub(element, CAC, "PartyTaxScheme")
        _sub(scheme, CBC, "CompanyID", party.vat_number)
        _sub(_sub(scheme, CAC, "TaxScheme"), CBC, "ID", "VAT")
    legal = _sub(element, CAC, "PartyLegalEntity")
    _sub(legal, CBC, "RegistrationName", party.name)
    _sub(legal, CBC, "CompanyID", party.siren, schemeID=SIREN_SCHEME)


def _tax_category(parent: etree._Element, tag: str, category: str, rate_bp: int,
                  breakdown: VatBreakdown | None = None) -> None:
    element = _sub(parent, CAC, tag)
    _sub(element, CBC, "ID", category)
    _sub(element, CBC, "Percent", percent(rate_bp))
    if breakdown is not None and breakdown.exemption_code:
        _sub(element, CBC, "TaxExemptionReasonCode", breakdown.exemption_code)
    if breakdown is not None and breakdown.exemption_reason:
        _sub(element, CBC, "TaxExemptionReason", breakdown.exemption_reason)
    _sub(_sub(element, CAC, "TaxScheme"), CBC, "ID", "VAT")


def _line(root: etree._Element, syntax: _Syntax, number: int, line: Line, document: InvoiceDocument) -> None:
    cur = document.currency
    element = _sub(root, CAC, syntax.line)
    _sub(element, CBC, "ID", str(number))
    _sub(element, CBC, syntax.quantity, str(line.quantity), unitCode=line.unit_code)
    _sub(element, CBC, "LineExtensionAmount", amount(line.net_cents), currencyID=cur)
    item = _sub(element, CAC, "Item")
    _sub(item, CBC, "Name", line.name)
    if line.item:
        _sub(_sub(item, CAC, "SellersItemIdentification"), CBC, "ID", line.item)
    category, rate = line_tax(line, document.seller_vat_regime)
    _tax_category(item, "ClassifiedTaxCategory", category, rate)
    _sub(_sub(element, CAC, "Price"), CBC, "PriceAmount", amount(line.unit_price_cents), currencyID=cur)


def _header(root: etree._Element, syntax: _Syntax, document: InvoiceDocument) -> None:
    _sub(root, CBC, "CustomizationID", CUSTOMIZATION_ID)
    _sub(root, CBC, "ProfileID", PROFILE_ID)
    _sub(root, CBC, "ID", document.number)
    _sub(root, CBC, "IssueDate", document.issue_date.isoformat())
    if document.kind is InvoiceKind.INVOICE and document.due_on is not None:
        _sub(root, CBC, "DueDate", document.due_on.isoformat())
    _sub(root, CBC, syntax.type_code, TYPE_CODE[document.kind])
    text = "\n".join(notes(document))
    if text:
        _sub(root, CBC, "Note", text)
    _sub(root, CBC, "DocumentCurrencyCode", document.currency)
    if document.service_code:
        _sub(root, CBC, "BuyerReference", document.service_code)
    _sub(_sub(root, CAC, "OrderReference"), CBC, "ID", document.order_reference)
    if document.preceding_number:
        reference = _sub(_sub(root, CAC, "BillingReference"), CAC, "InvoiceDocumentReference")
        _sub(reference, CBC, "ID", document.preceding_number)
        if document.preceding_issue_date is not None:
            _sub(reference, CBC, "IssueDate", document.preceding_issue_date.isoformat())


def _delivery_and_payment(root: etree._Element, document: InvoiceDocument) -> None:
    if document.delivered_on is not None or document.delivery_address is not None:
        delivery = _sub(root, CAC, "Delivery")
        if document.delivered_on is not None:
            _sub(delivery, CBC, "ActualDeliveryDate", document.delivered_on.isoformat())
        if document.delivery_address is not None:
            _address(_sub(delivery, CAC, "DeliveryLocation"), "Address", document.delivery_address)
            _sub(_sub(_sub(delivery, CAC, "DeliveryParty"), CAC, "PartyName"), CBC, "Name", document.buyer.name)
    if document.iban:
        means = _sub(root, CAC, "PaymentMeans")
        _sub(means, CBC, "PaymentMeansCode", CREDIT_TRANSFER)
        if document.kind is InvoiceKind.CREDIT_NOTE and document.due_on is not None:
            _sub(means, CBC, "PaymentDueDate", document.due_on.isoformat())
        _sub(_sub(means, CAC, "PayeeFinancialAccount"), CBC, "ID", document.iban.replace(" ", ""))
    if document.payment_terms:
        _sub(_sub(root, CAC, "PaymentTerms"), CBC, "Note", document.payment_terms)


def _totals(root: etree._Element, document: InvoiceDocument) -> None:
    totals, cur = document.totals, document.currency
    tax_total = _sub(root, CAC, "TaxTotal")
    _sub(tax_total, CBC, "TaxAmount", amount(totals.vat_cents), currencyID=cur)
    for breakdown in totals.vat:
        subtotal = _sub(tax_total, CAC, "TaxSubtotal")
        _sub(subtotal, CBC, "TaxableAmount", amount(breakdown.basis_cents), currencyID=cur)
        _sub(subtotal, CBC, "TaxAmount", amount(breakdown.amount_cents), currencyID=cur)
        _tax_category(subtotal, "TaxCategory", breakdown.category, breakdown.rate_bp, breakdown)
    monetary = _sub(root, CAC, "LegalMonetaryTotal")
    _sub(monetary, CBC, "LineExtensionAmount", amount(totals.net_cents), currencyID=cur)
    _sub(monetary, CBC, "TaxExclusiveAmount", amount(totals.net_cents), currencyID=cur)
    _sub(monetary, CBC, "TaxInclusiveAmount", amount(totals.total_cents), currencyID=cur)
    _sub(monetary, CBC, "PayableAmount", amount(totals.total_cents), currencyID=cur)


def build_ubl(document: InvoiceDocument) -> bytes:
    """The PEPPOL BIS Billing 3 XML of ``document`` (UTF-8, with declaration), valid against the OASIS UBL 2.1
    schema of its type. Raises ``DocumentInvalid`` when the document breaks a rule or the schema."""
    check(document)
    syntax = _SYNTAX[document.kind]
    root = etree.Element(f"{{{syntax.namespace}}}{syntax.root}",
                         nsmap={None: syntax.namespace, "cac": CAC, "cbc": CBC})
    _header(root, syntax, document)
    _party(root, "AccountingSupplierParty", document.seller)
    _party(root, "AccountingCustomerParty", document.buyer)
    _delivery_and_payment(root, document)
    _totals(root, document)
    for number, line in enumerate(document.lines, start=1):
        _line(root, syntax, number, line, document)

    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    errors = validate_ubl(xml, syntax.root)
    if errors:
        raise DocumentInvalid(f"invoice document {document.number!r} fails the UBL 2.1 {syntax.root} schema: "
                              + "; ".join(errors))
    return xml


class UblInvoiceRenderer:
    """``InvoiceRenderer`` for PEPPOL BIS Billing 3 (UBL 2.1)."""

    media_type = MEDIA_TYPE

    def render(self, document: InvoiceDocument) -> bytes:
        return build_ubl(document)
