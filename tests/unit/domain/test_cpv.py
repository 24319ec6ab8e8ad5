"""CPV codes: format, check digit and membership of the official CPV 2008 list — no database, no Redis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.cpv import DEFAULT_CPV, _nomenclature, cpv_group, cpv_label, cpv_problem, normalise_cpv

# Division-level codes and the furniture / protective-equipment subtrees the broker uses, as published.
KNOWN = [
    "45112500-0", "39130000-2", "33140000-3", "18143000-3", "18142000-6", "45000000-7", "30000000-9",
    "39000000-2", "72000000-5", "48000000-8", "79000000-4", "90000000-7", "50000000-5", "03000000-1",
    "09000000-3", "15000000-8", "18000000-9", "22000000-0", "24000000-4", "33000000-0", "34000000-7",
    "35000000-4", "38000000-5", "42000000-6", "44000000-0", "55000000-0", "60000000-8", "64000000-6",
    "66000000-0", "71000000-8", "80000000-4", "85000000-9", "92000000-1", "98000000-3", "39100000-3",
    "39110000-6", "39120000-9", "39121000-6", "39121100-7", "39122000-3", "39122100-4", "44523200-4",
    # Codes whose published digit is not the 3-7-1 weighted sum: only the list knows them.
    "03300000-2", "09100000-0", "72212000-4", "37442100-8", "34211100-9",
]

CATALOGUE_SLUGS = {
    "france-services-desk", "monitor-stand", "face-visor", "uns1-mask", "door-opener", "epi-storage-cabinet",
}


def _weighted_check_digit(digits: str) -> str:
    return str(sum(weight * int(d) for weight, d in zip((3, 7, 1, 3, 7, 1, 3, 7), digits, strict=True)) % 10)


@pytest.mark.parametrize("code", KNOWN)
def test_official_codes_pass(code):
    assert cpv_problem(code) is None
    assert cpv_label(code)


def test_surrounding_spaces_are_tolerated():
    assert normalise_cpv("  39130000-2\t") == "39130000-2"
    assert cpv_problem(" 39130000-2 ") is None
    assert cpv_label(" 39130000-2 ") == "Mobilier de bureau"


@pytest.mark.parametrize("code", ["39130000-2", "45112500-0", "03300000-2", "37442100-8"])
def test_every_wrong_check_digit_is_refused_with_the_right_one(code):
    for wrong in "0123456789".replace(code[9], ""):
        assert cpv_problem(f"{code[:8]}-{wrong}") == (
            f"chiffre de contrôle erroné : {code[:8]}-{wrong} devrait être {code}"
        )


def test_a_misremembered_check_digit_names_the_published_one():
    assert cpv_problem("45112500-9") == "chiffre de contrôle erroné : 45112500-9 devrait être 45112500-0"
    assert cpv_label("45112500-9") is None


def test_a_code_outside_the_nomenclature_is_refused():
    assert cpv_problem("12345678-9") == "12345678-9 n'est pas un code de la nomenclature CPV"
    assert cpv_label("12345678-9") is None


@pytest.mark.parametrize(
    "text",
    ["", "391300002", "39130000", "39130000-", "39130000-22", "3913000-2", "39130000–2", "39130000 2",
     "3913 0000-2", "A9130000-2", "39130000-X", "39130000-2-1", "٣٩١٣٠٠٠٠-٢"],
)
def test_bad_formats_are_refused(text):
    assert cpv_problem(text) == (
        "le code CPV doit s'écrire sur 8 chiffres suivis d'un tiret et du chiffre de contrôle (ex. 39130000-2)"
    )
    assert cpv_label(text) is None


@pytest.mark.parametrize(
    ("code", "group"), [("39130000-2", "391"), ("39121100-7", "391"), (" 18142000-6 ", "181"), ("03000000-1", "030")]
)
def test_group_is_the_first_three_digits(code, group):
    assert cpv_group(code) == group


def test_group_of_a_malformed_code_raises():
    with pytest.raises(ValueError, match="8 chiffres"):
        cpv_group("391")


def test_every_default_is_a_valid_code_for_a_catalogue_item():
    assert set(DEFAULT_CPV) == CATALOGUE_SLUGS
    for slug, code in DEFAULT_CPV.items():
        assert cpv_problem(code) is None, slug


def test_defaults_are_labelled_as_expected():
    assert {slug: cpv_label(code) for slug, code in DEFAULT_CPV.items()} == {
        "france-services-desk": "Bureaux",
        "monitor-stand": "Mobilier de bureau",
        "face-visor": "Visières de sécurité",
        "uns1-mask": "Équipements de protection",
        "door-opener": "Ferrures",
        "epi-storage-cabinet": "Armoires",
    }


def test_the_packaged_list_is_the_whole_cpv_2008():
    codes = _nomenclature()
    assert len(codes) == 9454
    assert all(len(d) == 8 and d.isdigit() and len(c) == 1 and c.isdigit() and label for d, (c, label) in codes.items())
    # The 45 divisions, from 03 (agriculture) to 98 (other community services).
    assert len({d[:2] for d in codes}) == 45
    assert all(cpv_problem(f"{d}-{c}") is None for d, (c, _) in codes.items())


def test_the_weighted_sum_explains_most_check_digits_but_not_all():
    codes = _nomenclature()
    matching = sum(_weighted_check_digit(d) == c for d, (c, _) in codes.items())
    assert matching == 8922  # 94.4 %: the remaining 532 are why the list, not a formula, decides


@given(st.sampled_from(sorted(_nomenclature())), st.integers(1, 9))
def test_any_listed_code_with_another_digit_is_refused(digits, shift):
    check = _nomenclature()[digits][0]
    wrong = str((int(check) + shift) % 10)
    assert cpv_problem(f"{digits}-{wrong}") == f"chiffre de contrôle erroné : {digits}-{wrong} devrait être {digits}-{check}"
