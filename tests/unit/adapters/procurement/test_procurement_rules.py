"""Chorus Pro reference rules (DOC-3), input checks, and a property test of the totals over random lines."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import facturx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from procurement_samples import SAFE_PARSER, sample_order, with_buyer

from adapters.invoicing.schemas import validate_ubl
from adapters.procurement.base import ChorusRequirement, OrderLine, money
from adapters.procurement.fake import FakeRenderer
from adapters.procurement.orderx import build_orderx
from adapters.procurement.peppol import build_peppol_order
from adapters.procurement.rules import ChorusReferenceMissing, check_chorus_references, validate_document
from broker.errors import Rejected

R = ChorusRequirement


@pytest.mark.parametrize(
    ("requirement", "service", "engagement", "pointer"),
    [
        (R.NONE, None, None, None),
        (R.SERVICE, "S1", None, None),
        (R.SERVICE, None, "EJ1", "/buyer/service_code"),
        (R.SERVICE, "", "EJ1", "/buyer/service_code"),
        (R.ENGAGEMENT, None, "EJ1", None),
        (R.ENGAGEMENT, "S1", None, "/buyer/engagement_number"),
        (R.SERVICE_AND_ENGAGEMENT, "S1", "EJ1", None),
        (R.SERVICE_AND_ENGAGEMENT, None, "EJ1", "/buyer/service_code"),
        (R.SERVICE_AND_ENGAGEMENT, "S1", None, "/buyer/engagement_number"),
        (R.SERVICE_AND_ENGAGEMENT, None, None, "/buyer/service_code"),
        (R.SERVICE_OR_ENGAGEMENT, "S1", None, None),
        (R.SERVICE_OR_ENGAGEMENT, None, "EJ1", None),
        (R.SERVICE_OR_ENGAGEMENT, " ", None, "/buyer/engagement_number"),
    ],
)
def test_chorus_requirement_table(
    requirement: R, service: str | None, engagement: str | None, pointer: str | None
) -> None:
    buyer = with_buyer(chorus_requirement=requirement, service_code=service, engagement_number=engagement).buyer
    if pointer is None:
        check_chorus_references(buyer)
        return
    with pytest.raises(ChorusReferenceMissing) as caught:
        check_chorus_references(buyer)
    assert isinstance(caught.value, Rejected)
    assert caught.value.code == "chorus-reference-missing"
    assert caught.value.pointer == pointer
    assert caught.value.detail


def test_pointer_prefix_for_other_bodies() -> None:
    buyer = with_buyer(chorus_requirement=R.SERVICE, service_code=None).buyer
    with pytest.raises(ChorusReferenceMissing) as caught:
        check_chorus_references(buyer, pointer_prefix="/order/buyer")
    assert caught.value.pointer == "/order/buyer/service_code"


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"buyer": msgspec.structs.replace(sample_order().buyer, siret="21690123100012")}, "/buyer/siret"),
        ({"seller": msgspec.structs.replace(sample_order().seller, siret="123")}, "/seller/siret"),
        ({"lines": ()}, "/lines"),
        ({"currency": "euro"}, "/currency"),
        (
            {
                "lines": (
                    OrderLine(
                        item_slug="x", name="x", quantity=Decimal(0), unit_price=Decimal(1), vat_rate=Decimal(20)
                    ),
                )
            },
            "/lines/0/quantity",
        ),
        (
            {
                "lines": (
                    OrderLine(
                        item_slug="x", name="x", quantity=Decimal(1), unit_price=Decimal(-1), vat_rate=Decimal(20)
                    ),
                )
            },
            "/lines/0/unit_price",
        ),
        (
            {
                "lines": (
                    OrderLine(
                        item_slug="x", name="x", quantity=Decimal(1), unit_price=Decimal(1), vat_rate=Decimal(120)
                    ),
                )
            },
            "/lines/0/vat_rate",
        ),
        (
            {
                "lines": (
                    OrderLine(
                        item_slug="x", name="x", quantity=Decimal("NaN"), unit_price=Decimal(1), vat_rate=Decimal(20)
                    ),
                )
            },
            "/lines/0/quantity",
        ),
        (
            {"delivery_address": msgspec.structs.replace(sample_order().buyer.address, postcode="6910")},
            "/delivery_address/postcode",
        ),
    ],
)
def test_invalid_orders_are_rejected_with_a_pointer(changes: dict[str, object], pointer: str) -> None:
    with pytest.raises(Rejected) as caught:
        validate_document(sample_order(**changes))
    assert caught.value.pointer == pointer


def test_money_rounds_half_up() -> None:
    assert money(Decimal("0.005")) == Decimal("0.01")
    assert money(Decimal("2.675")) == Decimal("2.68")
    assert money(Decimal("-0.005")) == Decimal("-0.01")


def test_fake_renderer_records_and_refuses_like_the_real_ones() -> None:
    fake = FakeRenderer()
    fake.render(sample_order())
    assert [d.order_id for d in fake.rendered] == ["ord_01JABCDEF"]
    with pytest.raises(ChorusReferenceMissing):
        fake.render(with_buyer(engagement_number=None))


_RATES = st.sampled_from([Decimal("0"), Decimal("2.1"), Decimal("5.5"), Decimal("10"), Decimal("20")])
_LINES = st.lists(
    st.builds(
        OrderLine,
        item_slug=st.from_regex(r"[a-z]{1,8}(-[a-z]{1,8})?", fullmatch=True),
        name=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
            lambda s: s.strip() != ""
        ),
        quantity=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("10000"), places=3),
        unit_price=st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=4),
        vat_rate=_RATES,
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_LINES)
def test_totals_property_and_both_documents_agree(lines: list[OrderLine]) -> None:
    doc = sample_order(lines=tuple(lines))
    totals = doc.totals()
    cent = Decimal("0.01")
    expected_lines = [(line.quantity * line.unit_price).quantize(cent, rounding=ROUND_HALF_UP) for line in lines]
    assert totals.line_total == sum(expected_lines, Decimal(0))
    by_rate: dict[Decimal, Decimal] = {}
    for line, total in zip(lines, expected_lines, strict=True):
        by_rate[line.vat_rate.normalize()] = by_rate.get(line.vat_rate.normalize(), Decimal(0)) + total
    expected_tax = sum(
        ((basis * rate / 100).quantize(cent, rounding=ROUND_HALF_UP) for rate, basis in by_rate.items()), Decimal(0)
    )
    assert totals.tax_total == expected_tax
    assert totals.grand_total == totals.line_total + totals.tax_total
    assert sum((t.basis for t in totals.taxes), Decimal(0)) == totals.line_total
    assert all(t.amount == t.amount.quantize(cent) for t in totals.taxes)

    orderx = etree.fromstring(build_orderx(doc), SAFE_PARSER)
    ns = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:128"}
    xml_lines = [
        Decimal(v)
        for v in orderx.xpath(
            "//ram:LineTotalAmount[ancestor::ram:IncludedSupplyChainTradeLineItem]/text()", namespaces=ns
        )
    ]
    assert xml_lines == expected_lines
    assert Decimal(orderx.xpath("//ram:GrandTotalAmount/text()", namespaces=ns)[0]) == totals.grand_total
    assert facturx.xml_check_xsd(etree.tostring(orderx), flavor="order-x", level="basic") is True

    peppol = etree.fromstring(build_peppol_order(doc), SAFE_PARSER)
    ubl = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
    assert Decimal(peppol.xpath("//cbc:PayableAmount/text()", namespaces=ubl)[0]) == totals.grand_total
    assert validate_ubl(etree.tostring(peppol), "Order") == []  # the OASIS UBL 2.1 Order schema
