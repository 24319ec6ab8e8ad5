"""Sample orders and local validators for the procurement document tests (no network, no downloads)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from adapters.procurement.base import Address, Buyer, ChorusRequirement, OrderDocument, OrderLine, Seller

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
