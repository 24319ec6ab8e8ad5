"""Form input: read fields with readable French messages, keep what was typed, and map the API's
own validation (msgspec) and the services' errors (``BrokerError`` pointer and code) back to the
field they are about."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec
from litestar.datastructures import FormMultiDict

from adapters.geocoding.base import Geocoder
from broker.domain.identifiers import is_insee_code, is_postcode, siret_problem
from broker.errors import BrokerError
from broker.web.labels import PARIS, number

T = TypeVar("T")

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_CODE = re.compile(r"(?<![0-9A-Z])(\d{5}|2[AB]\d{3})(?![0-9])")


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "-".join("".join(ch for ch in folded if not unicodedata.combining(ch)).split())


def _plain(text: str) -> str:
    """``Saint-Brieuc`` and ``saint brieuc`` alike: no accents, case, punctuation or extra spaces."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(ch if ch.isalnum() else " " for ch in folded if not unicodedata.combining(ch))
    return " ".join(letters.split())


class Form:
    """The posted values (kept as typed, to fill the form again) and the errors found, by field."""

    def __init__(self, data: FormMultiDict | Mapping[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.refusal: BrokerError | None = None  # the last service refusal (its code drives some pages)
        if isinstance(data, FormMultiDict):
            for key in data:
                items = [v for v in data.getall(key) if isinstance(v, str)]
                self.values[key] = items if len(items) > 1 else (items[0] if items else "")
        elif data:
            self.values.update(data)
        self.values.pop("_csrf", None)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def raw(self, name: str) -> str:
        value = self.values.get(name, "")
        return (value[0] if value else "") if isinstance(value, list) else str(value).strip()

    def many(self, name: str) -> list[str]:
        value = self.values.get(name, [])
        items = value if isinstance(value, list) else [value]
        return [str(v).strip() for v in items if str(v).strip()]

    def text(self, name: str, *, required: bool = True, max_length: int = 200, min_length: int = 0) -> str | None:
        value = self.raw(name)
        if not value:
            if required:
                self.error(name, "Ce champ est obligatoire.")
            return None
        if len(value) > max_length:
            self.error(name, f"{number(max_length)} caractères au plus ({number(len(value))} saisis).")
            return None
        if len(value) < min_length:
            self.error(name, f"{number(min_length)} caractères au moins.")
            return None
        return value

    def integer(self, name: str, *, low: int, high: int, required: bool = True) -> int | None:
        value = _SPACES.sub("", self.raw(name))
        if not value:
            if required:
                self.error(name, "Ce champ est obligatoire.")
            return None
        if not re.fullmatch(r"-?\d+", value):
            self.error(name, "Saisissez un nombre entier, sans virgule (par exemple 120).")
            return None
        number_ = int(value)
        if not low <= number_ <= high:
            self.error(name, f"Saisissez un nombre entre {number(low)} et {number(high)}.")
            return None
        return number_

    def decimal(
        self, name: str, *, low: Decimal, high: Decimal, places: int = 2, required: bool = True,
        strict_low: bool = False,
    ) -> Decimal | None:
        """French or English decimal notation (``12,50`` or ``12.50``), at most ``places`` decimals."""
        value = _SPACES.sub("", self.raw(name)).replace(",", ".").removesuffix("€").removesuffix("%")
        if not value:
            if required:
                self.error(name, "Ce champ est obligatoire.")
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or not re.fullmatch(r"\d+(\.\d+)?", value):
            self.error(name, "Saisissez un nombre positif, par exemple 12,50.")
            return None
        if -amount.as_tuple().exponent > places:  # type: ignore[operator]
            self.error(name, f"{places} décimales au plus.")
            return None
        if amount < low or amount > high or (strict_low and amount == low):
            lower = "plus de" if strict_low else "au moins"
            self.error(name, f"Saisissez {lower} {number(low, 2 if low % 1 else 0)} et au plus {number(high)}.")
            return None
        return amount

    def day(self, name: str, *, required: bool = True) -> date | None:
        """A date from ``<input type=date>`` (``2026-12-31``) or typed as ``31/12/2026``."""
        value = self.raw(name)
        if not value:
            if required:
                self.error(name, "Ce champ est obligatoire.")
            return None
        match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value)
        try:
            if match:
                return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
            return date.fromisoformat(value)
        except ValueError:
            self.error(name, "Saisissez une date valide, par exemple 31/12/2026.")
            return None

    def choice(self, name: str, options: Mapping[str, str] | list[str], *, required: bool = True) -> str | None:
        value = self.raw(name)
        if not value:
            if required:
                self.error(name, "Choisissez une valeur dans la liste.")
            return None
        if value not in options:
            self.error(name, "Cette valeur n'est pas dans la liste proposée.")
            return None
        return value

    def checked(self, name: str) -> bool:
        return self.raw(name) in ("on", "1", "true", "oui")

    def siret(self, name: str) -> str | None:
        value = _SPACES.sub("", self.raw(name))
        if not value:
            self.error(name, "Ce champ est obligatoire.")
            return None
        problem = siret_problem(value)
        if problem is not None:
            self.error(name, french_siret(problem))
            return None
        return value

    def commune(self, name: str, geocoder: Geocoder) -> str | None:
        """A commune by INSEE code or postcode, optionally followed by its name (``22300 Lannion``).

        Five digits are often both a commune's INSEE code and another's postcode, and a postcode
        often serves several communes: then the person adds the name, as on an envelope."""
        typed = self.raw(name)
        if not typed:
            self.error(name, "Ce champ est obligatoire.")
            return None
        match = _CODE.search(typed.upper())
        if match is None:
            self.error(name, f"« {typed} » : indiquez un code INSEE ou un code postal (5 caractères), "
                       "suivi si besoin du nom de la commune.")
            return None
        code = match.group(1)
        wanted = _plain(typed[: match.start()] + " " + typed[match.end():])
        found: dict[str, tuple[Any, str]] = {}
        if is_insee_code(code) and (by_code := geocoder.commune(code)) is not None:
            found[by_code.insee] = (by_code, "code INSEE")
        if is_postcode(code):
            for commune in geocoder.by_postcode(code):
                found.setdefault(commune.insee, (commune, "code postal"))
        if wanted:
            found = {k: v for k, v in found.items() if _plain(v[0].name) == wanted}
        if len(found) == 1:
            return next(iter(found))
        if not found:
            self.error(name, f"Aucune commune française ne correspond à « {typed} ».")
            return None
        listed = ", ".join(f"{c.name} ({how}{', INSEE ' + c.insee if how == 'code postal' else ''})"
                           for c, how in list(found.values())[:8])
        more = " et d'autres" if len(found) > 8 else ""
        self.error(name, f"{code} désigne plusieurs communes : {listed}{more}. Ajoutez le nom de la vôtre, "
                   f"par exemple « {code} {next(iter(found.values()))[0].name} ».")
        return None

    def tags(self, name: str, *, max_items: int = 20) -> list[str]:
        """Comma-separated identifiers; ``Manufacture de proximité`` becomes ``manufacture-de-proximite``."""
        typed = [t.strip() for t in re.split(r"[,;\n]", self.raw(name)) if t.strip()]
        items = [_slug(t) for t in typed]
        bad = [t for t, slug in zip(typed, items, strict=True) if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", slug)]
        if bad:
            self.error(name, f"« {bad[0]} » : lettres, chiffres, espaces, « - » et « _ » seulement (60 au plus).")
        elif len(items) > max_items:
            self.error(name, f"{max_items} éléments au plus.")
        return sorted(set(items))

    def convert(self, data: dict[str, Any], kind: type[T], fields: Mapping[str, str]) -> T | None:
        """The API's own input Struct (same bounds as ``/v1``); its error lands on its field."""
        try:
            return msgspec.convert(data, kind)
        except msgspec.ValidationError as exc:
            field, message = msgspec_error(str(exc), fields)
            self.error(field, message)
            return None
        except BrokerError as exc:  # a Struct's own check (dates out of range: issue 18, F4)
            self.refuse(exc, fields)
            return None

    def refuse(self, exc: BrokerError, fields: Mapping[str, str]) -> None:
        """A service's refusal, next to the field its code or pointer names (or above the form)."""
        self.refusal = exc
        name = fields.get(f"code:{exc.code}") or (fields.get(exc.pointer) if exc.pointer else None) or "__all__"
        self.error(name, french(exc))


def deadline_at(day_: date) -> datetime:
    """A deadline typed as a day means the end of that day in Paris."""
    return datetime.combine(day_, time(23, 59), tzinfo=PARIS).astimezone(UTC)


# ---- msgspec's messages, in French --------------------------------------------------------------

_AT = re.compile(r"\s*-\s*at `\$(?P<path>[^`]*)`\s*$")


def _pointer(path: str) -> str:
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)
    return "".join("/" + (name or index) for name, index in parts)


def msgspec_error(message: str, fields: Mapping[str, str]) -> tuple[str, str]:
    match = _AT.search(message)
    pointer = _pointer(match.group("path")) if match else ""
    text = _AT.sub("", message)
    field = fields.get(pointer)
    while field is None and pointer:
        pointer = pointer.rsplit("/", 1)[0]
        field = fields.get(pointer)
    return field or "__all__", _french_msgspec(text)


def _french_msgspec(text: str) -> str:
    if m := re.match(r"Expected `(\w+)` (>=|>|<=|<) ([\d.]+)", text):
        kind = "Le nombre" if m.group(1) in ("int", "float") else "La valeur"
        words = {">=": "au moins", ">": "plus de", "<=": "au plus", "<": "moins de"}[m.group(2)]
        return f"{kind} doit valoir {words} {m.group(3).replace('.', ',')}."
    if m := re.match(r"Expected `str` of length (>=|<=) (\d+)", text):
        return f"{'Au moins' if m.group(1) == '>=' else 'Au plus'} {m.group(2)} caractères."
    if m := re.match(r"Expected `array` of length (>=|<=) (\d+)", text):
        return f"{'Au moins' if m.group(1) == '>=' else 'Au plus'} {m.group(2)} éléments."
    if text.startswith("Expected `str` matching regex"):
        return "Le format de cette valeur n'est pas valide."
    if text.startswith("Invalid enum value"):
        return "Cette valeur n'est pas dans la liste proposée."
    if text.startswith("Object missing required field"):
        return "Ce champ est obligatoire."
    if text.startswith("Expected `int`"):
        return "Saisissez un nombre entier."
    if text.startswith(("Expected `float`", "Expected `number`")):
        return "Saisissez un nombre."
    if text.startswith(("Invalid RFC3339", "Invalid ISO 8601", "Expected `date`", "Expected `datetime`")):
        return "Saisissez une date valide."
    return "Cette valeur n'est pas acceptée."


# ---- the services' refusals, in French ----------------------------------------------------------

_SIRET = {
    "a SIRET is exactly 14 digits": "Un SIRET compte exactement 14 chiffres.",
    "the SIREN part (first 9 digits) fails its Luhn check": (
        "Ce SIRET n'est pas valide : le SIREN (9 premiers chiffres) ne passe pas la clé de contrôle."
    ),
    "this La Poste SIRET fails its checksum": "Ce SIRET de La Poste ne passe pas sa clé de contrôle.",
    "the SIRET fails its Luhn check": "Ce SIRET n'est pas valide : il ne passe pas la clé de contrôle (Luhn).",
}


def french_siret(problem: str) -> str:
    return _SIRET.get(problem, "Ce SIRET n'est pas valide.")


_CODES = {
    "siret-taken": "Une organisation avec ce SIRET existe déjà.",
    "min-quotes-not-met": None,  # phrased from the detail below (it carries the figures)
    "quote-window-closed": "La période de remise des devis est close pour cette demande.",
    "invitation-closed": "Cette invitation est close (déclinée).",
    "quote-exists": "Votre atelier a déjà un devis en cours sur cette demande ; retirez-le d'abord.",
    "quote-not-valid": "Ce devis ne peut plus être retenu (retiré, expiré ou déjà traité).",
    "capacity-exhausted": "L'atelier n'a plus la capacité nécessaire d'ici l'échéance.",
    "not-awardable": "Seule une demande ayant reçu des devis peut être attribuée.",
    "transition-not-yours": "Cette étape revient à l'autre partie de la commande.",
    "concurrent-update": "L'objet a changé entre-temps : rechargez la page et recommencez.",
    "workshop-profile-missing": "Décrivez d'abord votre atelier (page « Mon atelier »).",
    "not-a-workshop": "Seule une organisation de type manufacture a un profil d'atelier.",
    "chorus-reference-missing": None,
    # public procurement (issue 17): the form's own wording, without the API's field names
    "cpv-required": "Indiquez le code CPV de l'achat\u00a0: 8\u00a0chiffres, un tiret et le chiffre de contrôle "
                    "(par exemple 39130000-2).",
    "estimate-required": "Indiquez la valeur estimée du besoin (ou, à défaut, un budget)\u00a0: la procédure en "
                         "dépend.",
    "justification-required": "Justifiez ce choix pour attribuer ce devis (la règle est expliquée ci-dessus).",
    "rotation-justification-required": "Justifiez le choix de cet atelier pour l'attribuer (la règle est expliquée "
                                       "ci-dessus).",
    "publicity-reference-required": "À partir de 90\u202f000\u00a0€ HT, une procédure adaptée exige un avis au BOAMP "
                                    "ou dans un journal d'annonces légales (article R.2131-12)\u00a0: indiquez la "
                                    "référence de cet avis.",
}

# Codes whose detail is written in French by the service (issue 17), shown as they are: they carry
# the figures (amounts, thresholds, the rule) the person needs.
_FRENCH_DETAIL = frozenset({
    "procedure-formalisee", "cpv-invalid", "procedure-unknown-date", "not-eligible", "already-invited",
    "match-pending", "workshop-not-found",
})

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"the deadline must be in the future"), "La date limite doit être dans le futur."),
    (re.compile(r"commune_insee '([^']*)' is not a French commune code"),
     "« {0} » n'est pas un code de commune française."),
    (re.compile(r"no catalogue item '([^']*)'"), "L'article « {0} » n'est pas au catalogue."),
    (re.compile(r"requires a service code"), "La structure Chorus Pro de l'acheteur exige un code service."),
    (re.compile(r"requires an engagement number"),
     "La structure Chorus Pro de l'acheteur exige un numéro d'engagement."),
    (re.compile(r"requires a service code or an engagement number|requires .*service code or"),
     "La structure Chorus Pro de l'acheteur exige un code service ou un numéro d'engagement."),
    (re.compile(r"quantity (\d+) is more than the (\d+) requested"),
     "La quantité proposée ({0}) dépasse les {1} unités demandées."),
    (re.compile(r"this request may not be split: quote the full (\d+) units"),
     "Cette demande ne peut pas être fractionnée : proposez les {0} unités."),
    (re.compile(r"the delivery date is in the past"), "La date de livraison est déjà passée."),
    (re.compile(r"valid_until must be in the future"), "La date de validité doit être dans le futur."),
    (re.compile(r"(\d+) quote\(s\) received of the (\d+) required while the quote window is open"),
     "{0} devis reçu(s) sur les {1} attendus alors que la période de devis est encore ouverte : "
     "attendez sa clôture, ou justifiez l'attribution."),
    (re.compile(r"a quote is listed twice"), "Un devis est sélectionné deux fois."),
    (re.compile(r"is not a quote of this request"), "Ce devis n'appartient pas à cette demande."),
    (re.compile(r"this request may not be split: award exactly one quote"),
     "Cette demande ne peut pas être fractionnée : retenez un seul devis, pour la quantité totale."),
    (re.compile(r"the quotes add up to (\d+) units, more than the (\d+) requested"),
     "Les devis retenus totalisent {0} unités, plus que les {1} demandées."),
    (re.compile(r"shipping needs a tracking reference"),
     "Indiquez la référence de suivi (transporteur et numéro) pour expédier."),
    (re.compile(r"say why the order is (\w+)"), "Expliquez la raison (annulation ou litige)."),
    (re.compile(r"units_done (\d+) is more than the (\d+) ordered"),
     "{0} unités, c'est plus que les {1} commandées."),
    (re.compile(r"progress only moves forward: (\d+) units are already reported"),
     "L'avancement ne recule pas : {0} unités sont déjà déclarées."),
    (re.compile(r"the order is '(\w+)'; progress is reported"),
     "L'avancement se déclare quand la commande est confirmée, en production ou prête."),
    (re.compile(r"the order is '(\w+)'; it cannot become '(\w+)'"),
     "Cette étape n'est pas possible depuis l'état actuel de la commande."),
    (re.compile(r"the request is '(\w+)'; it cannot become"), "Cette demande ne peut plus être annulée."),
    (re.compile(r"not declared by the workshop: (.*)"), "Non déclaré par l'atelier : {0}."),
    (re.compile(r"may hold keys with roles"), "Ce type d'organisation ne peut pas recevoir une clé de ce rôle."),
    (re.compile(r"siret '([^']*)': (.*)"), "{1}"),
    (re.compile(r"buyer_siret: (.*)"), "{0}"),
]


def sentence(text: str) -> str:
    """A service's French detail as a sentence: capital first letter, final full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def french(exc: BrokerError) -> str:
    text = _CODES.get(exc.code)
    if text:
        return text
    if exc.code == "mapa-window-too-short":
        if exc.pointer == "/deadline":
            return ("Une procédure adaptée laisse au moins 7\u00a0jours pour répondre\u00a0: la date limite de "
                    "livraison doit tomber plus de 7\u00a0jours après aujourd'hui.")
        return ("Une procédure adaptée laisse au moins 7\u00a0jours pour répondre\u00a0: portez la durée de la "
                "consultation à 168\u00a0heures au moins.")
    if exc.code in _FRENCH_DETAIL:
        return sentence(exc.detail)
    for pattern, template in _PATTERNS:
        match = pattern.search(exc.detail)
        if match:
            groups = [french_siret(g) if g in _SIRET else g for g in match.groups()]
            return template.format(*groups)
    if exc.code == "not-found":
        return "Introuvable (ou réservé à une autre organisation)."
    return "Opération refusée par le service : " + exc.detail
