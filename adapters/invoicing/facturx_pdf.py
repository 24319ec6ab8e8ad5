"""The Factur-X PDF of an invoice or credit note: a readable French A4 page (reportlab) carrying its EN 16931
CII XML (``adapters.invoicing.cii``) as the embedded ``factur-x.xml``, made PDF/A-3 by the ``factur-x`` library.

PDF/A-3 asks more of the visible part than a plain PDF: every font embedded, and an output intent naming the
colour space the page is drawn in. Hence the Bitstream Vera fonts shipped with reportlab, embedded
(subset) instead of the reader's Helvetica, and an sRGB output intent built from littleCMS's own sRGB profile
(Pillow, a reportlab dependency). The ``factur-x`` library then adds the XML as an associated file
(``AFRelationship /Data``), the XMP metadata (``pdfaid:part 3``, conformance B, Factur-X level ``EN 16931``),
and the document information. It runs offline: the XSD check is local and the schematron is not run.

Text goes through ``adapters.documents.award_pdf.pdf_text`` (the Windows-1252 repertoire, which Vera covers: é,
€, « », ’, œ, the no-break space) and amounts through ``money`` (« 1 234,56 € »)."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import facturx
import reportlab
from PIL import ImageCms
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject, TextStringObject
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from adapters.documents.award_pdf import french_date, money, pdf_text
from adapters.invoicing.base import DocumentInvalid, InvoiceDocument, Party
from adapters.invoicing.cii import build_cii, line_tax, notes
from broker.domain.invoicing import InvoiceKind, VatBreakdown

MEDIA_TYPE = "application/pdf"
FONT = "BrokerVera"
FONT_BOLD = "BrokerVera-Bold"
TITLES = {InvoiceKind.INVOICE: "Facture", InvoiceKind.CREDIT_NOTE: "Avoir"}
NBSP = "\u00a0"
XMP_PRODUCER = "pypdf"  # what the factur-x library writes as pdf:Producer in the XMP metadata
#: The document information entries the factur-x library also writes to the XMP metadata (PDF/A: they must agree).
_INFO_IN_XMP = frozenset({"/Title", "/Author", "/Subject", "/Creator", "/CreationDate", "/ModDate"})
#: UN/ECE Recommendation 20 codes as a French reader expects them; others are printed as they are.
UNITS = {"C62": "u", "H87": "pièce", "HUR": "h", "MIN": "min", "DAY": "jour", "KGM": "kg", "MTR": "m",
         "MTK": "m²", "LTR": "l", "SET": "lot"}


@cache
def _fonts() -> tuple[str, str]:
    """Register the embedded fonts once (reportlab keeps a process-wide registry)."""
    folder = Path(reportlab.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont(FONT, str(folder / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(folder / "VeraBd.ttf")))
    return FONT, FONT_BOLD


@cache
def _srgb_profile() -> bytes:
    """littleCMS's built-in sRGB profile, declared as ICC version 4.2: PDF/A-3 (on PDF 1.7) knows the ICC
    profiles up to ICC.1:2004-10, whose format the v4.4 header lcms writes does not change. The profile ID (an
    MD5 over the profile, stale once the version changes) is zeroed, which ICC allows for "not computed"."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[8:12] = bytes((4, 0x20, 0, 0))
    data[84:100] = bytes(16)
    return bytes(data)


def _pdfa_finish(pdf: bytes) -> bytes:
    """The last touches the ``factur-x`` library leaves to PDF/A-3: the sRGB output intent (``/GTS_PDFA1``)
    that device colours need; a PDF 1.7 header (the library asks for 1.6 through a pypdf attribute the installed
    pypdf no longer reads, which leaves reportlab's 1.3); and a document information dictionary that says no
    more than the XMP metadata (the library leaves an empty ``/Keywords`` and reportlab's ``/Trapped``, which
    the XMP lacks, and ``/Producer`` must be the XMP's)."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    writer.pdf_header = b"%PDF-1.7"
    profile = DecodedStreamObject()
    profile.set_data(_srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    intent = DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
        # A stream must be an indirect object; pypdf has no public call for that (factur-x uses the same one).
        NameObject("/DestOutputProfile"): writer._add_object(profile.flate_encode()),
    })
    writer.root_object[NameObject("/OutputIntents")] = ArrayObject([intent])
    info = {key: value for key, value in (writer.metadata or {}).items() if key in _INFO_IN_XMP and value}
    writer.metadata = {**info, "/Producer": XMP_PRODUCER}
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class _Styles:
    def __init__(self) -> None:
        regular, bold = _fonts()
        self.body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=11.5)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=8, leading=10)
        self.small_right = ParagraphStyle("small_right", parent=self.small, alignment=TA_RIGHT)
        self.head = ParagraphStyle("head", parent=self.small, fontName=bold)
        self.head_right = ParagraphStyle("head_right", parent=self.head, alignment=TA_RIGHT)
        self.label = ParagraphStyle("label", parent=self.body, fontName=bold)
        self.right = ParagraphStyle("right", parent=self.body, alignment=TA_RIGHT)
        self.right_bold = ParagraphStyle("right_bold", parent=self.right, fontName=bold)
        self.title = ParagraphStyle("title", parent=self.body, fontName=bold, fontSize=18, leading=22)
        self.note = ParagraphStyle("note", parent=self.body, fontSize=8, leading=10,
                                   textColor=colors.HexColor("#333333"))


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(pdf_text(text)).replace("\n", "<br/>"), style)


def _rate(bp: int) -> str:
    whole, rest = divmod(bp, 100)
    return (f"{whole}" if rest == 0 else f"{whole},{rest:02d}".rstrip("0")) + NBSP + "%"


def _party_block(heading: str, party: Party, s: _Styles) -> list[Flowable]:
    address = party.address
    lines = [party.name, *([address.line] if address.line else []), f"{address.postcode} {address.commune}"]
    if address.country != "FR":
        lines.append(address.country)
    lines.append(f"SIRET : {party.siret}")
    if party.vat_number:
        lines.append(f"N° TVA intracommunautaire : {party.vat_number}")
    return [_p(heading, s.label), _p("\n".join(lines), s.body)]


# Every table names the embedded font: a table's default cell font is Helvetica, selected even in text-less cells.
_FONT_CELLS = ("FONTNAME", (0, 0), (-1, -1), FONT)
_GRID = TableStyle([
    _FONT_CELLS,
    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#bbbbbb")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
])


class FacturXPdfRenderer:
    """``InvoiceRenderer`` for the Factur-X PDF (PDF/A-3 with the EN 16931 CII XML embedded)."""

    media_type = MEDIA_TYPE

    def render(self, document: InvoiceDocument) -> bytes:
        xml = build_cii(document)
        visible = self.visible_pdf(document)
        title = f"{TITLES[document.kind]} {document.number}"
        metadata = {
            "author": document.seller.name,
            "title": f"{document.seller.name} : {title}",
            "subject": f"{title} du {french_date(document.issue_date)} de {document.seller.name} "
                       f"à {document.buyer.name}",
        }
        try:
            pdf: bytes = facturx.generate_from_binary(
                visible, xml, flavor="factur-x", level="en16931", check_xsd=False, pdf_metadata=metadata,
                lang="fr-FR")
        except Exception as error:  # the library raises bare exceptions
            raise DocumentInvalid(f"invoice document {document.number!r}: Factur-X assembly failed: {error}") from error
        return _pdfa_finish(pdf)

    def visible_pdf(self, document: InvoiceDocument) -> bytes:
        """The human-readable page alone (a plain PDF, before the XML and the PDF/A metadata are added)."""
        regular, _ = _fonts()
        s = _Styles()
        buffer = io.BytesIO()
        title = f"{TITLES[document.kind]} n° {document.number}"
        # The initial font is the one reportlab selects on every page before any text: the embedded one, so that
        # no unembedded Helvetica is referenced; every colour is DeviceRGB, which the sRGB output intent covers.
        doc = SimpleDocTemplate(
            buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=18 * mm,
            title=pdf_text(title), author=pdf_text(document.seller.name), creator="fabrication-broker", invariant=1,
            initialFontName=regular, enforceColorSpace="rgb", lang="fr-FR",
        )
        footer = pdf_text(f"{document.seller.name} — SIRET {document.seller.siret} — {title}")

        def on_page(canvas: Canvas, page_doc: SimpleDocTemplate) -> None:
            canvas.saveState()
            canvas.setFont(regular, 7)
            canvas.drawString(18 * mm, 10 * mm, footer)
            canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"page {page_doc.page}")
            canvas.restoreState()

        doc.build(self._story(document, s, doc.width), onFirstPage=on_page, onLaterPages=on_page)
        return buffer.getvalue()

    def _story(self, document: InvoiceDocument, s: _Styles, width: float) -> list[Flowable]:
        heading = [_p(f"{TITLES[document.kind]} n° {document.number}", s.title), Spacer(1, 2 * mm),
                   _p(f"Date d'émission : {french_date(document.issue_date)}", s.body)]
        if document.kind is InvoiceKind.CREDIT_NOTE and document.preceding_number:
            origin = f"Avoir sur la facture n° {document.preceding_number}"
            if document.preceding_issue_date is not None:
                origin += f" du {french_date(document.preceding_issue_date)}"
            heading.append(_p(origin, s.body))
        parties = Table([[_party_block("Vendeur", document.seller, s), _party_block("Client", document.buyer, s)]],
                        colWidths=[width / 2, width / 2])
        parties.setStyle(TableStyle([_FONT_CELLS, ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                     ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
        return [*heading, Spacer(1, 6 * mm), parties, Spacer(1, 5 * mm), *self._references(document, s, width),
                Spacer(1, 5 * mm), self._lines(document, s, width), Spacer(1, 4 * mm),
                self._totals(document, s, width), Spacer(1, 5 * mm), *self._payment(document, s)]

    @staticmethod
    def _references(document: InvoiceDocument, s: _Styles, width: float) -> list[Flowable]:
        rows = [("Numéro d'engagement", document.engagement_number or "—"),
                ("Code service", document.service_code or "—"),
                ("Référence de commande", document.order_reference)]
        if document.order_number != document.order_reference:
            rows.append(("Commande", document.order_number))
        if document.delivered_on is not None:
            rows.append(("Date de livraison (service fait)", french_date(document.delivered_on)))
        if document.delivery_address is not None:
            a = document.delivery_address
            rows.append(("Lieu de livraison", ", ".join(x for x in (a.line, f"{a.postcode} {a.commune}") if x)))
        table = Table([[_p(k, s.label), _p(v, s.body)] for k, v in rows], colWidths=[0.35 * width, 0.65 * width])
        table.setStyle(TableStyle([_FONT_CELLS, ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 1),
                                   ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
        return [table]

    @staticmethod
    def _lines(document: InvoiceDocument, s: _Styles, width: float) -> Table:
        header = [_p("Désignation", s.head), _p("Quantité", s.head_right), _p("Prix unitaire HT", s.head_right),
                  _p("TVA", s.head_right), _p("Total HT", s.head_right)]
        rows = []
        for line in document.lines:
            _, rate = line_tax(line, document.seller_vat_regime)
            unit = UNITS.get(line.unit_code, line.unit_code)
            rows.append([_p(line.name, s.small), _p(f"{line.quantity}{NBSP}{unit}", s.small_right),
                         _p(money(line.unit_price_cents), s.small_right), _p(_rate(rate), s.small_right),
                         _p(money(line.net_cents), s.small_right)])
        fractions = (0.46, 0.12, 0.16, 0.09, 0.17)
        table = Table([header, *rows], colWidths=[f * width for f in fractions], repeatRows=1)
        table.setStyle(_GRID)
        return table

    @staticmethod
    def _totals(document: InvoiceDocument, s: _Styles, width: float) -> Flowable:
        totals = document.totals

        def vat_label(b: VatBreakdown) -> str:
            if b.category == "E":
                return f"TVA (exonération, base {money(b.basis_cents)})"
            return f"TVA {_rate(b.rate_bp)} sur {money(b.basis_cents)}"

        rows = [[_p("Total HT", s.right), _p(money(totals.net_cents), s.right)],
                *([_p(vat_label(b), s.right), _p(money(b.amount_cents), s.right)] for b in totals.vat),
                [_p("Total TVA", s.right), _p(money(totals.vat_cents), s.right)],
                [_p("Total TTC", s.right_bold), _p(money(totals.total_cents), s.right_bold)]]
        label = "Net à payer" if document.kind is InvoiceKind.INVOICE else "Montant de l'avoir"
        rows.append([_p(label, s.right_bold), _p(money(totals.total_cents), s.right_bold)])
        table = Table(rows, colWidths=[0.78 * width, 0.22 * width])
        table.setStyle(TableStyle([_FONT_CELLS, ("LINEABOVE", (0, -2), (-1, -2), 0.6, colors.black),
                                   ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#eeeeee")),
                                   ("RIGHTPADDING", (0, 0), (-1, -1), 3)]))
        return KeepTogether([table])

    @staticmethod
    def _payment(document: InvoiceDocument, s: _Styles) -> list[Flowable]:
        story: list[Flowable] = []
        if document.due_on is not None:
            story.append(_p(f"Date d'échéance : {french_date(document.due_on)}", s.label))
        if document.payment_terms:
            story.append(_p(f"Conditions de paiement : {document.payment_terms}", s.body))
        if document.iban:
            story.append(_p(f"Règlement par virement — IBAN : {document.iban}", s.body))
        for text in notes(document):
            story += [Spacer(1, 2 * mm), _p(text, s.label if text.startswith("TVA non applicable") else s.note)]
        return story
