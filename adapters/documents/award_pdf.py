"""The award record as a sober A4 PDF « Rapport de présentation — note de choix », with reportlab.

Fonts: the standard Helvetica of every PDF reader (not embedded), whose WinAnsi encoding has every
French letter and sign the record uses (é è à ç œ € « » ’ —, and the no-break space U+00A0) but
not the narrow no-break space U+202F of French typography (``format_euros``), nor U+2009: both
become U+00A0 here, which keeps the figure and its unit on one line as well. The TTF fonts shipped
with reportlab (Bitstream Vera) lack U+202F too, so embedding one would gain nothing. Any other
character outside WinAnsi falls back to its closest ASCII form, or « ? ».

Deterministic: the same record gives the same bytes (``invariant``: no creation date nor random
document id in the file); the edition date printed is the record's ``generated_at``."""

from __future__ import annotations

import io
import unicodedata
from datetime import date, datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from adapters.documents.base import AwardRecord, RecordInvitation, RecordQuote
from broker.domain.procurement import format_euros

PARIS = ZoneInfo("Europe/Paris")
MEDIA_TYPE = "application/pdf"
TITLE = "Rapport de présentation — note de choix"
NBSP = "\u00a0"

_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")
_NATURES = {"fournitures": "Fournitures", "services": "Services", "travaux": "Travaux"}
_SOURCES = {"matching": "sélection du moteur", "buyer": "ajouté par l'acheteur",
            "consultation": "consultation ouverte"}
_ANSWERS = {"quoted": "a remis une offre", "declined": "a décliné", "withdrawn": "offre retirée",
            "none": "pas de réponse"}
_FLAGS = {"late": "hors délai", "partial": "partielle", "expired": "expirée"}
_QUOTE_STATUS = {"withdrawn": "retirée", "expired": "expirée"}
_ORDER_STATUS = {"awarded": "attribuée", "confirmed": "confirmée", "in_production": "en production",
                 "ready": "prête", "shipped": "expédiée", "delivered": "livrée", "closed": "clôturée",
                 "cancelled": "annulée", "disputed": "en litige"}
_REQUEST_STATUS = {"open": "ouverte", "quoting": "en cours de consultation", "awarded": "attribuée",
                   "closed": "clôturée", "cancelled": "annulée"}
_ASCII = {"\u2264": "<=", "\u2265": ">=", "\u2192": "->", "\u2248": "~", "\u2212": "-", "\u2011": "-",
          "\u2010": "-", "\u2032": "'", "\u2033": '"'}

GOOD_PRACTICE = (
    "Demander trois devis est une bonne pratique, non une règle du code de la commande publique : "
    "sous le seuil de l'article R.2122-8, l'acheteur doit « choisir une offre pertinente, faire une bonne "
    "utilisation des deniers publics et ne pas contracter systématiquement avec un même opérateur économique "
    "lorsqu'il existe une pluralité d'offres susceptibles de répondre au besoin »."
)


def pdf_text(text: str) -> str:
    """``text`` in the characters Helvetica (WinAnsi) can show: narrow and thin spaces become
    no-break spaces, a few signs their ASCII form, anything else unknown « ? »."""
    out = []
    for ch in text.replace("\u202f", NBSP).replace("\u2009", NBSP):
        try:
            ch.encode("cp1252")
            out.append(ch)
            continue
        except UnicodeEncodeError:
            pass
        if ch in _ASCII:
            out.append(_ASCII[ch])
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("cp1252", "ignore").decode("cp1252")
        out.append(plain or "?")
    return "".join(out)


def money(cents: int | None) -> str:
    """How an amount is printed: ``format_euros`` with WinAnsi spaces (``7 920,00 €``)."""
    return "—" if cents is None else pdf_text(format_euros(cents))


def french_date(day: date | datetime) -> str:
    if isinstance(day, datetime):
        day = day.astimezone(PARIS).date()
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {_MONTHS[day.month - 1]} {day.year}"


def french_instant(instant: datetime) -> str:
    local = instant.astimezone(PARIS)
    return f"{french_date(local.date())} à {local.hour} h {local.minute:02d}"


def _km(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}".replace(".", ",") + NBSP + "km"


def percent(bp: int) -> str:
    whole, rest = divmod(bp, 100)
    return (f"{whole}" if rest == 0 else f"{whole},{rest:02d}".rstrip("0")) + NBSP + "%"


class Styles:
    def __init__(self) -> None:
        base = ParagraphStyle("base", fontName="Helvetica", fontSize=9, leading=11.5, alignment=TA_LEFT)
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=9)
        self.small_bold = ParagraphStyle("small_bold", parent=self.small, fontName="Helvetica-Bold")
        self.label = ParagraphStyle("label", parent=base, fontName="Helvetica-Bold")
        self.title = ParagraphStyle("title", parent=base, fontName="Helvetica-Bold", fontSize=15, leading=19,
                                    spaceAfter=2 * mm)
        self.subtitle = ParagraphStyle("subtitle", parent=base, fontSize=9.5, leading=12, textColor=colors.black)
        self.h2 = ParagraphStyle("h2", parent=base, fontName="Helvetica-Bold", fontSize=11, leading=14,
                                 spaceBefore=5 * mm, spaceAfter=2 * mm, keepWithNext=1)
        self.note = ParagraphStyle("note", parent=base, fontSize=8, leading=10, textColor=colors.HexColor("#333333"))


def par(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(pdf_text(text)), style)


GRID = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#888888")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
])


class AwardRecordPdf:
    """``RecordRenderer`` for PDF."""

    media_type = MEDIA_TYPE

    def render(self, record: AwardRecord) -> bytes:
        s = Styles()
        buffer = io.BytesIO()
        doc = SimpleDocTemplate(
            buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=18 * mm,
            title=pdf_text(f"{TITLE} — demande {record.reference}"), author=pdf_text(record.buyer.name),
            subject=pdf_text(record.object.name), creator="fabrication-broker", invariant=1,
        )
        footer = pdf_text(f"{TITLE} — demande {record.reference} — éditée le {french_instant(record.generated_at)}")

        def on_page(canvas: Canvas, document: SimpleDocTemplate) -> None:
            canvas.saveState()
            canvas.setFont("Helvetica", 7)
            canvas.drawString(15 * mm, 10 * mm, footer)
            canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"page {document.page}")
            canvas.restoreState()

        doc.build(self._story(record, s, doc.width), onFirstPage=on_page, onLaterPages=on_page)
        return buffer.getvalue()

    def _story(self, record: AwardRecord, s: Styles, width: float) -> list[Flowable]:
        story: list[Flowable] = [
            par(TITLE, s.title),
            par(f"Demande {record.reference} — {record.object.name}", s.subtitle),
            par(f"Édité le {french_instant(record.generated_at)} ; statut de la demande : "
               f"{_REQUEST_STATUS.get(record.status, record.status)}.", s.subtitle),
        ]
        if not record.awarded:
            story += [Spacer(1, 2 * mm),
                      par("Document provisoire : la demande n'a pas encore été attribuée ; les sections « Choix » "
                         "et « Justifications » seront complétées lors de l'attribution.", s.note)]
        story += self._buyer_and_object(record, s, width)
        story += self._procedure(record, s, width)
        story += self._invitations(record, s, width)
        story += self._quotes(record, s, width)
        story += self._choice(record, s, width)
        return story

    @staticmethod
    def _pairs(rows: list[tuple[str, str]], s: Styles, width: float) -> Table:
        table = Table([[par(k, s.label), par(v, s.body)] for k, v in rows], colWidths=[0.3 * width, 0.7 * width])
        table.setStyle(TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
            ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]))
        return table

    def _buyer_and_object(self, record: AwardRecord, s: Styles, width: float) -> list[Flowable]:
        b, o = record.buyer, record.object
        buyer = [("Organisation", b.name), ("SIRET", b.siret)]
        if b.purchasing_siret != b.siret:
            buyer.append(("SIRET du service acheteur", b.purchasing_siret))
        if b.service_code:
            buyer.append(("Code service (Chorus Pro)", b.service_code))
        if b.engagement_number:
            buyer.append(("Numéro d'engagement", b.engagement_number))
        place = f"{o.delivery_commune} ({o.delivery_insee})" if o.delivery_commune else o.delivery_insee
        if o.delivery_address:
            place = f"{o.delivery_address}, {place}"
        thing = [
            ("Objet", o.name),
            ("Article du catalogue", o.item_slug or "spécification particulière"),
            ("Quantité", f"{o.quantity} unités"),
            ("Livraison au plus tard le", french_date(o.deadline)),
            ("Lieu de livraison", place),
            ("Commande fractionnable", "oui" if o.allow_split else "non"),
            ("Nombre d'offres souhaité", str(o.min_quotes)),
        ]
        return [par("1. Acheteur", s.h2), self._pairs(buyer, s, width),
                par("2. Objet de l'achat", s.h2), self._pairs(thing, s, width)]

    def _procedure(self, record: AwardRecord, s: Styles, width: float) -> list[Flowable]:
        p = record.procurement
        rows = [("Nature", _NATURES.get(p.nature or "", p.nature or "—"))]
        if p.cpv:
            rows.append(("Code CPV", f"{p.cpv} — {p.cpv_label}" if p.cpv_label else p.cpv))
        rows.append(("Valeur estimée du besoin", f"{money(p.estimated_cents)} HT"))
        if p.budget_cents is not None:
            rows.append(("Budget plafond", f"{money(p.budget_cents)} HT"))
        if p.cumulative is not None:
            c = p.cumulative
            total = c.awarded_cents + c.open_estimates_cents + (p.estimated_cents or 0)
            rows.append((f"Besoin cumulé {c.year}, groupe CPV {c.cpv_group}",
                         f"{money(total)} HT (déjà attribué : {money(c.awarded_cents)} ; autres demandes en cours : "
                         f"{money(c.open_estimates_cents)} ; cette demande : {money(p.estimated_cents)})"))
        rows.append(("Procédure", p.procedure_label or "non déterminée (demande antérieure aux règles de procédure)"))
        if p.threshold_cents is not None:
            rows.append(("Seuil de dispense (R.2122-8)", f"{money(p.threshold_cents)} HT"))
        if p.rule:
            rows.append(("Règle appliquée", p.rule))
        if p.publicity_reference:
            rows.append(("Publicité", p.publicity_reference))
        if p.warning:
            rows.append(("Avertissement", p.warning))
        return [par("3. Procédure", s.h2), self._pairs(rows, s, width), Spacer(1, 2 * mm), par(GOOD_PRACTICE, s.note)]

    def _invitations(self, record: AwardRecord, s: Styles, width: float) -> list[Flowable]:
        head = [par("4. Consultation : ateliers sollicités et réponses", s.h2)]
        if not record.invitations:
            return [*head, par("Aucun atelier n'a été sollicité.", s.body)]

        def row(i: RecordInvitation) -> list[Paragraph]:
            answer = _ANSWERS.get(i.answer, i.answer)
            if i.decline_reason:
                answer += f" : « {i.decline_reason} »"
            rank = str(i.rank) if i.rank else "—"
            score = f"{i.score:.2f}".replace(".", ",")
            return [par(i.workshop_name, s.small), par(_SOURCES.get(i.source, i.source), s.small), par(rank, s.small),
                    par(score, s.small), par(_km(i.distance_km), s.small), par(" ; ".join(i.reasons) or "—", s.small),
                    par(answer, s.small)]

        header = [par(h, s.small_bold) for h in ("Atelier", "Origine", "Rang", "Score", "Distance", "Motifs du choix",
                                                "Réponse")]
        fractions = (0.17, 0.11, 0.05, 0.06, 0.08, 0.33, 0.20)
        table = Table([header, *[row(i) for i in record.invitations]], colWidths=[f * width for f in fractions],
                      repeatRows=1)
        table.setStyle(GRID)
        return [*head, table]

    def _quotes(self, record: AwardRecord, s: Styles, width: float) -> list[Flowable]:
        head = [par("5. Offres reçues et comparaison", s.h2)]
        if not record.quotes:
            return [*head, par("Aucune offre n'a été reçue.", s.body)]

        def remarks(q: RecordQuote) -> str:
            words = [_FLAGS.get(f, f) for f in q.flags]
            if q.status in _QUOTE_STATUS and _QUOTE_STATUS[q.status] not in words:
                words.append(_QUOTE_STATUS[q.status])
            words.insert(0, "valide" if q.valid else "non valide")
            if q.lowest:
                words.append("moins-disante")
            if q.chosen:
                words.append("RETENUE")
            return ", ".join(words)

        def row(q: RecordQuote) -> list[Paragraph]:
            style = s.small_bold if q.chosen else s.small
            return [par(q.workshop_name, style), par(str(q.quantity), style), par(money(q.unit_price_cents), style),
                    par(money(q.ht_cents), style), par(f"{money(q.vat_cents)} ({percent(q.vat_rate_bp)})", style),
                    par(money(q.ttc_cents), style), par(french_date(q.delivery_date), style),
                    par(_km(q.distance_km), style), par(remarks(q), style)]

        header = [par(h, s.small_bold) for h in ("Atelier", "Qté", "Prix unitaire HT", "Total HT", "TVA",
                                                "Total TTC", "Livraison", "Distance", "Observations")]
        fractions = (0.16, 0.05, 0.115, 0.115, 0.12, 0.115, 0.105, 0.075, 0.145)
        table = Table([header, *[row(q) for q in record.quotes]], colWidths=[f * width for f in fractions],
                      repeatRows=1)
        table.setStyle(GRID)
        legend = par("Une offre est valide lorsqu'elle est ouverte, non expirée, livre au plus tard à la date limite "
                    "et porte sur la quantité demandée (ou une partie lorsque la commande est fractionnable). "
                    "Offres classées par total TTC croissant.", s.note)
        return [*head, table, Spacer(1, 1.5 * mm), legend]

    def _choice(self, record: AwardRecord, s: Styles, width: float) -> list[Flowable]:
        story: list[Flowable] = [par("6. Choix", s.h2)]
        if not record.orders:
            story.append(par("Aucune offre n'a été retenue à ce jour.", s.body))
        else:
            header = [par(h, s.small_bold) for h in ("Bon de commande", "Titulaire", "Qté", "Total HT", "Total TTC",
                                                    "Livraison", "État")]
            rows = [[par(o.number, s.small), par(o.workshop_name, s.small), par(str(o.quantity), s.small),
                     par(money(o.ht_cents), s.small), par(money(o.ttc_cents), s.small),
                     par(french_date(o.delivery_date), s.small), par(_ORDER_STATUS.get(o.status, o.status), s.small)]
                    for o in record.orders]
            fractions = (0.20, 0.24, 0.06, 0.13, 0.13, 0.13, 0.11)
            table = Table([header, *rows], colWidths=[f * width for f in fractions], repeatRows=1)
            table.setStyle(GRID)
            story.append(table)
            total = sum(o.ttc_cents for o in record.orders)
            story.append(Spacer(1, 1.5 * mm))
            story.append(par(f"Montant total attribué : {money(sum(o.ht_cents for o in record.orders))} HT, "
                            f"{money(total)} TTC.", s.body))
        story.append(par("7. Justifications", s.h2))
        if record.justifications:
            for j in record.justifications:
                story.append(KeepTogether([par(j.label[:1].upper() + j.label[1:], s.label), par(j.text, s.body),
                                           Spacer(1, 1.5 * mm)]))
        elif record.orders:
            story.append(par("Le choix n'a dérogé à aucune règle : aucune justification n'était requise.", s.body))
        else:
            story.append(par("Sans objet avant l'attribution.", s.body))
        dates = [("Demande créée le", french_instant(record.created_at)),
                 ("Fin de la consultation", french_instant(record.quote_deadline)
                  + (" (close)" if record.window_closed else ""))]
        if record.awarded_at is not None:
            dates.append(("Attribuée le", french_instant(record.awarded_at)))
        if record.awarded_by:
            dates.append(("Décision prise par", f"clé « {record.awarded_by} »"))
        story += [par("8. Dates et décision", s.h2), self._pairs(dates, s, width)]
        return story
