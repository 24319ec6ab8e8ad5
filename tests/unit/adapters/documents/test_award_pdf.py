"""The award record's PDF renderer: French text survives, figures read as printed, same bytes each time."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import msgspec
from pypdf import PdfReader

from adapters.documents.award_pdf import AwardRecordPdf, money, pdf_text
from adapters.documents.base import (
    AwardRecord,
    RecordBuyer,
    RecordCumulative,
    RecordInvitation,
    RecordJustification,
    RecordObject,
    RecordOrder,
    RecordProcurement,
    RecordQuote,
)

NOW = datetime(2026, 5, 12, 9, 30, tzinfo=UTC)


def _quote(n: int, name: str, unit: int, **kw) -> RecordQuote:
    ht = unit * 6
    vat = ht // 5
    return RecordQuote(quote_id=f"q{n}", workshop_id=f"w{n}", workshop_name=name, status=kw.pop("status", "rejected"),
                       quantity=6, unit_price_cents=unit, vat_rate_bp=2000, ht_cents=ht, vat_cents=vat,
                       ttc_cents=ht + vat, delivery_date=date(2026, 6, 1), valid_until=NOW + timedelta(days=30),
                       distance_km=12.34 * n, flags=kw.pop("flags", ()), valid=kw.pop("valid", True),
                       lowest=kw.pop("lowest", False), chosen=kw.pop("chosen", False), **kw)


def record(**overrides) -> AwardRecord:
    quotes = (_quote(1, "Menuiserie du Pays de Rennes", 1_100_00, lowest=True, chosen=True, status="accepted"),
              _quote(2, "Ébénisterie de Quimper", 1_234_567_89),
              _quote(3, "Atelier Bois de Vitré", 1_300_00, flags=("late",), valid=False))
    base = AwardRecord(
        request_id="0c1d2e3f-aaaa-bbbb-cccc-000000000000", reference="0C1D2E3F", status="awarded",
        generated_at=NOW, created_at=NOW - timedelta(days=10), quote_deadline=NOW - timedelta(days=3),
        window_closed=True,
        buyer=RecordBuyer(name="Commune de Ploërmel", siret="21560165400019", purchasing_siret="21560165400027",
                          service_code="SERV-ACHATS", engagement_number="EJ-2026-0042"),
        object=RecordObject(name="Bureau France Services « conseiller numérique »", item_slug="france-services-desk",
                            quantity=6, deadline=NOW + timedelta(days=20), delivery_insee="35238",
                            delivery_commune="Rennes", delivery_address="2 rue de la Mairie", allow_split=False,
                            min_quotes=3),
        procurement=RecordProcurement(
            nature="fournitures", cpv="39121100-7", cpv_label="Bureaux", estimated_cents=9_000_00,
            budget_cents=9_000_00, procedure="sans_publicite",
            procedure_label="marché sans publicité ni mise en concurrence préalables", threshold_cents=60_000_00,
            rule="article R.2122-8 du code de la commande publique, seuil relevé par le décret n° 2025-1386",
            cumulative=RecordCumulative(year=2026, cpv_group="391", awarded_cents=12_000_00,
                                        open_estimates_cents=0)),
        invitations=(
            RecordInvitation(workshop_id="w1", workshop_name="Menuiserie du Pays de Rennes", source="matching",
                             rank=1, score=0.87, distance_km=3.2, reasons=("à 3,2 km : proximité 0,97 × poids 0,4",),
                             status="invited", answer="quoted"),
            RecordInvitation(workshop_id="w4", workshop_name="Fab lab de Lannion", source="buyer", rank=0,
                             score=0.4, distance_km=140.0, reasons=(), status="declined", answer="declined",
                             decline_reason="Carnet de commandes plein jusqu'en juin ; désolé"),
        ),
        quotes=quotes,
        orders=(RecordOrder(order_id="o1", number="BC-20260512-0C1D2E3F", quote_id="q1",
                            workshop_name="Menuiserie du Pays de Rennes", quantity=6, ht_cents=6_600_00,
                            ttc_cents=7_920_00, delivery_date=date(2026, 6, 1), status="awarded"),),
        justifications=(RecordJustification(code="rotation", label="même titulaire que lors de précédents achats",
                                            text="Seul atelier équipé d'une défonceuse 5 axes à moins de 50 km ; cœur"),),
        awarded_at=NOW - timedelta(days=1), awarded_by="service achats",
    )
    return msgspec.structs.replace(base, **overrides)


def text_of(pdf: bytes) -> str:
    """The PDF's text with every kind of space as one plain space."""
    raw = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"[\s\u00a0\u202f]+", " ", raw)


def plain(text: str) -> str:
    return re.sub(r"[ \u00a0\u202f]+", " ", text)


def test_the_pdf_carries_the_buyer_the_procedure_and_every_total_in_french():
    pdf = AwardRecordPdf().render(record())
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    for expected in ("Rapport de présentation — note de choix", "Commune de Ploërmel", "21560165400019",
                     "marché sans publicité ni mise en concurrence préalables", "39121100-7 — Bureaux",
                     "« conseiller numérique »", "bonne pratique, non une règle", "cœur",
                     "Même titulaire que lors de précédents achats", "clé « service achats »",
                     "Carnet de commandes plein jusqu'en juin ; désolé", "hors délai", "RETENUE", "moins-disante"):
        assert expected in text, expected
    for quote in record().quotes:
        assert plain(money(quote.ttc_cents)) in text, money(quote.ttc_cents)
    assert "8 888 888,80 €" in text  # 1 234 567,89 € × 6 + 20 % (truncated), on one line
    assert "\u202f" not in pdf_text("60\u202f000,00\u00a0€") and "€" in text


def test_the_same_record_gives_the_same_bytes():
    assert AwardRecordPdf().render(record()) == AwardRecordPdf().render(record())


def test_before_the_award_the_record_says_it_is_provisional():
    draft = record(status="quoting", orders=(), justifications=(), awarded_at=None, awarded_by=None,
                   quotes=tuple(msgspec.structs.replace(q, chosen=False, status="submitted") for q in record().quotes))
    text = text_of(AwardRecordPdf().render(draft))
    assert "Document provisoire" in text and "Aucune offre n'a été retenue à ce jour" in text
    assert "RETENUE" not in text


def test_characters_outside_winansi_fall_back():
    assert pdf_text("≥ 90\u202f000\u2009€ → ok ☃") == ">= 90\u00a0000\u00a0€ -> ok ?"
