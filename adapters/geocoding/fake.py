"""An in-memory geocoder for tests: knows only the communes it is given, records lookups."""

from __future__ import annotations

from adapters.geocoding.base import Commune


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
