"""Factur-X EN 16931 invoices and credit notes: UN/CEFACT Cross Industry Invoice (D16B), built with lxml.

Mapping (EN 16931 business terms): ``ExchangedDocument/ID`` = BT-1 number, ``TypeCode`` = BT-3 (380 / 381);
``BuyerReference`` = BT-10 Chorus Pro service code; ``BuyerOrderReferencedDocument`` = BT-13 ``order_reference``
(the engagement number, else the broker's order number); both parties carry ``GlobalID[@schemeID=0009]`` (SIRET,
BT-29 / BT-46), ``SpecifiedLegalOrganization/ID[@schemeID=0002]`` (SIREN, BT-30 / BT-47) and an electronic
address ``URIID[@schemeID=0009]`` (BT-34 / BT-49: Chorus Pro routes by SIRET); a credit note quotes the invoice
it corrects (BT-25 / BT-26). Under the franchise en base every line is VAT category ``E`` at 0 % and the breakdown
carries the 293 B mention as exemption reason with its VATEX code.

The checks of ``document_problems`` and the XSD (``facturx.xml_check_xsd``) run on every document; the EN 16931
schematron is not run (it needs an XSLT 2 processor), so the rules it would catch that matter here (totals,
references, the VAT number of a seller charging VAT) are checked by ``document_problems`` instead."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import facturx
from lxml import etree

from adapters.invoicing.base import DocumentInvalid, InvoiceDocument, Party
from adapters.procurement.base import Address
from adapters.xml_tree import cii_address, cii_date
from adapters.xml_tree import sub as _sub
from broker.domain.identifiers import siret_problem
from broker.domain.invoicing import FRANCHISE_MENTION, TYPE_CODE, InvoiceKind, Line, VatRegime

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
MEDIA_TYPE = "application/xml"
SIRET_SCHEME = "0009"  # ISO 6523 ICD of the SIRET, also an EAS code (electronic address)
SIREN_SCHEME = "0002"
CREDIT_TRANSFER = "30"  # UNTDID 4461
# The XSDs type codes as bare tokens: these shapes catch what would otherwise reach Chorus Pro.
_CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217
_UNIT = re.compile(r"^[A-Z0-9]{2,3}$")  # UN/ECE Recommendation 20
_COUNTRY = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2


# ---- shared by the CII and UBL renderers -------------------------------------------------------------


def amount(cents: int) -> str:
    """Euro cents as an EN 16931 amount: a decimal with two digits (``123456`` → ``1234.56``)."""
    return f"{Decimal(cents).scaleb(-2):.2f}"


def percent(rate_bp: int) -> str:
    """A VAT rate in basis points as a plain percentage (``2000`` → ``20``, ``550`` → ``5.5``)."""
    return format(Decimal(rate_bp).scaleb(-2).normalize(), "f")


def line_tax(line: Line, regime: VatRegime) -> tuple[str, int]:
    """The VAT category (UNCL 5305) and rate of ``line``, as ``broker.domain.invoicing.totals`` groups them."""
    if regime is VatRegime.FRANCHISE_EN_BASE:
        return "E", 0
    return ("S" if line.vat_rate_bp else "Z"), line.vat_rate_bp


def notes(document: InvoiceDocument) -> tuple[str, ...]:
    """BT-22: the document's notes, with the 293 B mention added when the seller is under the franchise en
    base and the notes lack it (the mention is mandatory on the invoice itself)."""
    if document.seller_vat_regime is VatRegime.FRANCHISE_EN_BASE and FRANCHISE_MENTION not in document.notes:
        return (*document.notes, FRANCHISE_MENTION)
    return document.notes


def _code_problems(document: InvoiceDocument) -> list[str]:
    problems: list[str] = []
    if not _CURRENCY.match(document.currency):
        problems.append(f"BR-CL-04: {document.currency!r} is not an ISO 4217 currency code")
    problems += [f"BR-CL-23: {line.unit_code!r} is not a UN/ECE Rec. 20 unit code"
                 for line in document.lines if not _UNIT.match(line.unit_code)]
    addresses = [document.seller.address, document.buyer.address, document.delivery_address]
    problems += [f"BR-CL-14: {a.country!r} is not an ISO 3166-1 country code"
                 for a in addresses if a is not None and not _COUNTRY.match(a.country)]
    for role, party in (("seller", document.seller), ("buyer", document.buyer)):
        reason = siret_problem(party.siret)
        if reason:
            problems.append(f"{role} SIRET {party.siret!r}: {reason}")
        if not party.name.strip():
            problems.append(f"the {role} has no name")
    return problems


def _amount_problems(document: InvoiceDocument) -> list[str]:
    totals = document.totals
    categories = {line_tax(line, document.seller_vat_regime) for line in document.lines}
    checks = [
        (totals.net_cents == sum(line.net_cents for line in document.lines),
         "BR-CO-10: the net total is not the sum of the line net amounts"),
        (totals.net_cents == sum(b.basis_cents for b in totals.vat),
         "BR-CO-13: the VAT bases do not add up to the net total"),
        (totals.vat_cents == sum(b.amount_cents for b in totals.vat),
         "BR-CO-14: the VAT total is not the sum of the VAT amounts"),
        (totals.total_cents == totals.net_cents + totals.vat_cents,
         "BR-CO-15: the total is not the net total plus VAT"),
        (categories == {(b.category, b.rate_bp) for b in totals.vat},
         "BR-CO-18: the VAT breakdown does not match the lines' categories and rates"),
        (all(b.exemption_reason or b.exemption_code for b in totals.vat if b.category == "E"),
         "BR-E-10: an exempt VAT breakdown needs its exemption reason"),
        (document.seller.vat_number or all(category != "S" for category, _ in categories),
         "BR-S-02: a seller charging VAT needs its VAT number"),
        (totals.total_cents <= 0 or document.due_on is not None or document.payment_terms,
         "BR-CO-25: an amount due needs a due date or payment terms"),
    ]
    return [problem for ok, problem in checks if not ok]


def document_problems(document: InvoiceDocument) -> list[str]:
    """What makes ``document`` unfit to send, beyond what the schemas see (the Factur-X XSD types every code
    as a bare token): EN 16931 rules (BR-02 number, BR-16 a line, the code lists' shapes, BR-CO-10 to 18 totals
    and VAT breakdown, BR-S-02 the VAT number of a seller charging VAT, BR-CO-25 a due date or payment terms)
    and the French ones (valid SIRETs, a credit note quotes its invoice)."""
    problems: list[str] = []
    if not document.number.strip():
        problems.append("BR-02: the document has no number")
    if not document.order_reference.strip():
        problems.append("BT-13: the document has no order reference")
    if not document.lines:
        problems.append("BR-16: the document has no line")
    if document.kind is InvoiceKind.CREDIT_NOTE and not (document.preceding_number or "").strip():
        problems.append("a credit note must quote the invoice it corrects (BT-25)")
    return problems + _code_problems(document) + _amount_problems(document)


def check(document: InvoiceDocument) -> None:
    """Raise ``DocumentInvalid`` listing ``document_problems`` when there are any."""
    problems = document_problems(document)
    if problems:
        raise DocumentInvalid(f"invoice document {document.number!r}: " + "; ".join(problems))


# ---- CII -----------------------------------------------------------------------------------------------


def _date(parent: etree._Element, tag: str, day: date, *, ns: str = UDT) -> None:
    cii_date(parent, tag, day, ram=RAM, udt=ns)


def _address(parent: etree._Element, address: Address) -> None:
    cii_address(parent, address, ram=RAM)


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    element = _sub(parent, RAM, tag)
    _sub(element, RAM, "GlobalID", party.siret, schemeID=SIRET_SCHEME)
    _sub(element, RAM, "Name", party.name)
    legal = _sub(element, RAM, "SpecifiedLegalOrganization")
    _sub(legal, RAM, "ID", party.siren, schemeID=SIREN_SCHEME)
    _address(element, party.address)
    uri = _sub(element, RAM, "URIUniversalCommunication")
    _sub(uri, RAM, "URIID", party.siret, schemeID=SIRET_SCHEME)
    if party.vat_number:
        registration = _sub(element, RAM, "SpecifiedTaxRegistration")
        _sub(registration, RAM, "ID", party.vat_number, schemeID="VA")


def _line(transaction: etree._Element, number: int, line: Line, regime: VatRegime) -> None:
    item = _sub(transaction, RAM, "IncludedSupplyChainTradeLineItem")
    _sub(_sub(item, RAM, "AssociatedDocumentLineDocument"), RAM, "LineID", str(number))
    product = _sub(item, RAM, "SpecifiedTradeProduct")
    if line.item:
        _sub(product, RAM, "SellerAssignedID", line.item)
    _sub(product, RAM, "Name", line.name)
    agreement = _sub(item, RAM, "SpecifiedLineTradeAgreement")
    _sub(_sub(agreement, RAM, "NetPriceProductTradePrice"), RAM, "ChargeAmount", amount(line.unit_price_cents))
    delivery = _sub(item, RAM, "SpecifiedLineTradeDelivery")
    _sub(delivery, RAM, "BilledQuantity", str(line.quantity), unitCode=line.unit_code)
    settlement = _sub(item, RAM, "SpecifiedLineTradeSettlement")
    category, rate = line_tax(line, regime)
    tax = _sub(settlement, RAM, "ApplicableTradeTax")
    _sub(tax, RAM, "TypeCode", "VAT")
    _sub(tax, RAM, "CategoryCode", category)
    _sub(tax, RAM, "RateApplicablePercent", percent(rate))
    summation = _sub(settlement, RAM, "SpecifiedTradeSettlementLineMonetarySummation")
    _sub(summation, RAM, "LineTotalAmount", amount(line.net_cents))


def _settlement(transaction: etree._Element, document: InvoiceDocument) -> None:
    totals = document.totals
    settlement = _sub(transaction, RAM, "ApplicableHeaderTradeSettlement")
    _sub(settlement, RAM, "InvoiceCurrencyCode", document.currency)
    if document.iban:
        means = _sub(settlement, RAM, "SpecifiedTradeSettlementPaymentMeans")
        _sub(means, RAM, "TypeCode", CREDIT_TRANSFER)
        account = _sub(means, RAM, "PayeePartyCreditorFinancialAccount")
        _sub(account, RAM, "IBANID", document.iban.replace(" ", ""))
    for breakdown in totals.vat:
        tax = _sub(settlement, RAM, "ApplicableTradeTax")
        _sub(tax, RAM, "CalculatedAmount", amount(breakdown.amount_cents))
        _sub(tax, RAM, "TypeCode", "VAT")
        if breakdown.exemption_reason:
            _sub(tax, RAM, "ExemptionReason", breakdown.exemption_reason)
        _sub(tax, RAM, "BasisAmount", amount(breakdown.basis_cents))
        _sub(tax, RAM, "CategoryCode", breakdown.category)
        if breakdown.exemption_code:
            _sub(tax, RAM, "ExemptionReasonCode", breakdown.exemption_code)
        _sub(tax, RAM, "RateApplicablePercent", percent(breakdown.rate_bp))
    if document.payment_terms or document.due_on is not None:
        terms = _sub(settlement, RAM, "SpecifiedTradePaymentTerms")
        if document.payment_terms:
            _sub(terms, RAM, "Description", document.payment_terms)
        if document.due_on is not None:
            _date(terms, "DueDateDateTime", document.due_on)
    summation = _sub(settlement, RAM, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(summation, RAM, "LineTotalAmount", amount(totals.net_cents))
    _sub(summation, RAM, "TaxBasisTotalAmount", amount(totals.net_cents))
    _sub(summation, RAM, "TaxTotalAmount", amount(totals.vat_cents), currencyID=document.currency)
    _sub(summation, RAM, "GrandTotalAmount", amount(totals.total_cents))
    _sub(summation, RAM, "DuePayableAmount", amount(totals.total_cents))
    if document.preceding_number:
        reference = _sub(settlement, RAM, "InvoiceReferencedDocument")
        _sub(reference, RAM, "IssuerAssignedID", document.preceding_number)
        if document.preceding_issue_date is not None:
            _date(reference, "FormattedIssueDateTime", document.preceding_issue_date, ns=QDT)


def build_cii(document: InvoiceDocument) -> bytes:
    """The Factur-X EN 16931 XML of ``document`` (UTF-8, with declaration), checked against the Factur-X XSD.

    Raises ``DocumentInvalid`` when the document breaks a rule of ``document_problems`` or the XSD."""
    check(document)
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _sub(root, RSM, "ExchangedDocumentContext")
    _sub(_sub(context, RAM, "GuidelineSpecifiedDocumentContextParameter"), RAM, "ID", GUIDELINE_EN16931)

    header = _sub(root, RSM, "ExchangedDocument")
    _sub(header, RAM, "ID", document.number)
    _sub(header, RAM, "TypeCode", TYPE_CODE[document.kind])
    _date(header, "IssueDateTime", document.issue_date)
    for text in notes(document):
        _sub(_sub(header, RAM, "IncludedNote"), RAM, "Content", text)

    transaction = _sub(root, RSM, "SupplyChainTradeTransaction")
    for number, line in enumerate(document.lines, start=1):
        _line(transaction, number, line, document.seller_vat_regime)

    agreement = _sub(transaction, RAM, "ApplicableHeaderTradeAgreement")
    if document.service_code:
        _sub(agreement, RAM, "BuyerReference", document.service_code)
    _party(agreement, "SellerTradeParty", document.seller)
    _party(agreement, "BuyerTradeParty", document.buyer)
    _sub(_sub(agreement, RAM, "BuyerOrderReferencedDocument"), RAM, "IssuerAssignedID", document.order_reference)

    delivery = _sub(transaction, RAM, "ApplicableHeaderTradeDelivery")
    if document.delivery_address is not None:
        ship_to = _sub(delivery, RAM, "ShipToTradeParty")
        _sub(ship_to, RAM, "Name", document.buyer.name)
        _address(ship_to, document.delivery_address)
    if document.delivered_on is not None:
        _date(_sub(delivery, RAM, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", document.delivered_on)

    _settlement(transaction, document)

    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as error:  # the library raises a bare Exception for an invalid document
        raise DocumentInvalid(
            f"invoice document {document.number!r} fails the Factur-X EN 16931 XSD: {error}") from error
    return xml


class CiiInvoiceRenderer:
    """``InvoiceRenderer`` for the Factur-X EN 16931 XML alone (the XML embedded in the Factur-X PDF)."""

    media_type = MEDIA_TYPE

    def render(self, document: InvoiceDocument) -> bytes:
        return build_cii(document)
