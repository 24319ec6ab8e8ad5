"""DECP records (broker.domain.decp) against the official schemas: the JSON schema 2.0.3 and, in the
XML form the service writes, the XSD 2.0.2 — no database, no Redis."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import msgspec
import pytest
from jsonschema import Draft7Validator
from lxml import etree

from broker.domain.decp import (
    Marche,
    Marches,
    MarchesDocument,
    build_marche,
    duration_months,
    marche_id,
    published,
)
from broker.domain.events import AnyEvent, DecpRecordCreated, recorded
from broker.domain.procurement import Procedure, decp_deadline
from broker.services.decp import marches_xml
from broker.settings import load_settings


def _data(name: str) -> bytes:
    return gzip.decompress((resources.files("broker.domain") / "data" / "decp" / name).read_bytes())


@cache
def _json_schema() -> Draft7Validator:
    schema = json.loads(_data("schema_decp_v2.0.3.json.gz"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


@cache
def _xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(_data("schema_decp_v2.0.2.xsd.gz")))


def _json_errors(document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _json_schema().iter_errors(document)]


def _xml_errors(xml: bytes) -> list[str]:
    schema = _xsd()
    schema.validate(etree.fromstring(xml))
    return [str(e) for e in schema.error_log]


def _document(*marches: Marche) -> dict[str, Any]:
    return msgspec.to_builtins(MarchesDocument(marches=Marches(marche=list(marches))))


def _marche(**overrides: Any) -> Marche:
    given: dict[str, Any] = {
        "request_id": "0b6f3c1e-8d4f-4a51-9a57-4c1d2e3f4a5b", "buyer_siret": "21220113100019",
        "name": "Bureau France Services", "quantity": 30, "cpv": "39121100-7",
        "procedure": Procedure.SANS_PUBLICITE, "delivery_insee": "2B002", "notified_on": date(2026, 5, 4),
        "ends_on": date(2026, 6, 30), "amount_cents": 45_000_00, "titulaire_sirets": ["35600000000048"],
        "offers_received": 3,
    }
    return build_marche(**(given | overrides))


CASES = {
    "sans publicité": {},
    "MAPA, cents, split between two workshops": {
        "procedure": Procedure.MAPA, "amount_cents": 75_123_45,
        "titulaire_sirets": ["35600000000048", "73282932000074", "35600000000048"], "offers_received": 5},
    "MAPA with publicity, one unit, no quote counted": {
        "procedure": Procedure.MAPA_PUBLICITE, "quantity": 1, "amount_cents": 150_000_00, "offers_received": 0},
    "a name at the schema's length limit": {"name": "x" * 1200, "ends_on": date(2026, 5, 1)},
}


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_a_built_record_is_valid_against_both_official_schemas(overrides):
    marche = _marche(**overrides)
    assert _json_errors(_document(marche)) == []
    assert _xml_errors(marches_xml([marche])) == []


def test_the_record_says_what_the_award_was():
    marche = msgspec.to_builtins(_marche(procedure=Procedure.MAPA, amount_cents=75_123_45, titulaire_sirets=[
        "35600000000048", "73282932000074", "35600000000048"]))
    assert marche["acheteur"] == {"id": "21220113100019"}
    assert marche["codeCPV"] == "39121100"  # without the check digit, as the schema recommends
    assert marche["procedure"] == "Procédure adaptée"
    assert marche["montant"] == 75123.45
    assert marche["lieuExecution"] == {"code": "2B002", "typeCode": "Code commune"}
    assert marche["dateNotification"] == marche["datePublicationDonnees"] == "2026-05-04"
    assert marche["dureeMois"] == 2
    assert [t["titulaire"]["id"] for t in marche["titulaires"]] == ["35600000000048", "73282932000074"]
    assert marche["objet"] == "Bureau France Services\u00a0: 30 unités"
    assert msgspec.to_builtins(_marche())["procedure"] == (
        "Marché passé sans publicité ni mise en concurrence préalable")
    assert msgspec.to_builtins(_marche())["montant"] == 45000


def test_the_validators_refuse_what_the_schema_refuses():
    """The checks above could not pass by accident: a procedure name outside the schema's list, a
    16+ character id, a missing required member each fail both forms."""
    marche = _marche()
    wrong = [
        msgspec.structs.replace(marche, procedure="sans_publicite"),  # type: ignore[arg-type]
        msgspec.structs.replace(marche, id="2026ABCDEFGHIJKLM"),
        msgspec.structs.replace(marche, forme_prix="Ferme"),  # type: ignore[arg-type]
    ]
    for bad in wrong:
        assert _json_errors(_document(bad)), bad
        assert _xml_errors(marches_xml([bad])), bad
    without_titulaires = _document(marche)
    del without_titulaires["marches"]["marche"][0]["titulaires"]
    assert _json_errors(without_titulaires)


def test_an_empty_year_is_a_valid_document_in_both_forms():
    assert _json_errors(_document()) == []
    assert _xml_errors(marches_xml([])) == []


def test_the_xml_form_is_the_json_tree():
    marche = _marche(titulaire_sirets=["35600000000048", "73282932000074"])
    root = etree.fromstring(marches_xml([marche, _marche(request_id="other")]))
    assert root.tag == "marches" and [e.tag for e in root] == ["marche", "marche"]
    first = root[0]
    assert first.findtext("codeCPV") == "39121100" and first.findtext("marcheInnovant") == "false"
    assert first.findtext("montant") == "45000"
    assert [t.findtext("id") for t in first.find("titulaires")] == ["35600000000048", "73282932000074"]
    assert [t.text for t in first.find("techniques")] == ["Sans objet"]


def test_the_id_is_short_stable_and_per_year():
    one = marche_id("0b6f3c1e-8d4f-4a51-9a57-4c1d2e3f4a5b", 2026)
    assert one == marche_id("0b6f3c1e-8d4f-4a51-9a57-4c1d2e3f4a5b", 2026)
    assert re.fullmatch(r"2026[A-Z2-7]{12}", one)  # 16 characters, none the schema asks to avoid
    assert marche_id("0b6f3c1e-8d4f-4a51-9a57-4c1d2e3f4a5b", 2027)[4:] == one[4:]
    assert len({marche_id(f"request-{n}", 2026) for n in range(10_000)}) == 10_000
    assert _marche().id == one


@pytest.mark.parametrize(("start", "end", "months"), [
    (date(2026, 5, 4), date(2026, 5, 4), 1),  # at least one month
    (date(2026, 5, 4), date(2026, 6, 4), 1),
    (date(2026, 5, 4), date(2026, 6, 5), 2),  # a month started counts
    (date(2026, 12, 31), date(2027, 1, 1), 1),
    (date(2026, 1, 31), date(2026, 12, 31), 11),
    (date(2026, 1, 31), date(2027, 2, 1), 13),
])
def test_duration_in_whole_months(start, end, months):
    assert duration_months(start, end) == months


def test_a_formalised_procedure_or_no_titulaire_is_refused():
    with pytest.raises(ValueError, match="formalisee"):
        _marche(procedure=Procedure.FORMALISEE)
    with pytest.raises(ValueError, match="titulaire"):
        _marche(titulaire_sirets=[])


def test_publishing_sets_the_publication_date_only():
    marche = _marche()
    later = published(marche, date(2026, 6, 1))
    assert later.date_publication_donnees == "2026-06-01" and later.date_notification == "2026-05-04"
    assert msgspec.structs.replace(later, date_publication_donnees=marche.date_publication_donnees) == marche
    assert _json_errors(_document(later)) == []


def test_the_event_carries_the_record_and_decodes_strictly():
    marche = _marche()
    event = DecpRecordCreated(id=marche.id, request_id="r", year=2026, amount_cents=45_000_00,
                              notified_on="2026-05-04", due_on=decp_deadline(date(2026, 5, 4)).isoformat(),
                              marche=marche)
    stored = recorded(event, org_id="org", resource_id=marche.id)
    assert stored.resource_type == "decp_record" and stored.data["due_on"] == "2026-07-04"
    payload = json.loads(json.dumps({"type": stored.type, **stored.data}))  # as the outbox gives it back
    assert msgspec.convert(payload, AnyEvent, strict=True) == event
    assert _json_errors({"marches": {"marche": [payload["marche"]]}}) == []


def test_the_threshold_is_a_setting():
    assert load_settings({}).decp_threshold_eur_ht == 40_000
    assert load_settings({"BROKER_DECP_THRESHOLD_EUR_HT": "60000"}).decp_threshold_eur_ht == 60_000
