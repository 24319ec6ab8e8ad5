"""The OASIS UBL 2.1 schemas shipped in the project: loaded from the archive alone, and not vacuous."""

from __future__ import annotations

import zipfile

import pytest
from invoicing_samples import invoice

from adapters.invoicing.schemas import ARCHIVE, schema, validate_ubl
from adapters.invoicing.ubl import build_ubl

ORDER_RESPONSE = b"""<?xml version="1.0" encoding="UTF-8"?>
<OrderResponse xmlns="urn:oasis:names:specification:ubl:schema:xsd:OrderResponse-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>R-1</cbc:ID>
  <cbc:IssueDate>2025-06-02</cbc:IssueDate>
  <cac:OrderReference><cbc:ID>EJ-2025-0001234</cbc:ID></cac:OrderReference>
  <cac:SellerSupplierParty><cac:Party><cbc:EndpointID schemeID="0009">81234567600017</cbc:EndpointID></cac:Party>
  </cac:SellerSupplierParty>
  <cac:BuyerCustomerParty><cac:Party><cbc:EndpointID schemeID="0009">21350238800019</cbc:EndpointID></cac:Party>
  </cac:BuyerCustomerParty>
</OrderResponse>
"""


def test_the_archive_holds_the_four_maindocs_and_the_common_library() -> None:
    names = set(zipfile.ZipFile(ARCHIVE).namelist())
    assert {f"maindoc/UBL-{d}-2.1.xsd" for d in ("Invoice", "CreditNote", "Order", "OrderResponse")} <= names
    assert "common/UBL-CommonAggregateComponents-2.1.xsd" in names
    assert (ARCHIVE.parent / "UBL-2.1-NOTICE.md").is_file()


def test_each_schema_is_compiled_once() -> None:
    assert schema("Invoice") is schema("Invoice")


def test_order_response_validates() -> None:
    assert validate_ubl(ORDER_RESPONSE, "OrderResponse") == []
    broken = ORDER_RESPONSE.replace(b"<cbc:IssueDate>2025-06-02</cbc:IssueDate>", b"")
    assert any("IssueDate" in e for e in validate_ubl(broken, "OrderResponse"))


def test_errors_name_the_line_and_the_problem() -> None:
    xml = build_ubl(invoice()).replace(b"<cbc:IssueDate>2025-06-20", b"<cbc:IssueDate>2025-06-31")
    errors = validate_ubl(xml, "Invoice")
    assert len(errors) == 1
    assert errors[0].startswith("line ") and "xs:date" in errors[0]


@pytest.mark.parametrize("document", ["Order", "CreditNote"])
def test_a_root_of_another_type_is_refused(document) -> None:
    assert validate_ubl(build_ubl(invoice()), document) != []


def test_no_entity_expansion_nor_network() -> None:
    hostile = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&x;</Invoice>"""
    assert validate_ubl(hostile, "Invoice") == ["a UBL document has no DOCTYPE"]


def test_not_xml_is_an_error() -> None:
    assert validate_ubl(b"<Invoice", "Invoice")[0].startswith("not well-formed XML")
