"""The offline commune table."""

from __future__ import annotations

from adapters.geocoding import Commune, FakeGeocoder, load_communes


def test_every_commune_is_there():
    table = load_communes()
    assert len(table) == 34870


def test_lookup_by_insee_keeps_letters_and_zeros():
    table = load_communes()
    ajaccio = table.commune("2A004")
    assert ajaccio is not None and ajaccio.name == "Ajaccio" and ajaccio.department == "2A"
    assert table.commune("2a004") == ajaccio
    assert table.commune("01001").name == "Abergement-Clémenciat"
    rennes = table.commune("35238")
    assert rennes.name == "Rennes" and 48.0 < rennes.lat < 48.2 and -1.8 < rennes.lon < -1.5
    assert table.commune("99999") is None


def test_lookup_by_postcode_returns_every_commune_it_serves():
    table = load_communes()
    names = {c.name for c in table.by_postcode("22300")}
    assert "Lannion" in names and len(names) > 1
    assert table.by_postcode("00000") == ()


def test_fake_records_calls():
    c = Commune(insee="35238", name="Rennes", department="35", region="53", population=1, lat=48.1, lon=-1.7,
                postcodes=("35000",))
    fake = FakeGeocoder([c])
    assert fake.commune("35238") == c and fake.by_postcode("35000") == (c,) and fake.calls == ["35238", "35000"]
