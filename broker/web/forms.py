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
from adapters.geocoding.lookup import Candidate, Via, commune_label, department_name, resolve_commune
from broker.domain.identifiers import siret_problem
from broker.errors import BrokerError
from broker.web.labels import PARIS, number
from broker.web.refusals import french, french_siret
from broker.web.refusals import sentence as sentence  # the pages' import of it

T = TypeVar("T")

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
CHOICE_SUFFIX = "_choix"  # ``commune_choix``: the radio button picked among a commune field's candidates
MAX_CHOICES = 12


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "-".join("".join(ch for ch in folded if not unicodedata.combining(ch)).split())


class Form:
    """The posted values (kept as typed, to fill the form again) and the errors found, by field."""

    def __init__(self, data: FormMultiDict | Mapping[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.refusal: BrokerError | None = None  # the last service refusal (its code drives some pages)
        # A commune field's candidates when what was typed names several: (INSEE code, description).
        self.choices: dict[str, list[tuple[str, str]]] = {}
        # Posted by a person, or filled by a page: a page fills a commune field with an INSEE code,
        # which the template shows as « Épinal (88) » (88160 alone is also Le Thillot's postcode).
        self.posted = isinstance(data, FormMultiDict)
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
        """A commune's INSEE code from what was typed: a name (``Aubusson``, ``st denis``), a postcode,
        an INSEE code, or these together (``22300 Lannion``, ``Saint-Denis (93)``).

        One match is taken, and the field then shows it as ``Nom (département)`` so that the form
        posted again means the same commune. Several: the error asks to choose and ``choices`` lists
        them (radio buttons ``<name>_choix``, most populous first); the pick counts while the field
        still holds what it was picked from."""
        typed = self.raw(name)
        if not typed:
            self.error(name, "Ce champ est obligatoire.")
            return None
        lookup = resolve_commune(typed, geocoder)
        picked = self.raw(name + CHOICE_SUFFIX).upper()
        chosen = lookup.commune or next((c.commune for c in lookup.candidates if c.commune.insee == picked), None)
        if chosen is not None:
            self.values[name] = commune_label(chosen)
            self.values.pop(name + CHOICE_SUFFIX, None)
            return chosen.insee
        if not lookup.candidates:
            self.error(name, f"Aucune commune française ne correspond à « {typed} » : indiquez son nom, son code "
                       "postal ou son code INSEE.")
            return None
        shown = lookup.candidates[:MAX_CHOICES]
        self.choices[name] = [(c.commune.insee, _described(c, lookup.code)) for c in shown]
        more = (f" (les {len(shown)} plus peuplées sur {number(len(lookup.candidates))} : précisez le nom "
                "pour les autres)" if len(lookup.candidates) > len(shown) else "")
        if lookup.candidates[0].via is Via.NEAR:
            self.error(name, f"Aucune commune ne s'appelle exactement « {typed} » : choisissez ci-dessous parmi "
                       f"celles dont le nom commence ainsi{more}, ou corrigez la saisie.")
        else:
            self.error(name, f"« {typed} » désigne {len(lookup.candidates)} communes : choisissez la vôtre "
                       f"ci-dessous{more}, ou précisez le département, par exemple "
                       f"« {commune_label(lookup.candidates[0].commune)} ».")
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


def _described(candidate: Candidate, code: str | None) -> str:
    """``Mulhouse — Haut-Rhin (68), code postal 68100, 109 443 habitants``: enough to tell homonyms
    apart, and which reading of a typed code found it."""
    c = candidate.commune
    if candidate.via is Via.POSTCODE and code:
        how = f"code postal {code}"
    elif candidate.via is Via.INSEE or not c.postcodes:
        how = f"code INSEE {c.insee}"
    elif len(c.postcodes) == 1:
        how = f"code postal {c.postcodes[0]}"
    else:
        how = f"codes postaux {', '.join(c.postcodes[:3])}{'…' if len(c.postcodes) > 3 else ''}"
    people = f", {number(c.population)} habitants" if c.population else ""
    return f"{c.name} — {department_name(c.department)} ({c.department}), {how}{people}"


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
