"""Form reading and the French messages of the web interface (no database, no browser)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.geocoding import load_communes
from broker.api.schemas import QuoteIn, RequestIn
from broker.errors import Conflict, Rejected
from broker.web.forms import Form, french
from broker.web.labels import day, euros, moment, number
from broker.web.map import frame, parse_frame, projection
from broker.web.session import Flash, Sealer, new_session


@pytest.fixture(scope="module")
def communes():
    return load_communes()


@pytest.mark.parametrize(("typed", "insee"), [
    ("22113", "22113"),            # an INSEE code
    ("35000", "35238"),            # a postcode serving one commune (Rennes)
    ("22300 Lannion", "22113"),    # a postcode serving several, with the name
    ("Lannion 22300", "22113"),
    ("22300 lannion ", "22113"),
    ("2A004", "2A004"),            # Corsica
    ("29000 Quimper", "29232"),
])
def test_a_commune_by_code_or_postcode_and_name(communes, typed, insee):
    form = Form({"c": typed})
    assert form.commune("c", communes) == insee
    assert form.ok


def test_an_ambiguous_or_unknown_commune_says_why(communes):
    form = Form({"a": "22300", "b": "99999", "d": "Guingamp"})
    assert form.commune("a", communes) is None
    assert "« 22300 » désigne 10 communes" in form.errors["a"]
    assert form.choices["a"][0][0] == "22113"  # Lannion, the most populous, first
    assert form.commune("b", communes) is None and "Aucune commune" in form.errors["b"]
    assert form.commune("d", communes) == "22070"  # a name is understood (issue 21 item 4)


def test_numbers_are_read_the_french_way_and_bounded():
    form = Form({"p": "1 200,50", "q": "12,505", "n": "deux", "k": "0", "m": "42"})
    assert form.decimal("p", low=Decimal(0), high=Decimal(10_000)) == Decimal("1200.50")
    assert form.decimal("q", low=Decimal(0), high=Decimal(100)) is None and "2 décimales" in form.errors["q"]
    assert form.integer("n", low=1, high=10) is None and "nombre entier" in form.errors["n"]
    assert form.integer("k", low=1, high=10) is None and "entre 1 et 10" in form.errors["k"]
    assert form.integer("m", low=1, high=100) == 42


def test_what_was_typed_is_kept_and_the_csrf_token_is_not():
    form = Form({"quantite": "deux cents", "_csrf": "secret"})
    form.integer("quantite", low=1, high=10)
    assert form.values == {"quantite": "deux cents"}


def test_tags_typed_as_words_become_identifiers():
    form = Form({"t": "Manufacture de proximité, fablab", "u": "bois/métal"})
    assert form.tags("t") == ["fablab", "manufacture-de-proximite"]
    form.tags("u")
    assert "bois/métal" in form.errors["u"]


def test_the_api_struct_has_the_last_word_and_its_error_lands_on_the_field():
    form = Form()
    body = form.convert({"unit_price_eur_ht": "3.999", "vat_rate": "20", "quantity": 1,
                         "delivery_date": "2030-01-01"}, QuoteIn, {"/unit_price_eur_ht": "prix"})
    assert body is None and form.errors == {"prix": "Le format de cette valeur n'est pas valide."}
    form = Form()
    body = form.convert({"quantity": 0, "deadline": datetime(2030, 1, 1, tzinfo=UTC),
                         "delivery": {"commune_insee": "22113"}, "procurement": {"buyer_siret": "21220113100019"}},
                        RequestIn, {"/quantity": "quantite"})
    assert body is None and form.errors == {"quantite": "Le nombre doit valoir au moins 1."}


def test_service_refusals_in_french_next_to_their_field():
    form = Form()
    form.refuse(Rejected("quantity 70 is more than the 60 requested", pointer="/quantity",
                         code="quantity-over-requested", figures={"quantity": 70, "requested": 60}),
                {"/quantity": "quantite"})
    assert form.errors == {"quantite": "La quantité proposée (70) dépasse les 60 unités demandées."}
    form = Form()
    form.refuse(Conflict("2 quote(s) received of the 3 required while the quote window is open (until …): wait",
                         code="min-quotes-not-met", figures={"received": 2, "required": 3}),
                {"code:min-quotes-not-met": "justification"})
    assert "justifiez" in form.errors["justification"]
    assert french(Rejected("buyer_siret: the SIRET fails its Luhn check", pointer="/x", code="siret-invalid",
                           figures={"problem": "the SIRET fails its Luhn check"})).startswith("Ce SIRET")
    assert french(Conflict("x", code="siret-taken")) == "Une organisation avec ce SIRET existe déjà."


def test_french_formats():
    assert euros("5232.00") == "5\u202f232,00\u202f€"
    assert number(1234567) == "1\u202f234\u202f567"
    assert day(datetime(2026, 12, 1, 10, tzinfo=UTC)) == "1er décembre 2026"
    assert moment(datetime(2026, 7, 14, 12, 5, tzinfo=UTC)) == "14 juillet 2026 à 14 h 05"  # Paris, summer time


def test_sealed_cookies_are_bound_to_their_purpose_and_their_secret():
    sealer = Sealer("a" * 32)
    session = new_session("fab_x_y", org_name="Commune de Lannion", now=1_000_000)
    sealed = sealer.seal_session(session)
    assert sealer.open_session(sealed, now=1_000_100) == session
    assert sealer.open_session(sealed, now=1_000_000 + 11 * 3600) is None  # expired
    assert Sealer("b" * 32).open_session(sealed, now=1_000_100) is None  # another secret
    assert sealer.open_flash(sealed) is None  # a session is not a flash
    assert sealer.open_session(sealed[:-2] + "AA", now=1_000_100) is None  # tampered
    assert sealer.open_flash(sealer.seal_flash(Flash(kind="ok", text="Bonjour"))) == Flash(kind="ok", text="Bonjour")
    assert "fab_x_y" not in sealed and "Lannion" not in sealed


def test_map_frames_round_trip_and_refuse_nonsense():
    box = projection([(48.51, -2.76), (48.73, -3.46), (47.65, -2.76)])
    again = parse_frame(frame(box))
    assert again is not None and again.xy(48.51, -2.76) == pytest.approx(box.xy(48.51, -2.76), abs=1.0)
    assert parse_frame("1,2,3") is None and parse_frame("50,40,0,1,500,500") is None
    assert parse_frame("0,80,0,100,500,500") is None  # far too big an area
