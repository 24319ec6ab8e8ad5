"""What a person types for a commune — an INSEE code, a postcode, a name — resolved against the table.

Pure: it reads a :class:`~adapters.geocoding.base.Geocoder` (an in-memory table) and nothing else, so
the web forms and the API give the same answer. Five digits are often both one commune's INSEE code
and another's postcode (68100 is Fulleren's code and Mulhouse's postcode; 88160 is Épinal's code and
Le Thillot's postcode): both readings are kept and the person chooses, most populous first. A name,
with or without its department in brackets (``Saint-Denis (93)``), narrows a code or stands alone.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

import msgspec

from adapters.geocoding.base import Commune, Geocoder

# A COG code (5 digits, or 2A/2B and 3 digits for Corsica) or a postcode, not inside a longer number.
_CODE = re.compile(r"(?<![0-9A-Z])(\d{5}|2[AB]\d{3})(?![0-9A-Z])")
# A department in brackets, as in ``Aubusson (23)``: 2 digits, 2A/2B, or 3 for overseas (971-976).
_DEPARTMENT = re.compile(r"\(\s*(\d{2,3}|2[AB])\s*\)")
_ARTICLES = frozenset({"le", "la", "les", "l"})
_SAINTS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})  # NFKD keeps them whole

# When no name matches exactly, this many names starting with what was typed are offered instead.
NEAR_MATCHES = 10

DEPARTMENTS: dict[str, str] = {
    "01": "Ain", "02": "Aisne", "03": "Allier", "04": "Alpes-de-Haute-Provence", "05": "Hautes-Alpes",
    "06": "Alpes-Maritimes", "07": "Ardèche", "08": "Ardennes", "09": "Ariège", "10": "Aube", "11": "Aude",
    "12": "Aveyron", "13": "Bouches-du-Rhône", "14": "Calvados", "15": "Cantal", "16": "Charente",
    "17": "Charente-Maritime", "18": "Cher", "19": "Corrèze", "2A": "Corse-du-Sud", "2B": "Haute-Corse",
    "21": "Côte-d'Or", "22": "Côtes-d'Armor", "23": "Creuse", "24": "Dordogne", "25": "Doubs", "26": "Drôme",
    "27": "Eure", "28": "Eure-et-Loir", "29": "Finistère", "30": "Gard", "31": "Haute-Garonne", "32": "Gers",
    "33": "Gironde", "34": "Hérault", "35": "Ille-et-Vilaine", "36": "Indre", "37": "Indre-et-Loire",
    "38": "Isère", "39": "Jura", "40": "Landes", "41": "Loir-et-Cher", "42": "Loire", "43": "Haute-Loire",
    "44": "Loire-Atlantique", "45": "Loiret", "46": "Lot", "47": "Lot-et-Garonne", "48": "Lozère",
    "49": "Maine-et-Loire", "50": "Manche", "51": "Marne", "52": "Haute-Marne", "53": "Mayenne",
    "54": "Meurthe-et-Moselle", "55": "Meuse", "56": "Morbihan", "57": "Moselle", "58": "Nièvre", "59": "Nord",
    "60": "Oise", "61": "Orne", "62": "Pas-de-Calais", "63": "Puy-de-Dôme", "64": "Pyrénées-Atlantiques",
    "65": "Hautes-Pyrénées", "66": "Pyrénées-Orientales", "67": "Bas-Rhin", "68": "Haut-Rhin", "69": "Rhône",
    "70": "Haute-Saône", "71": "Saône-et-Loire", "72": "Sarthe", "73": "Savoie", "74": "Haute-Savoie",
    "75": "Paris", "76": "Seine-Maritime", "77": "Seine-et-Marne", "78": "Yvelines", "79": "Deux-Sèvres",
    "80": "Somme", "81": "Tarn", "82": "Tarn-et-Garonne", "83": "Var", "84": "Vaucluse", "85": "Vendée",
    "86": "Vienne", "87": "Haute-Vienne", "88": "Vosges", "89": "Yonne", "90": "Territoire de Belfort",
    "91": "Essonne", "92": "Hauts-de-Seine", "93": "Seine-Saint-Denis", "94": "Val-de-Marne", "95": "Val-d'Oise",
    "971": "Guadeloupe", "972": "Martinique", "973": "Guyane", "974": "La Réunion", "976": "Mayotte",
}


def _words(text: str, *, accents: bool) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    if not accents:
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = "".join(ch if ch.isalnum() or unicodedata.combining(ch) else " " for ch in folded).split()
    words = [_SAINTS.get(w, w) for w in words]
    if len(words) > 1 and words[0] in _ARTICLES:  # the table writes « Thillot » for Le Thillot
        words = words[1:]
    return words


def name_key(text: str) -> str:
    """How names compare: ``Le Mesnil-St-Denis`` and ``mesnil saint denis`` alike (no case, accents,
    punctuation, leading article; « St »/« Ste » as « Saint »/« Sainte »)."""
    return " ".join(_words(text, accents=False))


def _spelling(text: str) -> str:
    """``name_key`` keeping the accents: tells Vergné from Vergne (both in Charente-Maritime)."""
    return " ".join(_words(unicodedata.normalize("NFC", text), accents=True))


def population_order(commune: Commune) -> tuple[int, str, str]:
    """Most populous first, then by name and INSEE code (a total order)."""
    return (-(commune.population or 0), commune.name, commune.insee)


def department_name(code: str) -> str:
    return DEPARTMENTS.get(code, code)


def commune_label(commune: Commune) -> str:
    """``Épinal (88)``: how a commune is shown in a field, and read back as that same commune."""
    return f"{commune.name} ({commune.department})"


class Via(StrEnum):
    """Which reading of the typed text found a candidate."""

    INSEE = "insee"
    POSTCODE = "postcode"
    NAME = "name"
    NEAR = "near"  # a name starting with what was typed: offered, never taken


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    commune: Commune
    via: Via


class CommuneLookup(msgspec.Struct, frozen=True, kw_only=True):
    """The answer: ``commune`` when exactly one matches; otherwise the ``candidates`` to choose from
    (most populous first), or none at all."""

    typed: str
    code: str | None
    candidates: tuple[Candidate, ...]

    @property
    def commune(self) -> Commune | None:
        if len(self.candidates) == 1 and self.candidates[0].via is not Via.NEAR:
            return self.candidates[0].commune
        return None


def _by_code(code: str, geocoder: Geocoder) -> dict[str, Candidate]:
    found: dict[str, Candidate] = {}
    if (commune := geocoder.commune(code)) is not None:
        found[commune.insee] = Candidate(commune=commune, via=Via.INSEE)
    if code.isdigit():
        for commune in geocoder.by_postcode(code):
            found.setdefault(commune.insee, Candidate(commune=commune, via=Via.POSTCODE))
    return found


def resolve_commune(typed: str, geocoder: Geocoder) -> CommuneLookup:
    """Read ``typed`` as a code (INSEE or postcode), a name, or both, with an optional department in
    brackets; see the module docstring. Matching names ignore case, accents, punctuation, a leading
    article and « St »; when several remain, the one spelled exactly as typed (accents included) wins."""
    text = " ".join(typed.split())
    upper = text.upper()
    code_match = _CODE.search(upper)
    code = code_match.group(1) if code_match else None
    rest = text[: code_match.start()] + " " + text[code_match.end():] if code_match else text
    department_match = _DEPARTMENT.search(rest.upper())
    department = department_match.group(1) if department_match else None
    name = rest[: department_match.start()] + " " + rest[department_match.end():] if department_match else rest
    key = name_key(name)

    if code is not None:
        found = _by_code(code, geocoder)
        if key:
            found = {i: c for i, c in found.items() if name_key(c.commune.name) == key}
    elif key:
        found = {c.insee: Candidate(commune=c, via=Via.NAME) for c in geocoder.by_name(name)}
    else:
        found = {}
    if department is not None:
        found = {i: c for i, c in found.items() if c.commune.department == department}
    if len(found) > 1 and key:
        spelled = [c for c in found.values() if _spelling(c.commune.name) == _spelling(name)]
        if len(spelled) == 1:
            found = {spelled[0].commune.insee: spelled[0]}
    if not found and code is None and len(key) >= 2:
        near = [c for c in geocoder.by_name(name, prefix=True)
                if department is None or c.department == department][:NEAR_MATCHES]
        found = {c.insee: Candidate(commune=c, via=Via.NEAR) for c in near}
    ordered = sorted(found.values(), key=lambda c: population_order(c.commune))
    return CommuneLookup(typed=typed, code=code, candidates=tuple(ordered))


def suggest_communes(typed: str, geocoder: Geocoder, *, limit: int = 10) -> list[Commune]:
    """What a field proposes while the person types: the exact matches, then names starting with
    what was typed, most populous first (``limit`` at most)."""
    lookup = resolve_commune(typed, geocoder)
    found = [c.commune for c in lookup.candidates]
    if lookup.code is None and lookup.candidates and lookup.candidates[0].via is Via.NAME:
        seen = {c.insee for c in found}
        found += [c for c in geocoder.by_name(typed, prefix=True) if c.insee not in seen][:limit]
    return found[:limit]
