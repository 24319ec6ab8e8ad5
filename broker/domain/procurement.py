"""The law of public purchasing the broker applies, as dated data: which procedure an estimated
need calls for on a given day (code de la commande publique, CCP), and the cumulative figure that
keeps a buyer from splitting one need into small purchases.

Every threshold is a row with the dates it applies to and the text that sets it; the procedure is
decided on the day the request is created (Europe/Paris calendar), so a request keeps the rule it
was made under when the thresholds change. Amounts are euro cents HT. Pure: no I/O.

What the broker runs: purchases below the EU thresholds, i.e. without publicity nor competition
(R.2122-8) or by an adapted procedure (MAPA, R.2123-1), with a notice in the BOAMP or a JAL from
90 000 € HT (R.2131-12). At or above the EU thresholds a formalised procedure applies, which the
broker does not run. "Three quotes" is a good practice, never a rule of the code."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

PARIS = ZoneInfo("Europe/Paris")


class Nature(StrEnum):
    FOURNITURES = "fournitures"
    SERVICES = "services"
    TRAVAUX = "travaux"


class Procedure(StrEnum):
    """In increasing order of formality (`RANK`)."""

    SANS_PUBLICITE = "sans_publicite"
    MAPA = "mapa"
    MAPA_PUBLICITE = "mapa_publicite"
    FORMALISEE = "formalisee"


RANK = {p: i for i, p in enumerate(Procedure)}

#: The procedures the broker runs with an open consultation (every eligible workshop may quote).
OPEN_PROCEDURES = frozenset({Procedure.MAPA, Procedure.MAPA_PUBLICITE})

#: Shortest quote window of an adapted procedure: seven days, so that every workshop can answer.
MAPA_MIN_WINDOW_HOURS = 168

BuyerKind = Literal["collectivite", "etat"]
ThresholdKind = Literal["dispense", "publicite", "europeen"]


class Threshold(msgspec.Struct, frozen=True, kw_only=True):
    """One threshold, for one nature, in force from ``valid_from`` to ``valid_until`` (inclusive;
    None while it is in force)."""

    kind: ThresholdKind
    natures: tuple[Nature, ...]
    amount_cents: int
    valid_from: date
    valid_until: date | None
    article: str
    text: str
    buyers: tuple[BuyerKind, ...] = ("collectivite", "etat")

    def applies(self, nature: Nature, on: date, buyer: BuyerKind) -> bool:
        return (nature in self.natures and buyer in self.buyers and self.valid_from <= on
                and (self.valid_until is None or on <= self.valid_until))

    @property
    def citation(self) -> str:
        return f"{self.article}, {self.text}"


_FS = (Nature.FOURNITURES, Nature.SERVICES)
_T = (Nature.TRAVAUX,)
_ALL = (Nature.FOURNITURES, Nature.SERVICES, Nature.TRAVAUX)
_R2122_8 = "article R.2122-8 du code de la commande publique"
_EU = "article L.2124-1 et avis relatif aux seuils de procédure (annexe du code de la commande publique)"

def _eu(first: int, text: str, supplies_local: int, supplies_state: int, works: int) -> tuple[Threshold, ...]:
    """The EU thresholds of two years (euros HT): supplies and services of collectivités and of
    State services, and works (the same for both)."""
    def row(natures: tuple[Nature, ...], euros: int, buyers: tuple[BuyerKind, ...]) -> Threshold:
        return Threshold(kind="europeen", natures=natures, amount_cents=euros * 100, valid_from=date(first, 1, 1),
                         valid_until=date(first + 1, 12, 31), article=_EU, text=text, buyers=buyers)
    return (row(_FS, supplies_local, ("collectivite",)), row(_FS, supplies_state, ("etat",)),
            row(_T, works, ("collectivite", "etat")))


#: The rules table. Keep it sorted by kind, then nature, then date; a test checks that for each
#: (kind, nature, buyer) the rows neither overlap nor leave a gap from 2020-01-01.
THRESHOLDS: tuple[Threshold, ...] = (
    # Below this estimate: no publicity nor competition (R.2122-8).
    Threshold(kind="dispense", natures=_FS, amount_cents=40_000_00, valid_from=date(2020, 1, 1),
              valid_until=date(2026, 3, 31), article=_R2122_8,
              text="seuil fixé par le décret n° 2019-1344 du 12 décembre 2019"),
    Threshold(kind="dispense", natures=_FS, amount_cents=60_000_00, valid_from=date(2026, 4, 1), valid_until=None,
              article=_R2122_8, text="seuil relevé par le décret n° 2025-1386 du 29 décembre 2025"),
    Threshold(kind="dispense", natures=_T, amount_cents=40_000_00, valid_from=date(2020, 1, 1),
              valid_until=date(2020, 12, 8), article=_R2122_8,
              text="seuil fixé par le décret n° 2019-1344 du 12 décembre 2019"),
    Threshold(kind="dispense", natures=_T, amount_cents=100_000_00, valid_from=date(2020, 12, 9),
              valid_until=date(2025, 12, 31), article="article 142 de la loi n° 2020-1525 du 7 décembre 2020 (ASAP)",
              text="dispense temporaire pour les travaux, prorogée par les décrets n° 2022-1683 du "
                   "28 décembre 2022 et n° 2024-1217 du 28 décembre 2024"),
    Threshold(kind="dispense", natures=_T, amount_cents=100_000_00, valid_from=date(2026, 1, 1), valid_until=None,
              article=_R2122_8, text="seuil des travaux rendu pérenne par le décret n° 2025-1386 du 29 décembre 2025"),
    # From this estimate an adapted procedure needs a notice in the BOAMP or a JAL (R.2131-12).
    Threshold(kind="publicite", natures=_ALL, amount_cents=90_000_00, valid_from=date(2020, 1, 1), valid_until=None,
              article="article R.2131-12 du code de la commande publique",
              text="avis d'appel à la concurrence au BOAMP ou dans un journal d'annonces légales"),
    # EU thresholds (formalised procedure at or above), revised every two years.
    *_eu(2020, "règlements délégués (UE) 2019/1827 à 2019/1829 de la Commission, seuils 2020-2021",
         214_000, 139_000, 5_350_000),
    *_eu(2022, "règlements délégués (UE) 2021/1950 à 2021/1953 de la Commission, seuils 2022-2023",
         215_000, 140_000, 5_382_000),
    *_eu(2024, "règlements délégués (UE) 2023/2495 à 2023/2497 de la Commission, seuils 2024-2025",
         221_000, 143_000, 5_538_000),
    *_eu(2026, "règlements délégués de la Commission fixant les seuils 2026-2027 (avis du 31 décembre 2025)",
         216_000, 140_000, 5_404_000),
)

_PROCEDURE_WORDS = {
    Procedure.SANS_PUBLICITE: "marché sans publicité ni mise en concurrence préalables",
    Procedure.MAPA: "procédure adaptée (MAPA)",
    Procedure.MAPA_PUBLICITE: "procédure adaptée avec publicité au BOAMP ou dans un JAL",
    Procedure.FORMALISEE: "procédure formalisée (appel d'offres)",
}


def procedure_label(procedure: Procedure | str) -> str:
    """The procedure in French words (« procédure adaptée (MAPA) »)."""
    return _PROCEDURE_WORDS[Procedure(procedure)]


def procedure_words(procedure: str | None) -> str | None:
    """`procedure_label` for a stored code that may be absent (None) or no longer known (shown as it is)."""
    if procedure is None:
        return None
    try:
        return procedure_label(procedure)
    except ValueError:
        return procedure


class NoRule(Exception):
    """No threshold is known for that nature on that day (before 2020, or EU thresholds not yet
    published): the broker must be updated, never guess."""


class Cumulative(msgspec.Struct, frozen=True, kw_only=True):
    """What the same buyer has already engaged for the same CPV group (first 3 digits) in the civil
    year: awarded amounts HT and estimates of its requests still open. With this request's estimate
    it is the value of the need that the thresholds apply to (R.2121-1 to R.2121-9)."""

    year: int
    cpv_group: str
    awarded_cents: int
    open_estimates_cents: int

    def total_with(self, estimate_cents: int) -> int:
        return self.awarded_cents + self.open_estimates_cents + estimate_cents


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The procedure for an estimate on a day, with the thresholds it was compared with."""

    procedure: Procedure
    threshold_cents: int  # the R.2122-8 threshold (no publicity nor competition below it)
    publicity_threshold_cents: int
    eu_threshold_cents: int
    rule: str  # the article and the text that set the deciding threshold
    valid_from: date
    cumulative: Cumulative | None = None
    warning: str | None = None

    @property
    def label(self) -> str:
        return _PROCEDURE_WORDS[self.procedure]


def threshold(kind: ThresholdKind, nature: Nature, on: date, buyer: BuyerKind = "collectivite") -> Threshold:
    for row in THRESHOLDS:
        if row.kind == kind and row.applies(nature, on, buyer):
            return row
    raise NoRule(f"aucun seuil « {kind} » connu pour les {nature.value} au {on.isoformat()}")


def decide(nature: Nature, estimate_cents: int, on: date, *, buyer: BuyerKind = "collectivite") -> Decision:
    """The procedure for a need estimated at ``estimate_cents`` HT on the day ``on``."""
    dispense = threshold("dispense", nature, on, buyer)
    publicity = threshold("publicite", nature, on, buyer)
    eu = threshold("europeen", nature, on, buyer)
    if estimate_cents >= eu.amount_cents:
        procedure, deciding = Procedure.FORMALISEE, eu
    elif estimate_cents < dispense.amount_cents:
        procedure, deciding = Procedure.SANS_PUBLICITE, dispense
    elif estimate_cents >= publicity.amount_cents:
        procedure, deciding = Procedure.MAPA_PUBLICITE, publicity
    else:
        procedure, deciding = Procedure.MAPA, dispense
    return Decision(procedure=procedure, threshold_cents=dispense.amount_cents,
                    publicity_threshold_cents=publicity.amount_cents, eu_threshold_cents=eu.amount_cents,
                    rule=deciding.citation, valid_from=deciding.valid_from)


def decide_with_cumulative(
    nature: Nature, estimate_cents: int, on: date, cumulative: Cumulative, *, buyer: BuyerKind = "collectivite"
) -> Decision:
    """`decide` on this estimate and on the year's cumulative need for the CPV group: when the sum
    calls for a more formal procedure than the estimate alone, that one applies, with a warning."""
    alone = decide(nature, estimate_cents, on, buyer=buyer)
    total = cumulative.total_with(estimate_cents)
    together = decide(nature, total, on, buyer=buyer)
    if RANK[together.procedure] <= RANK[alone.procedure]:
        return msgspec.structs.replace(alone, cumulative=cumulative)
    warning = (
        f"Besoin cumulé {format_euros(total)} HT sur l'année {cumulative.year} pour le groupe CPV "
        f"{cumulative.cpv_group} (attribué : {format_euros(cumulative.awarded_cents)}, demandes en cours : "
        f"{format_euros(cumulative.open_estimates_cents)}, cette demande : {format_euros(estimate_cents)}) : "
        f"les achats homogènes d'une même année forment un seul besoin (articles R.2121-1 à R.2121-9), "
        f"la procédure applicable est la {_PROCEDURE_WORDS[together.procedure]}."
    )
    return msgspec.structs.replace(together, cumulative=cumulative, warning=warning)


def paris_day(instant: datetime) -> date:
    return instant.astimezone(PARIS).date()


def civil_year_bounds(year: int) -> tuple[datetime, datetime]:
    """The civil year in Paris, as UTC instants [start, end)."""
    start = datetime(year, 1, 1, tzinfo=PARIS)
    end = datetime(year + 1, 1, 1, tzinfo=PARIS)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def format_euros(cents: int) -> str:
    """``6000000`` → ``60 000,00 €`` (French typography: narrow no-break space between thousands)."""
    whole, rest = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{'-' if cents < 0 else ''}{grouped},{rest:02d}\u00a0€"


def decp_deadline(notified: date) -> date:
    """DECP must be published within two months of notification (arrêté du 22 décembre 2022)."""
    month = notified.month + 2
    year = notified.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    for day in range(notified.day, 0, -1):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return notified + timedelta(days=61)  # pragma: no cover - unreachable


def markdown() -> str:
    """``docs/procurement.md``: the rules as encoded (``python -m broker.domain.procurement``)."""
    kinds = {
        "dispense": "sans publicité ni mise en concurrence en dessous de",
        "publicite": "MAPA avec avis au BOAMP ou dans un JAL à partir de",
        "europeen": "procédure formalisée à partir de",
    }
    lines = [
        "# Achats publics : les règles appliquées",
        "",
        "Généré par `python -m broker.domain.procurement > docs/procurement.md` depuis",
        "`broker/domain/procurement.py` (un test vérifie que ce fichier est à jour). Montants HT.",
        "",
        "La valeur qui compte est celle du **besoin estimé** : les achats homogènes d'une même année civile",
        "(même groupe CPV, les 3 premiers chiffres) forment un seul besoin (articles R.2121-1 à R.2121-9 ;",
        "le fractionnement pour rester sous un seuil est interdit). Le broker additionne, pour l'acheteur et le",
        "groupe CPV, les montants attribués dans l'année, les estimations de ses demandes encore ouvertes et",
        "celle de la nouvelle demande ; si la somme appelle une procédure plus formelle, celle-ci s'applique",
        "(avec un avertissement `cumulative`). La procédure est décidée le jour de la création de la demande",
        "(calendrier de Paris) et reste celle de la demande.",
        "",
        "« Trois devis » est une bonne pratique, pas une règle du code de la commande publique : sous le seuil",
        "de l'article R.2122-8, l'acheteur doit « choisir une offre pertinente, faire une bonne utilisation des",
        "deniers publics et ne pas contracter systématiquement avec un même opérateur économique lorsqu'il",
        "existe une pluralité d'offres susceptibles de répondre au besoin ».",
        "",
        "| seuil | nature | acheteurs | montant | du | au | texte |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in THRESHOLDS:
        natures = ", ".join(n.value for n in row.natures)
        until = row.valid_until.isoformat() if row.valid_until else "—"
        lines.append(f"| {kinds[row.kind]} | {natures} | {', '.join(row.buyers)} | "
                     f"{format_euros(row.amount_cents)} | {row.valid_from.isoformat()} | {until} | {row.citation} |")
    lines += [
        "",
        "## Procédures",
        "",
        "| code | procédure | ce que fait le broker |",
        "|---|---|---|",
        "| `sans_publicite` | " + _PROCEDURE_WORDS[Procedure.SANS_PUBLICITE] + " | invite les meilleurs ateliers ; "
        "l'acheteur peut ajouter un atelier qu'il connaît |",
        "| `mapa` | " + _PROCEDURE_WORDS[Procedure.MAPA] + " | consultation ouverte : tout atelier vérifié qui passe "
        f"les filtres peut répondre ; fenêtre d'au moins {MAPA_MIN_WINDOW_HOURS} h (7 jours) |",
        "| `mapa_publicite` | " + _PROCEDURE_WORDS[Procedure.MAPA_PUBLICITE] + " | idem, et la référence de l'avis "
        "(`procurement.publicity_reference`) est exigée |",
        "| `formalisee` | " + _PROCEDURE_WORDS[Procedure.FORMALISEE] + " | refusée (422 `procedure-formalisee`) : "
        "le broker ne conduit pas d'appel d'offres |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown(), end="")
