"""CPV codes (Common Procurement Vocabulary, Regulation (EC) No 213/2008), checked against the official list.

A code is written `DDDDDDDD-D`: eight digits, then a check digit. The check digit is data, not a formula:
the weighted sum of the eight digits with weights 3, 7, 1, 3, 7, 1, 3, 7, modulo 10, gives it for 8,922
of the 9,454 codes of the nomenclature (94.4 %); the other 532 sit in whole subtrees (03300000-2 to
03325200-5, the codes under 09100000-0 and under 72212000-4, 37442100-8 to 37442900-8 all ending in 8, …)
whose published digits follow no rule we could fit. So a code is valid when its eight digits are in
the nomenclature and its check digit is the published one; anything else is refused. The list, with
French labels, is `data/cpv-2008.csv.gz`; its source, licence and derivation are in `data/README.md`.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from functools import cache
from importlib import resources

__all__ = ["DEFAULT_CPV", "cpv_group", "cpv_label", "cpv_problem", "normalise_cpv"]

_FORMAT = re.compile(r"[0-9]{8}-[0-9]")
_DATA = "cpv-2008.csv.gz"

_FORMAT_PROBLEM = (
    "le code CPV doit s'écrire sur 8 chiffres suivis d'un tiret et du chiffre de contrôle (ex. 39130000-2)"
)

# The default CPV of each catalogue item, the most precise code of the nomenclature that describes it.
# The group (first 3 digits) decides which needs are summed as homogeneous supplies, so it matters as
# much as the code itself.
DEFAULT_CPV: dict[str, str] = {
    # « Bureaux »: a workstation for the France Services adviser. 39156000-0 « Mobilier d'accueil et de
    # réception » would fit too and shares group 391.
    "france-services-desk": "39121100-7",
    # « Mobilier de bureau »: the nomenclature has no monitor-stand code; the plywood riser is an
    # accessory of the desk, made by the same workshops, so it stays in group 391 with it rather than
    # in 30237000-9 « Pièces, accessoires et fournitures pour ordinateurs ».
    "monitor-stand": "39130000-2",
    # « Visières de sécurité »: exactly a protective face visor.
    "face-visor": "18142000-6",
    # « Équipements de protection »: a UNS1 mask is by definition non-medical (AFNOR Spec S76-001), so
    # not a 33xxxxxx medical code; 181 is also the visor's group, as a crisis buyer sums them.
    "uns1-mask": "18143000-3",
    # « Ferrures »: door hardware fitted onto a handle (under 44523000-2 « Charnières, ferrures et
    # raccords »).
    "door-opener": "44523200-4",
    # « Armoires »: a cupboard (39122000-3 « Armoires et bibliothèques » is its parent).
    "epi-storage-cabinet": "39122100-4",
}


def normalise_cpv(text: str) -> str:
    """The code as written, without surrounding whitespace: `" 39130000-2 "` → `"39130000-2"`."""
    return text.strip()


def cpv_problem(text: str) -> str | None:
    """None when `text` is a code of the nomenclature with its check digit, else why not (in French)."""
    code = normalise_cpv(text)
    if _FORMAT.fullmatch(code) is None:
        return _FORMAT_PROBLEM
    digits, check = code[:8], code[9]
    entry = _nomenclature().get(digits)
    if entry is None:
        return f"{code} n'est pas un code de la nomenclature CPV"
    expected, _label = entry
    if check != expected:
        return f"chiffre de contrôle erroné : {code} devrait être {digits}-{expected}"
    return None


def cpv_group(code: str) -> str:
    """The group (first 3 digits) of a well-formed code, e.g. `"391"`; raises ValueError if malformed."""
    normalised = normalise_cpv(code)
    if _FORMAT.fullmatch(normalised) is None:
        raise ValueError(_FORMAT_PROBLEM)
    return normalised[:3]


def cpv_label(code: str) -> str | None:
    """The French label of a valid code (right check digit included), else None."""
    normalised = normalise_cpv(code)
    if _FORMAT.fullmatch(normalised) is None:
        return None
    entry = _nomenclature().get(normalised[:8])
    if entry is None or entry[0] != normalised[9]:
        return None
    return entry[1]


@cache
def _nomenclature() -> dict[str, tuple[str, str]]:
    """The packaged list, read once: 8 digits → (check digit, French label)."""
    raw = (resources.files("broker.domain") / "data" / _DATA).read_bytes()
    rows = csv.DictReader(io.StringIO(gzip.decompress(raw).decode("utf-8")))
    return {row["code"]: (row["check"], row["label_fr"]) for row in rows}
