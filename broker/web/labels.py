"""French wording of the interface: statuses, processes, materials, roles; money, dates and numbers
written the French way (``5 232,00 €``, ``12 décembre 2026``)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from broker.domain.invoicing import (
    FRANCHISE_MENTION,
    INDEMNITY_TEXT,
    INTEREST_TEXT,
    LABELS,
    InvoiceKind,
    InvoiceStatus,
    VatRegime,
)

PARIS = ZoneInfo("Europe/Paris")
NNBSP = "\u202f"  # narrow no-break space: French thousands separator and before « € »

MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)

REQUEST_STATUS = {
    "open": "Ouverte — en attente de devis",
    "quoting": "Devis reçus",
    "awarded": "Attribuée",
    "closed": "Clôturée",
    "cancelled": "Annulée",
}

ORDER_STATUS = {
    "awarded": "Attribuée",
    "confirmed": "Confirmée par l'atelier",
    "in_production": "En production",
    "ready": "Prête",
    "shipped": "Expédiée",
    "delivered": "Livrée",
    "closed": "Clôturée",
    "cancelled": "Annulée",
    "disputed": "En litige",
}

# The button label of the maker's next step, from each status.
ORDER_NEXT_STEP = {
    "awarded": ("confirmed", "Confirmer la commande"),
    "confirmed": ("in_production", "Lancer la production"),
    "in_production": ("ready", "Marquer comme prête"),
    "ready": ("shipped", "Marquer comme expédiée"),
}

QUOTE_STATUS = {
    "submitted": "Envoyé",
    "accepted": "Retenu",
    "rejected": "Non retenu",
    "withdrawn": "Retiré",
    "expired": "Expiré",
}


# Where an invitation stands (broker.domain.invitation_state), in the maker's words and in the buyer's.
INVITATION_STATE = {
    "to_answer": "À répondre",
    "quoted": "Devis envoyé",
    "declined": "Déclinée",
    "retained": "Retenu",
    "not_retained": "Non retenu",
    "closed": "Demande close",
}
INVITATION_STATE_BUYER = {
    "to_answer": "Invité",
    "quoted": "Devis reçu",
    "declined": "A décliné",
    "retained": "Retenu",
    "not_retained": "Non retenu",
    "closed": "Sans réponse",
}

PROCESS = {
    "laser_cutting": "Découpe laser",
    "cnc_routing": "Fraisage numérique (défonceuse CNC)",
    "cnc_milling": "Fraisage CNC (métal)",
    "fdm_printing": "Impression 3D à filament (FDM)",
    "sla_printing": "Impression 3D résine (SLA)",
    "sewing": "Couture",
    "embroidery": "Broderie",
    "welding": "Soudure",
    "sheet_metal": "Tôlerie",
    "woodworking": "Menuiserie",
    "finishing": "Finition",
    "assembly": "Assemblage",
}

MATERIAL = {
    "birch_plywood": "contreplaqué de bouleau",
    "mdf": "MDF",
    "petg": "PETG",
    "pla": "PLA",
    "pmma": "PMMA (acrylique)",
    "cotton": "coton",
    "steel": "acier",
    "aluminium": "aluminium",
    "oak": "chêne",
    "abs": "ABS",
    "polyester": "polyester",
    "stainless_steel": "acier inoxydable",
}

# A process as a sentence names it (« étape 1 (usinage CNC, contreplaqué de bouleau 18 mm) »): lower
# case, no parenthesis; `PROCESS` is the title a list or a table shows.
PROCESS_NOUN = {
    "laser_cutting": "découpe laser",
    "cnc_routing": "usinage CNC",
    "cnc_milling": "fraisage CNC des métaux",
    "fdm_printing": "impression 3D à filament",
    "sla_printing": "impression 3D résine",
    "sewing": "couture",
    "embroidery": "broderie",
    "welding": "soudure",
    "sheet_metal": "tôlerie",
    "woodworking": "menuiserie",
    "finishing": "finition",
    "assembly": "assemblage",
}

# The certifications a catalogue item may require and a workshop declare (verified by the operator).
CERTIFICATION = {
    "afnor-spec-s76-001": "AFNOR Spec S76-001 (masques barrières)",
}

# The labels a workshop declares (tags typed on its profile; the known ones by their names).
LABEL = {
    "fablab": "Fab lab",
    "fab-lab": "Fab lab",
    "manufacture-de-proximite": "Manufacture de proximité",
    "tiers-lieu": "Tiers-lieu",
}

ROLE = {
    "admin": "Administration de la plateforme",
    "buyer": "Acheteur (collectivité)",
    "maker": "Atelier de fabrication",
    "coordinator": "Coordination de crise",
    "integration": "Intégration (système)",
}

ORG_KIND = {
    "collectivite": "Collectivité",
    "manufacture": "Manufacture / atelier",
    "coordination": "Cellule de coordination",
    "integrator": "Intégrateur",
    "operator": "Opérateur de la plateforme",
}

EXCLUSION = {
    "process_missing": "Procédé absent",
    "part_too_large": "Pièce trop grande",
    "material_unsupported": "Matériau non travaillé",
    "too_thick": "Épaisseur hors limites",
    "certification_missing": "Certification manquante",
    "out_of_radius": "Trop loin",
    "paused": "Atelier en pause",
    "insufficient_capacity": "Capacité insuffisante",
}

SCORE_PART = {
    "distance": "proximité",
    "slack": "marge de capacité",
    "on_time": "ponctualité",
    "fairness": "équité (commandes remportées sur les 12 derniers mois, pondérées par leur ancienneté)",
}

CHORUS = {
    "none": "Aucune référence exigée",
    "service": "Code service exigé",
    "engagement": "Numéro d'engagement exigé",
    "service_and_engagement": "Code service et numéro d'engagement exigés",
    "service_or_engagement": "Code service ou numéro d'engagement exigé",
}

# ---- public procurement (issue 17) ---------------------------------------------------------------

NATURE = {"fournitures": "Fournitures", "services": "Services", "travaux": "Travaux"}

PROCEDURE = {
    "sans_publicite": "Marché sans publicité ni mise en concurrence préalables",
    "mapa": "Procédure adaptée (MAPA)",
    "mapa_publicite": "Procédure adaptée avec avis de publicité (BOAMP ou JAL)",
    "formalisee": "Procédure formalisée (appel d'offres), hors du courtier",
}

# What each procedure means for the buyer, in one sentence.
PROCEDURE_RULE = {
    "sans_publicite": (
        "Vous pouvez attribuer sans publicité ni mise en concurrence préalables, à condition de choisir une offre "
        "pertinente, de faire une bonne utilisation des deniers publics et de ne pas contracter systématiquement "
        "avec le même atelier lorsque plusieurs offres peuvent répondre au besoin (article R.2122-8)."
    ),
    "mapa": (
        "Consultation ouverte : tous les ateliers vérifiés et éligibles peuvent chiffrer, pas seulement "
        "ceux invités, pendant au moins 7 jours (168 heures)."
    ),
    "mapa_publicite": (
        "Consultation ouverte d'au moins 7 jours (168 heures), avec un avis au BOAMP ou dans un journal "
        "d'annonces légales (article R.2131-12) : indiquez la référence de cet avis."
    ),
    "formalisee": (
        "Ce montant atteint le seuil européen : une procédure formalisée s'impose, que le courtier ne conduit "
        "pas. Publiez-la sur votre profil d'acheteur."
    ),
}

THREE_QUOTES = ("Trois devis : une bonne pratique, pas une obligation légale sous le seuil de "
                "l'article R.2122-8.")

QUOTE_FLAG = {"late": "En retard", "partial": "Partielle", "expired": "Expirée"}

# Why the flag makes a quote invalid for the award, in a sentence.
QUOTE_FLAG_REASON = {
    "late": "livraison promise après la date limite",
    "partial": "quantité inférieure à la demande, qui n'est pas fractionnable",
    "expired": "date de validité dépassée",
}

INVITATION_SOURCE = {
    "matching": "Choisi par le rapprochement",
    "buyer": "Ajouté par l'acheteur",
    "consultation": "Réponse spontanée à la consultation ouverte",
}

# The award rules that ask for a written justification (the codes of the award's 409 answers).
AWARD_RULE = {
    "justification-required": "Le devis retenu n'est pas le moins-disant valide",
    "not-lowest": "Le devis retenu n'est pas le moins-disant valide",
    "invalid-quote": "Le devis retenu n'est pas valide",
    "rotation-justification-required": "Rotation des ateliers",
    "rotation": "Rotation des ateliers",
    "min-quotes-not-met": "Nombre de devis attendu non atteint",
}

# ---- invoices (issue 23) ---------------------------------------------------------------------------

# The domain's wording, as a badge says it (capital first letter).
INVOICE_STATUS = {status.value: text[0].upper() + text[1:] for status, text in LABELS.items()}
INVOICE_KIND = {InvoiceKind.INVOICE.value: "Facture", InvoiceKind.CREDIT_NOTE.value: "Avoir"}

# The colour of an invoice's badge: on its way, paid, or needing the maker's attention. Classes name a
# tone, never a status code (a page shows no code, even in its markup).
INVOICE_TONE = {
    InvoiceStatus.ISSUED.value: "waiting",
    InvoiceStatus.SUBMITTING.value: "waiting",
    InvoiceStatus.DEPOSEE.value: "moving",
    InvoiceStatus.MISE_A_DISPOSITION.value: "moving",
    InvoiceStatus.SERVICE_FAIT.value: "moving",
    InvoiceStatus.MANDATEE.value: "moving",
    InvoiceStatus.MISE_EN_PAIEMENT.value: "paid",
    InvoiceStatus.SUSPENDUE.value: "problem",
    InvoiceStatus.REJETEE.value: "problem",
    InvoiceStatus.CREDITED.value: "closed",
}

# What an invoice says of its VAT: the franchise en base carries its mandatory mention (CGI, art. 293 B).
VAT_REGIME = {VatRegime.NORMAL.value: "TVA facturée", VatRegime.FRANCHISE_EN_BASE.value: FRANCHISE_MENTION}

# The texts that set what a late payment costs (code de la commande publique).
LATE_PAYMENT_TEXT = {"interest": INTEREST_TEXT, "indemnity": INDEMNITY_TEXT}

# The invoicing services' refusals (codes of broker.services.invoices), in the pages' words.



_IDENTIFIER = re.compile(r"(?<![\w-])[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*(?![\w-])")


def readable(text: str) -> str:
    """A message of the matching engine (``étape 1 (cnc_routing, birch_plywood 18 mm) : aucune machine
    « cnc_routing »``) with each identifier of the vocabulary by its French name. The engine stays free
    of the web's words, and the reasons already stored read the same way."""
    return _IDENTIFIER.sub(lambda m: _VOCABULARY.get(m.group(0), m.group(0)), text)


def label(table: dict[str, str], key: object) -> str:
    text = str(key)
    return table.get(text, text.replace("_", " "))


def number(value: float | int | Decimal | None, decimals: int = 0) -> str:
    """``12345.6`` -> ``12 345,6`` (French separators)."""
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}" if decimals else f"{round(value):,}"
    return text.replace(",", NNBSP).replace(".", ",")


def num(value: float | int | None) -> str:
    """A quantity with a decimal only when it has one (``55`` -> ``55``, ``1.5`` -> ``1,5``)."""
    if value is None:
        return "—"
    return number(value, 0 if float(value).is_integer() else 1)


def euros(amount: str | Decimal | int | None) -> str:
    """A decimal string in euros (``"5232.00"``) -> ``5 232,00 €``."""
    if amount is None or amount == "":
        return "—"
    return f"{number(Decimal(str(amount)), 2)}{NNBSP}€"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{number(value * 100)}{NNBSP}%"


def day(value: date | datetime | None) -> str:
    """``12 décembre 2026`` (a datetime is shown on its Paris calendar day)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = paris(value).date()
    first = "1er" if value.day == 1 else str(value.day)
    return f"{first} {MONTHS[value.month - 1]} {value.year}"


def moment(value: datetime | None) -> str:
    """``12 décembre 2026 à 14 h 05`` in Paris time."""
    if value is None:
        return "—"
    local = paris(value)
    return f"{day(local.date())} à {local.hour} h {local.minute:02d}"


def paris(value: datetime) -> datetime:
    """In Paris time; a date at the edge of the calendar (9999-12-31 UTC, stored before the API
    bounded dates: issue 18, F5) has no Paris time and is shown as stored."""
    try:
        return value.astimezone(PARIS)
    except OverflowError:
        return value


def cents(value: int | None) -> str:
    """An amount in euro cents -> ``5 232,00 €``."""
    return "—" if value is None else euros(Decimal(value) / 100)


def rate_bp(value: int | None) -> str:
    """A yearly rate in basis points -> ``10,15 %``."""
    return "—" if value is None else f"{number(Decimal(value) / 100, 2)}{NNBSP}%"


def km(value: float | None) -> str:
    return "—" if value is None else f"{number(value, 1)}{NNBSP}km"


def mm(values: object) -> str:
    if isinstance(values, (list, tuple)):
        return f"{NNBSP}×{NNBSP}".join(num(v) for v in values) + f"{NNBSP}mm"
    return f"{num(values)}{NNBSP}mm"  # type: ignore[arg-type]


# Every identifier a message may quote; a process in running text by its noun.
_VOCABULARY = {**MATERIAL, **CERTIFICATION, **{k: v[0].lower() + v[1:] for k, v in LABEL.items()}, **PROCESS_NOUN}

FILTERS = {
    "euros": euros,
    "cents": cents,
    "rate_bp": rate_bp,
    "number": number,
    "num": num,
    "percent": percent,
    "day": day,
    "moment": moment,
    "km": km,
    "mm": mm,
    "readable": readable,
}

TABLES = {
    "request_status": REQUEST_STATUS,
    "order_status": ORDER_STATUS,
    "quote_status": QUOTE_STATUS,
    "invitation_state": INVITATION_STATE,
    "invitation_state_buyer": INVITATION_STATE_BUYER,
    "process": PROCESS,
    "material": MATERIAL,
    "role": ROLE,
    "org_kind": ORG_KIND,
    "exclusion": EXCLUSION,
    "score_part": SCORE_PART,
    "chorus": CHORUS,
    "nature": NATURE,
    "procedure": PROCEDURE,
    "procedure_rule": PROCEDURE_RULE,
    "quote_flag": QUOTE_FLAG,
    "quote_flag_reason": QUOTE_FLAG_REASON,
    "invitation_source": INVITATION_SOURCE,
    "award_rule": AWARD_RULE,
    "invoice_status": INVOICE_STATUS,
    "invoice_kind": INVOICE_KIND,
    "invoice_tone": INVOICE_TONE,
    "vat_regime": VAT_REGIME,
    "late_payment_text": LATE_PAYMENT_TEXT,
    "certification": CERTIFICATION,
    "label": LABEL,
    "process_noun": PROCESS_NOUN,
}
