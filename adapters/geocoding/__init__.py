"""Geocoding: locate communes by INSEE code or postcode, offline."""

from adapters.geocoding.base import Commune, Geocoder
from adapters.geocoding.communes import CommuneTable, load_communes
from adapters.geocoding.fake import FakeGeocoder

__all__ = ("Commune", "CommuneTable", "FakeGeocoder", "Geocoder", "load_communes")
