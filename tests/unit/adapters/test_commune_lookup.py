"""Issue 21 item 4: a commune typed as a person types it — INSEE code, postcode or name — resolved
against the offline table, and read back by the web forms (no database)."""

from __future__ import annotations

import pytest

from adapters.geocoding import Commune, FakeGeocoder, load_communes
from adapters.geocoding.lookup import Via, commune_label, name_key, resolve_commune, suggest_communes
from broker.web.forms import Form


@pytest.fixture(scope="module")
def table():
    return load_communes()


def names(lookup) -> list[tuple[str, str]]:
    return [(c.commune.name, c.commune.department) for c in lookup.candidates]


def test_the_three_reported_cases(table):
    aubusson = resolve_commune("Aubusson", table)  # a name: it was refused
    assert aubusson.commune is None and names(aubusson) == [("Aubusson", "23"), ("Aubusson", "61")]
    mulhouse = resolve_commune("68100", table)  # Mulhouse's postcode and Fulleren's INSEE code
    assert names(mulhouse) == [("Mulhouse", "68"), ("Fulleren", "68")]
    assert [c.via for c in mulhouse.candidates] == [Via.POSTCODE, Via.INSEE]
    epinal = resolve_commune("88160", table)  # Épinal's INSEE code and Le Thillot's postcode
    assert names(epinal)[0] == ("Épinal", "88") and epinal.candidates[0].via is Via.INSEE
    assert {n for n, _ in names(epinal)} == {"Épinal", "Thillot", "Ramonchamp", "Fresse-sur-Moselle", "Ménil"}


@pytest.mark.parametrize(("typed", "insee"), [
    ("2A004", "2A004"), ("2a004", "2A004"), ("20090", "2A004"),  # Corsica: code, lower case, postcode
    ("2B033", "2B033"),
    ("epinal", "88160"), ("EPINAL", "88160"), ("Épinal (88)", "88160"),  # accents typed without
    ("88160 Épinal", "88160"), ("Épinal 88160", "88160"),  # a shared code narrowed by the name
    ("68100 Mulhouse", "68224"), ("Mulhouse (68)", "68224"),
    ("Aubusson (23)", "23008"), ("aubusson (61)", "61011"),
    ("Saint-Denis (93)", "93066"), ("St Denis (974)", "97411"), ("st-denis 93200", "93066"),
    ("le thillot (88)", "88468"), ("L'Île-Saint-Denis", "93039"),
    ("Ile St Denis", "93039"), ("Le Mesnil-St-Denis", "78397"),
    ("Vergné", "17464"), ("Vergne (17)", "17465"),  # same letters, one accent apart, one department
    ("75011", "75056"), ("Marseille", "13055"),  # an arrondissement's postcode: the city
    ("35000", "35238"), ("  rennes  ", "35238"),
])
def test_one_commune(table, typed, insee):
    lookup = resolve_commune(typed, table)
    assert lookup.commune is not None and lookup.commune.insee == insee, names(lookup)


def test_a_shared_name_lists_every_commune_with_its_department(table):
    lookup = resolve_commune("saint denis", table)
    assert lookup.commune is None
    assert names(lookup) == [("Saint-Denis", "974"), ("Saint-Denis", "93"), ("Saint-Denis", "11"),
                             ("Saint-Denis", "30")]
    # the table drops leading articles: « Le Thillot » (Vosges) reads as Thillot (Meuse) too
    assert names(resolve_commune("Le Thillot", table)) == [("Thillot", "88"), ("Thillot", "55")]


def test_a_shared_postcode_lists_its_communes_most_populous_first(table):
    lookup = resolve_commune("22300", table)  # Lannion's postcode, and Saint-Hervé's INSEE code
    populations = [c.commune.population or 0 for c in lookup.candidates]
    assert lookup.candidates[0].commune.name == "Lannion" and populations == sorted(populations, reverse=True)
    assert "Saint-Hervé" in {n for n, _ in names(lookup)}


def test_nothing_or_near_matches(table):
    assert resolve_commune("99999", table).candidates == ()
    assert resolve_commune("Aubusson (75)", table).candidates == ()
    assert resolve_commune("22300 Guingamp", table).candidates == ()  # a code and a name that disagree
    near = resolve_commune("Mulhou", table)  # not a name: offered, never taken
    assert near.commune is None and names(near)[0] == ("Mulhouse", "68") and near.candidates[0].via is Via.NEAR
    assert resolve_commune("", table).candidates == ()


def test_every_label_reads_back_as_its_commune(table):
    """What a form shows (« Épinal (88) ») and posts again must mean that commune, for all 34,870."""
    wrong = [c.insee for c in table.all() if resolve_commune(commune_label(c), table).commune != c]
    assert wrong == []


def test_names_fold_case_accents_punctuation_articles_and_saints():
    assert name_key("L'Haÿ-les-Roses") == name_key("hay les roses") == "hay les roses"
    assert name_key("Ste-Marie-aux-Mines") == "sainte marie aux mines"
    assert name_key("Œuilly") == "oeuilly"
    assert name_key("La") == "la"  # an article alone is kept


def test_suggestions_start_with_the_most_populous(table):
    assert [commune_label(c) for c in suggest_communes("mulh", table)][:2] == ["Mulhouse (68)", "Mulhausen (67)"]
    assert [c.insee for c in suggest_communes("68100", table)] == ["68224", "68100"]
    saint = suggest_communes("Saint-Denis", table)
    assert [c.insee for c in saint[:2]] == ["97411", "93066"] and len(saint) == 10


def test_the_fake_finds_names_too():
    commune = Commune(insee="35238", name="Rennes", department="35", region="53", population=222485,
                      lat=48.11, lon=-1.68, postcodes=("35000", "35200", "35700"))
    fake = FakeGeocoder([commune])
    assert fake.by_name("RENNES") == (commune,) and fake.by_name("ren", prefix=True) == (commune,)
    assert resolve_commune("rennes", fake).commune == commune


# ---- the form field ------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "insee", "shown"), [
    ("Aubusson (23)", "23008", "Aubusson (23)"),
    ("epinal", "88160", "Épinal (88)"),
    ("2A004", "2A004", "Ajaccio (2A)"),
])
def test_a_single_match_is_taken_and_shown_so_it_posts_again_the_same(table, typed, insee, shown):
    form = Form({"commune": typed})
    assert form.commune("commune", table) == insee and form.ok
    assert form.values["commune"] == shown and Form({"c": shown}).commune("c", table) == insee


def test_several_matches_come_back_as_choices_and_the_pick_is_taken(table):
    form = Form({"commune": "68100"})
    assert form.commune("commune", table) is None
    assert form.errors["commune"] == ("« 68100 » désigne 2 communes : choisissez la vôtre ci-dessous, ou précisez "
                                      "le département, par exemple « Mulhouse (68) ».")
    assert form.choices["commune"] == [
        ("68224", "Mulhouse — Haut-Rhin (68), code postal 68100, 109\u202f443 habitants"),
        ("68100", "Fulleren — Haut-Rhin (68), code INSEE 68100, 342 habitants"),
    ]
    picked = Form({"commune": "68100", "commune_choix": "68100"})
    assert picked.commune("commune", table) == "68100" and picked.values == {"commune": "Fulleren (68)"}
    # a pick that is not among what the field now holds does not count
    stale = Form({"commune": "Saint-Denis", "commune_choix": "68224"})
    assert stale.commune("commune", table) is None and "désigne 4 communes" in stale.errors["commune"]
    assert [insee for insee, _ in stale.choices["commune"]] == ["97411", "93066", "11339", "30247"]
    assert "Saint-Denis — La Réunion (974), codes postaux 97400, 97417, 97490" in stale.choices["commune"][0][1]


def test_a_long_list_is_cut_and_says_so(table):
    form = Form({"c": "51300"})  # the postcode of 46 communes, and the INSEE code of another
    assert form.commune("c", table) is None and len(form.choices["c"]) == 12
    assert "désigne 47 communes" in form.errors["c"]
    assert "(les 12 plus peuplées sur 47 : précisez le nom pour les autres)" in form.errors["c"]


def test_nothing_matches_names_what_was_typed(table):
    form = Form({"c": "Atlantide", "d": ""})
    assert form.commune("c", table) is None and form.errors["c"] == (
        "Aucune commune française ne correspond à « Atlantide » : indiquez son nom, son code postal ou son code "
        "INSEE.")
    assert form.commune("d", table) is None and form.errors["d"] == "Ce champ est obligatoire."
    near = Form({"c": "Mulhou"})
    assert near.commune("c", table) is None and near.errors["c"].startswith("Aucune commune ne s'appelle exactement")
    assert near.choices["c"][0][0] == "68224"
