"""An in-memory geocoder for tests: knows only the communes it is given, records lookups."""

from __future__ import annotations

from adapters.geocoding.base import Commune
from adapters.geocoding.lookup import name_key, population_order


class FakeGeocoder:
    def __init__(self, communes: list[Commune]) -> None:
        self._communes = {c.insee: c for c in communes}
        self.calls: list[str] = []

    def commune(self, insee: str) -> Commune | None:
        self.calls.append(insee)
        return self._communes.get(insee)

    def by_postcode(self, postcode: str) -> tuple[Commune, ...]:
        self.calls.append(postcode)
        return tuple(sorted((c for c in self._communes.values() if postcode in c.postcodes), key=lambda c: c.insee))

    def by_name(self, name: str, *, prefix: bool = False) -> tuple[Commune, ...]:
        self.calls.append(name)
        key = name_key(name)
        found = (c for c in self._communes.values()
                 if (name_key(c.name).startswith(key) if prefix and key else name_key(c.name) == key))
        return tuple(sorted(found, key=population_order))
