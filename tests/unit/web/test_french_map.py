"""Issue 21 item 1, the tables: every refusal code the services can raise has its French sentence
(with its figures), every identifier of the catalogue and matching vocabulary its French name, and
every write of the API and the pages its verb in the audit journal."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from broker.db.constraints import UNIQUE_RULES
from broker.demo import data as demo
from broker.domain import award_rules
from broker.domain.catalogue import Process
from broker.errors import BrokerError, Conflict, InvalidTransition, Rejected
from broker.web.forms import french
from broker.web.labels import (
    CERTIFICATION,
    EXCLUSION,
    LABEL,
    MATERIAL,
    PROCESS,
    PROCESS_NOUN,
    readable,
)
from broker.web.refusals import DETAIL, REFUSALS
from matching.model import REASON_CODES

ROOT = Path(__file__).resolve().parents[3]
# Where refusals are raised: the use cases and the pure domain, the database's business rules, the adapters.
RAISING = ("broker/services", "broker/domain", "broker/db", "adapters")
_CODE_ARG = re.compile(r"\bcode=\"([a-z0-9-]+)\"")
_CLASS_CODE = re.compile(r"^\s+code = \"([a-z0-9-]+)\"", re.M)
ENGLISH = re.compile(r"\b(the|is|are|must|more than|not found|quantity|units?_\w+)\b")


def raised_codes() -> set[str]:
    """Every ``code="…"`` passed to an error and every error class's ``code = "…"`` under `RAISING`,
    the award rules' codes (computed) and the unique rules' (a table)."""
    codes: set[str] = set()
    for folder in RAISING:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            codes |= set(_CODE_ARG.findall(text)) | set(_CLASS_CODE.findall(text))
    codes |= set(award_rules.CODE_OF.values())
    codes |= {code for code, _message in UNIQUE_RULES.values()}
    codes |= {cls.code for cls in (BrokerError, *_subclasses(BrokerError))}
    return codes - _API_ONLY


def _subclasses(cls: type[BrokerError]) -> list[type[BrokerError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


# Codes only the HTTP API raises about its own framing (a page never sends these headers or bodies).
_API_ONLY = {"idempotency-key-invalid", "idempotency-key-missing", "idempotency-key-reused",
             "idempotency-key-in-flight", "invalid-cursor", "body-too-deep", "nul-character", "00000"}


def test_every_code_raised_has_a_french_sentence():
    codes = raised_codes()
    assert {"crisis-call-accepted", "delivered-over-produced", "no-workshop-in-reach", "concurrent-update",
            "invalid-state-transition", "justification-required", "siret-taken"} <= codes
    missing = sorted(codes - set(REFUSALS))
    assert not missing, f"no French sentence in broker.web.refusals.REFUSALS for {missing}"


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_no_sentence_of_the_map_is_english(code):
    entry = REFUSALS[code]
    if entry == DETAIL:
        return
    exc = Rejected("the detail, in English, never shown", code=code, figures={
        "quantity": 7, "requested": 6, "remaining": 6, "total": 8, "done": 9, "ordered": 8, "reported": 3,
        "produced": 100, "delivered": 200, "committed": 50, "high": 100_000, "current": 40, "commune": "99999",
        "item": "Visière de protection", "considered": 12, "label": "CHU de Rennes", "received": 1, "required": 3})
    text = french(exc)
    assert text and "?" not in text and "English" not in text, (code, text)
    assert not ENGLISH.search(text), (code, text)


def test_the_reported_refusals_with_their_figures():
    delivered = Rejected("units_delivered 200 is more than the 100 units produced", pointer="/units_delivered",
                         code="delivered-over-produced", figures={"delivered": 200, "produced": 100})
    assert french(delivered) == "200 unités livrées, c'est plus que les 100 unités fabriquées."
    assert "annulé" in french(Conflict("makers already accepted commitments of this call: close it instead",
                                       code="crisis-call-accepted"))
    far = Rejected("no workshop within reach …", code="no-workshop-in-reach",
                   figures={"item": "Masque barrière UNS1", "considered": 1_200,
                            "certifications": ["afnor-spec-s76-001"]})
    assert french(far).startswith("Aucun atelier à portée des points de livraison ne sait fabriquer «\u00a0Masque")
    assert "1\u202f200 ateliers inscrits" in french(far) and "AFNOR Spec S76-001" in french(far)
    moved = InvalidTransition("the order is 'delivered'; it cannot become 'cancelled' (allowed: closed, disputed)",
                              figures={"noun": "order", "current": "delivered", "target": "cancelled"})
    assert french(moved) == "La commande est «\u00a0livrée\u00a0» : cette étape n'est plus possible."


def test_a_code_without_a_sentence_is_said_by_its_class_never_in_english():
    assert french(Conflict("something new happened", code="brand-new-code")).startswith("Une modification")
    assert french(Rejected("a new check failed", code="another-new-code")) == (
        "Cette valeur n'est pas acceptée : vérifiez la saisie.")


def _catalogue_seed() -> list[dict]:
    """The catalogue items the migrations seed (read from the migration's source: it is not importable
    by name, its module name starts with a date)."""
    path = next((ROOT / "broker/db/migrations/versions").glob("*_0002_lifecycle.py"))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CATALOGUE" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("no CATALOGUE in the lifecycle migration")


def test_every_identifier_of_the_vocabulary_has_its_french_name():
    assert set(PROCESS) == set(PROCESS_NOUN) == {p.value for p in Process}
    assert set(EXCLUSION) == set(REASON_CODES)
    items = _catalogue_seed()
    materials = {s["material"] for item in items for s in item["steps"]}
    for path in (ROOT / "broker/demo").glob("*.py"):  # the demo's workshops and their machines
        materials |= set(re.findall(r"\"material\": \"([a-z_]+)\"", path.read_text(encoding="utf-8")))
    assert "stainless_steel" in materials
    assert materials and materials <= set(MATERIAL), sorted(materials - set(MATERIAL))
    certifications = {c for item in items for c in item["certifications_required"]} | {demo.AFNOR_MASK}
    assert certifications <= set(CERTIFICATION), sorted(certifications - set(CERTIFICATION))
    for known in ("fablab", "fab-lab", "manufacture-de-proximite", "tiers-lieu"):
        assert known in LABEL


def test_an_exclusion_reason_reads_the_french_names():
    message = "étape 1 (cnc_routing, birch_plywood 18 mm) : aucune machine « cnc_routing »"
    assert readable(message) == "étape 1 (usinage CNC, contreplaqué de bouleau 18 mm) : aucune machine « usinage CNC »"
    assert readable("certification manquante : afnor-spec-s76-001") == (
        "certification manquante : AFNOR Spec S76-001 (masques barrières)")
    assert readable("(matériaux : mdf, oak, stainless_steel)") == "(matériaux : MDF, chêne, acier inoxydable)"
    refused = Rejected("…", code="not-eligible", extensions={"reasons": [
        {"code": "process_missing", "message": "étape 1 (laser_cutting, petg 0,5 mm) : aucune machine « laser_cutting »"}]})
    assert french(refused) == ("Cet atelier ne remplit pas les conditions de la demande\u00a0: étape 1 (découpe laser, "
                               "PETG 0,5 mm) : aucune machine « découpe laser ».")
