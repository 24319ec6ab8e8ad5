"""Public procurement on the web pages (issue 17), without a database: the French wording of every
procedure, flag and award rule, the estimate typed the French way, the server's refusals phrased
next to their field, and the explanation of an award rule from the problem's ``rules``."""

from __future__ import annotations

import pytest

from broker.demo.story import french_euros, procedure_line
from broker.domain import award_rules
from broker.domain.procurement import Procedure
from broker.errors import Conflict, Rejected
from broker.web.forms import Form, french, sentence
from broker.web.labels import AWARD_RULE, PROCEDURE, PROCEDURE_RULE, QUOTE_FLAG, QUOTE_FLAG_REASON, THREE_QUOTES
from broker.web.pages.buyer import REQUEST_FIELDS
from broker.web.pages.procurement import cpv_text, default_cpv, estimate_cents, rule_explanation


def test_every_procedure_flag_and_rule_has_its_french_words():
    assert set(PROCEDURE) == set(PROCEDURE_RULE) == {p.value for p in Procedure}
    assert set(QUOTE_FLAG) == set(QUOTE_FLAG_REASON) == {award_rules.LATE, award_rules.PARTIAL, award_rules.EXPIRED}
    for reason in award_rules.REASONS:
        assert reason in AWARD_RULE
    for code in set(award_rules.CODE_OF.values()):
        assert code in AWARD_RULE
    assert THREE_QUOTES == ("Trois devis\u00a0: une bonne pratique, pas une obligation légale sous le seuil de "
                            "l'article R.2122-8.")


@pytest.mark.parametrize(("typed", "cents"), [
    ("45000", 4_500_000), ("45 000", 4_500_000), ("45\u202f000,50", 4_500_050), ("45000.5 €", 4_500_050),
    ("", None), ("quarante mille", None), ("0", None), ("-5", None), ("12,345", None), ("1234567890", None),
])
def test_an_estimate_is_read_the_french_way(typed, cents):
    assert estimate_cents(typed) == cents


def test_the_cpv_of_an_item_and_its_french_label():
    assert default_cpv("france-services-desk") == "39121100-7"
    assert default_cpv("unknown") == default_cpv(None) == ""
    assert cpv_text("39121100-7") == "39121100-7 — Bureaux"
    assert cpv_text(" 18142000-6 ") == "18142000-6 — Visières de sécurité"
    assert cpv_text("39121100-8") is None and cpv_text("") is None


def _place(exc: Rejected) -> tuple[str, str]:
    form = Form()
    form.refuse(exc, REQUEST_FIELDS)
    assert form.refusal is exc
    ((field, message),) = form.errors.items()
    return field, message


def test_each_refusal_of_the_request_form_sits_next_to_its_field_in_french():
    field, message = _place(Rejected("x", pointer="/quote_window_hours", code="mapa-window-too-short"))
    assert field == "consultation_heures" and "168\u00a0heures" in message and "quote_window_hours" not in message
    field, message = _place(Rejected("x", pointer="/deadline", code="mapa-window-too-short"))
    assert field == "echeance" and "7\u00a0jours" in message
    field, message = _place(Rejected("x", pointer="/procurement/publicity_reference",
                                     code="publicity-reference-required"))
    assert field == "reference_publicite" and "BOAMP" in message and "procurement" not in message
    field, message = _place(Rejected("x", pointer="/procurement/cpv", code="cpv-required"))
    assert field == "cpv" and message.startswith("Indiquez le code CPV")
    field, message = _place(Rejected("chiffre de contrôle erroné : 39121100-8 devrait être 39121100-7",
                                     pointer="/procurement/cpv", code="cpv-invalid"))
    assert (field, message) == ("cpv", "Chiffre de contrôle erroné : 39121100-8 devrait être 39121100-7.")
    field, message = _place(Rejected("x", pointer="/procurement/estimated_value_eur_ht", code="estimate-required"))
    assert field == "estimation" and "valeur estimée" in message
    detail = ("un besoin estimé à 250 000,00 € HT atteint le seuil européen de 216 000,00 € HT : il relève d'une "
              "procédure formalisée (appel d'offres), que le broker ne conduit pas.")
    field, message = _place(Rejected(detail, pointer="/procurement/estimated_value_eur_ht",
                                     code="procedure-formalisee"))
    assert field == "estimation" and message == sentence(detail) and message.startswith("Un besoin estimé")


def test_a_justification_rule_is_explained_with_the_figures_of_the_problem():
    breach = {"reason": "not-lowest", "detail": "Un devis valide moins cher n'est pas retenu : celui de « B », "
                                                "177,24 € TTC contre 196,22 € TTC."}
    exc = Conflict("…", code="justification-required", extensions={"reason": "not-lowest", "rules": [breach]})
    explained = rule_explanation(exc, chosen=[], cheapest=None)
    assert explained is not None
    assert explained["rules"] == [{"reason": "not-lowest", "title": AWARD_RULE["not-lowest"],
                                   "detail": breach["detail"]}]
    assert french(exc).startswith("Justifiez ce choix")
    rotation = Conflict("…", code="rotation-justification-required",
                        extensions={"rules": [{"reason": "rotation", "detail": "L'atelier a remporté 2 des 2 …"}]})
    explained = rule_explanation(rotation, chosen=[], cheapest=None)
    assert explained is not None and explained["rules"][0]["title"] == "Rotation des ateliers"


def test_without_the_problems_rules_the_page_says_what_it_knows():
    exc = Conflict("quote is late", code="justification-required")
    late = rule_explanation(exc, chosen=[{"name": "Atelier A", "ttc": "120.00", "flags": ("late",)}], cheapest=None)
    assert late is not None and late["rules"][0]["reason"] == "invalid-quote"
    assert "livraison promise après la date limite" in late["rules"][0]["detail"]
    dearer = rule_explanation(exc, chosen=[{"name": "Atelier A", "ttc": "120.00", "flags": ()}],
                              cheapest={"name": "Atelier B", "ttc": "99.50"})
    assert dearer is not None and "Atelier B, 99,50\u202f€ TTC" in dearer["rules"][0]["detail"]
    assert rule_explanation(Conflict("x", code="quote-not-valid"), chosen=[], cheapest=None) is None
    assert rule_explanation(None, chosen=[], cheapest=None) is None


def test_the_demo_states_its_procedure_in_french():
    assert french_euros("60000.00") == "60\u202f000\u00a0€"
    assert french_euros("1085.50") == "1\u202f085,50\u00a0€"
    line = procedure_line({"procedure": "sans_publicite", "threshold_eur_ht": "60000.00"})
    assert line == ("procédure\u00a0: marché sans publicité ni mise en concurrence préalables (art. R.2122-8, "
                    "seuil de 60\u202f000\u00a0€ HT)")
