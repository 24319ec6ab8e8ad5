"""The printed documents of an order, with reportlab: the « Bon de commande » the buyer signs off and sends, and
the « Bon de livraison » that travels with the goods and comes back signed.

Both read the ``OrderDocument`` the Order-X / PEPPOL XML is made of (parties, lines, delivery), so paper and XML
never disagree, plus what only paper shows (procedure, tracking, shipping and receipt dates). Fonts, text
conversion, amounts and dates are the award record's (``adapters.documents.award_pdf``): Helvetica, French
typography, deterministic bytes for the same input."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import msgspec
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, SimpleDocTemplate, Spacer, Table, TableStyle

from adapters.documents.award_pdf import GRID, MEDIA_TYPE, Styles, french_date, money, par, pdf_text, percent
from adapters.procurement.base import Address, Buyer, OrderDocument, OrderLine, Seller

PURCHASE_ORDER = "Bon de commande"
DELIVERY_NOTE = "Bon de livraison"
CUSTOM_ITEM = "custom"  # the item slug of a request made to a particular specification


class PrintedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order as its printed documents show it. ``procedure`` is already in French words; instants are UTC
    (printed as Europe/Paris dates)."""

    document: OrderDocument
    procedure: str | None = None
    tracking: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


class PrintedOrderRenderer(Protocol):
    media_type: str
    file_stem: str  # the file name before « -<order number>.pdf »

    def render(self, order: PrintedOrder) -> bytes:
        """The order as a document of ``media_type``, deterministic for the same input."""
        ...


def _cents(amount: Decimal) -> int:
    """Document amounts are already rounded to the cent."""
    return int(amount * 100)


def _quantity(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else f"{value:f}".replace(".", ",")


def _address(address: Address | None) -> list[str]:
    if address is None:
        return []
    return [line for line in (address.line, f"{address.postcode} {address.commune}") if line]


def _delivery_place(d: OrderDocument) -> list[str]:
    return _address(d.delivery_address) or ["à l'adresse de l'acheteur"]


def _right(style: ParagraphStyle) -> ParagraphStyle:
    return ParagraphStyle(f"{style.name}_right", parent=style, alignment=TA_RIGHT)


def _designation(line: OrderLine) -> str:
    return line.name if line.item_slug == CUSTOM_ITEM else f"{line.name} (réf. {line.item_slug})"


class _OrderPdf(ABC):
    """What both documents share: page, heading, footer, the party blocks and the references."""

    media_type = MEDIA_TYPE
    title = ""
    file_stem = ""

    def render(self, order: PrintedOrder) -> bytes:
        d = order.document
        s = Styles()
        buffer = io.BytesIO()
        doc = SimpleDocTemplate(
            buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=18 * mm,
            title=pdf_text(f"{self.title} n° {d.order_number}"), author=pdf_text(d.buyer.name),
            subject=pdf_text(" ; ".join(line.name for line in d.lines)), creator="fabrication-broker", invariant=1,
        )
        footer = pdf_text(f"{self.title} n° {d.order_number} — {d.buyer.name} — {d.seller.name}")

        def on_page(canvas: Canvas, document: SimpleDocTemplate) -> None:
            canvas.saveState()
            canvas.setFont("Helvetica", 7)
            canvas.drawString(15 * mm, 10 * mm, footer)
            canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"page {document.page}")
            canvas.restoreState()

        story: list[Flowable] = [
            par(self.title, s.title),
            par(f"Commande n° {d.order_number} du {french_date(d.issue_date)}", s.subtitle),
            *self._story(order, s, doc.width),
        ]
        doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
        return buffer.getvalue()

    @abstractmethod
    def _story(self, order: PrintedOrder, s: Styles, width: float) -> list[Flowable]:
        """Everything under the title and the order number."""

    @staticmethod
    def _buyer(buyer: Buyer, s: Styles) -> list[Flowable]:
        rows: list[Flowable] = [par(buyer.name, s.label), par(f"SIRET : {buyer.siret}", s.body),
                                 *[par(line, s.body) for line in _address(buyer.address)]]
        if buyer.service_code:
            rows.append(par(f"Code service : {buyer.service_code}", s.body))
        if buyer.engagement_number:
            rows.append(par(f"N° d'engagement juridique : {buyer.engagement_number}", s.body))
        return rows

    @staticmethod
    def _seller(seller: Seller, s: Styles) -> list[Flowable]:
        return [par(seller.name, s.label), par(f"SIRET : {seller.siret}", s.body),
                *[par(line, s.body) for line in _address(seller.address)]]

    @staticmethod
    def _blocks(heads: list[str], cells: list[list[Flowable]], s: Styles, width: float) -> Table:
        """Side-by-side boxes (the parties, the delivery place) under grey headings."""
        table = Table([[par(h, s.small_bold) for h in heads], cells], colWidths=[width / len(heads)] * len(heads))
        table.setStyle(GRID)
        return table


class PurchaseOrderPdf(_OrderPdf):
    """« Bon de commande »: the parties with the buyer's Chorus Pro references, the priced lines, the totals HT,
    TVA and TTC, where and when to deliver, and the procedure the order was placed under."""

    title = PURCHASE_ORDER
    file_stem = "bon-de-commande"

    def _story(self, order: PrintedOrder, s: Styles, width: float) -> list[Flowable]:
        d = order.document
        story: list[Flowable] = [
            Spacer(1, 3 * mm),
            self._blocks(["Acheteur", "Titulaire"], [self._buyer(d.buyer, s), self._seller(d.seller, s)], s, width),
        ]
        if order.procedure:
            story += [Spacer(1, 2 * mm), par(f"Procédure : {order.procedure}", s.body)]
        story += [par("Désignation des fournitures", s.h2), self._lines(d, s, width), Spacer(1, 2 * mm),
                  self._totals(d, s, width), par("Livraison", s.h2),
                  par(f"Lieu de livraison : {', '.join(_delivery_place(d))}", s.body)]
        if d.delivery_date is not None:
            story.append(par(f"Date de livraison convenue : {french_date(d.delivery_date)}", s.body))
        if d.buyer.engagement_number:
            story += [Spacer(1, 3 * mm),
                      par(f"La facture doit rappeler le numéro d'engagement juridique {d.buyer.engagement_number}"
                          + (f" et le code service {d.buyer.service_code}" if d.buyer.service_code else "") + ".",
                          s.note)]
        return story

    @staticmethod
    def _lines(d: OrderDocument, s: Styles, width: float) -> Table:
        right, right_bold = _right(s.small), _right(s.small_bold)
        header = [par("Désignation", s.small_bold),
                  *[par(h, right_bold) for h in ("Quantité", "Prix unitaire HT", "TVA", "Total HT")]]
        rows = [[par(_designation(line), s.small), par(_quantity(line.quantity), right),
                 par(money(_cents(line.unit_price)), right), par(percent(int(line.vat_rate * 100)), right),
                 par(money(_cents(line.total)), right)] for line in d.lines]
        fractions = (0.46, 0.11, 0.16, 0.10, 0.17)
        table = Table([header, *rows], colWidths=[f * width for f in fractions], repeatRows=1)
        table.setStyle(GRID)
        return table

    @staticmethod
    def _totals(d: OrderDocument, s: Styles, width: float) -> Flowable:
        totals = d.totals()
        right, right_bold = _right(s.body), _right(s.label)
        rows = [[par("Total HT", right), par(money(_cents(totals.line_total)), right)]]
        rows += [[par(f"TVA {percent(int(t.rate * 100))} sur {money(_cents(t.basis))}", right),
                  par(money(_cents(t.amount)), right)] for t in totals.taxes]
        rows.append([par("Total TTC", right_bold), par(money(_cents(totals.grand_total)), right_bold)])
        table = Table(rows, colWidths=[0.28 * width, 0.17 * width], hAlign="RIGHT")
        table.setStyle(TableStyle([
            ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]))
        return KeepTogether([table])


class DeliveryNotePdf(_OrderPdf):
    """« Bon de livraison »: who receives what and where, the quantities without prices, the carrier's
    tracking reference, the dates, and the boxes the receiver and the deliverer sign."""

    title = DELIVERY_NOTE
    file_stem = "bon-de-livraison"

    def _story(self, order: PrintedOrder, s: Styles, width: float) -> list[Flowable]:
        d = order.document
        place: list[Flowable] = [par(line, s.body) for line in _delivery_place(d)]
        story: list[Flowable] = [
            Spacer(1, 3 * mm),
            self._blocks(["Acheteur", "Adresse de livraison", "Atelier (expéditeur)"],
                         [self._buyer(d.buyer, s), place, self._seller(d.seller, s)], s, width),
            par("Fournitures livrées", s.h2), self._lines(d, s, width), par("Expédition et livraison", s.h2),
        ]
        facts: list[str] = []
        if order.tracking:
            facts.append(f"Référence de suivi du transporteur : {order.tracking}")
        if order.shipped_at is not None:
            facts.append(f"Expédiée le {french_date(order.shipped_at)}")
        if d.delivery_date is not None:
            facts.append(f"Date de livraison convenue : {french_date(d.delivery_date)}")
        if order.delivered_at is not None:
            facts.append(f"Réception confirmée par l'acheteur le {french_date(order.delivered_at)}")
        story += [par(fact, s.body) for fact in facts]
        story += [Spacer(1, 6 * mm), KeepTogether([self._signatures(s, width)])]
        return story

    @staticmethod
    def _lines(d: OrderDocument, s: Styles, width: float) -> Table:
        """Quantities only; the « reçue » column is left blank for the receiver to fill in by hand."""
        header = [par(h, s.small_bold) for h in ("Désignation", "Quantité commandée", "Quantité reçue")]
        rows = [[par(_designation(line), s.small), par(_quantity(line.quantity), s.small), par("", s.small)]
                for line in d.lines]
        table = Table([header, *rows], colWidths=[0.62 * width, 0.19 * width, 0.19 * width], repeatRows=1)
        table.setStyle(GRID)
        return table

    @staticmethod
    def _signatures(s: Styles, width: float) -> Table:
        heads = [par("Reçu par (nom, date, signature)", s.small_bold), par("Livré par", s.small_bold)]
        table = Table([heads, ["", ""]], colWidths=[width / 2] * 2, rowHeights=[None, 32 * mm])
        table.setStyle(GRID)
        return table
