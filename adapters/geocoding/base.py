"""The Geocoder port and the Commune value it returns."""

from __future__ import annotations

from typing import Protocol

import msgspec


class Commune(msgspec.Struct, frozen=True, kw_only=True):
    insee: str
    name: str
    department: str
    region: str
    population: int | None
    lat: float
    lon: float
    postcodes: tuple[str, ...]


class Geocoder(Protocol):
    def commune(self, insee: str) -> Commune | None:
        """The commune with this INSEE (COG) code, or None."""
        ...

    def by_postcode(self, postcode: str) -> tuple[Commune, ...]:
        """Every commune served by this postcode (often several), sorted by INSEE code."""
        ...

    def by_name(self, name: str, *, prefix: bool = False) -> tuple[Commune, ...]:
        """Every commune of this name (or, with ``prefix``, whose name starts so), most populous first;
        names compare as :func:`adapters.geocoding.lookup.name_key` folds them."""
        ...
