"""French public identifiers: SIRET (Luhn), SIREN and INSEE commune codes."""

from __future__ import annotations

import re

_SIRET = re.compile(r"^\d{14}$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
_POSTCODE = re.compile(r"^\d{5}$")
# La Poste's establishments share SIREN 356000000; their SIRETs do not pass Luhn, INSEE instead
# requires the digit sum to be a multiple of 5 (except the head office, which passes Luhn).
_LA_POSTE_SIREN = "356000000"


def luhn_ok(digits: str) -> bool:
    """True when a string of digits passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def siret_problem(siret: str) -> str | None:
    """Why ``siret`` is not a valid SIRET, or None when it is."""
    if not _SIRET.match(siret):
        return "a SIRET is exactly 14 digits"
    if not luhn_ok(siret[:9]):
        return "the SIREN part (first 9 digits) fails its Luhn check"
    if siret.startswith(_LA_POSTE_SIREN) and not luhn_ok(siret):
        if sum(int(c) for c in siret) % 5 == 0:
            return None
        return "this La Poste SIRET fails its checksum"
    if not luhn_ok(siret):
        return "the SIRET fails its Luhn check"
    return None


def is_insee_code(code: str) -> bool:
    """Shape of a COG commune code: 5 digits, or 2A/2B + 3 digits for Corsica."""
    return bool(_INSEE.match(code))


def is_postcode(code: str) -> bool:
    """Shape of a French postcode."""
    return bool(_POSTCODE.match(code))


_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_LEGAL_FORM = re.compile(r"^\d{4}$")


def iban_problem(iban: str) -> str | None:
    """None for an IBAN of good shape whose check digits are right (ISO 13616: the country and check
    moved to the end, letters as 10-35, the number mod 97 is 1); French IBANs are 27 characters."""
    compact = iban.replace(" ", "").upper()
    if not _IBAN.fullmatch(compact):
        return "an IBAN is a country code, two check digits and up to 30 letters or digits"
    if compact.startswith("FR") and len(compact) != 27:
        return "a French IBAN has 27 characters"
    moved = compact[4:] + compact[:4]
    number = int("".join(str(int(c, 36)) for c in moved))
    return None if number % 97 == 1 else "its check digits are wrong"


def is_legal_form(code: str) -> bool:
    """An INSEE catégorie juridique of level III: four digits (7210 commune, 7364 hospital…)."""
    return bool(_LEGAL_FORM.fullmatch(code))
