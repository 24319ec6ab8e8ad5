"""The procedure simulator and the procedure applied at request creation (issue 17, items 2-3)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from factories import WOOD_SHOP, bearer, make_siret, make_workshop, tenant


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def desk(*, estimate: str | None = "9000.00", days: int = 30, **procurement):
    body = {
        "item": "france-services-desk", "quantity": 6,
        "deadline": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "delivery": {"commune_insee": "35238", "address": "Maison France Services, 2 rue de la Mairie"},
        "procurement": {"buyer_siret": make_siret(), **procurement},
    }
    if estimate is not None:
        body["procurement"]["estimated_value_eur_ht"] = estimate
    return body


@pytest.fixture
async def buyer(client, admin_key):
    await make_workshop(client, admin_key, name="Menuiserie du Pays de Rennes", commune_insee="35238",
                        machines=WOOD_SHOP)
    return (await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Ploërmel",
                         commune_insee="56165"))[1]


@pytest.mark.parametrize(
    ("query", "procedure", "threshold"),
    [
        ("nature=fournitures&estimated_value_eur_ht=50000&on=2026-03-31", "mapa", "40000.00"),
        ("nature=fournitures&estimated_value_eur_ht=50000&on=2026-04-01", "sans_publicite", "60000.00"),
        ("nature=travaux&estimated_value_eur_ht=90000&on=2026-06-01", "sans_publicite", "100000.00"),
        ("nature=fournitures&estimated_value_eur_ht=250000&on=2026-06-01", "formalisee", "60000.00"),
        ("nature=services&estimated_value_eur_ht=95000.50&on=2026-06-01", "mapa_publicite", "60000.00"),
    ],
)
async def test_the_simulator_answers_the_issue_examples(client, admin_key, query, procedure, threshold):
    coordinator = (await tenant(client, admin_key, "coordination", "coordinator"))[1]
    for key in (admin_key, coordinator):
        answer = await client.get(f"/v1/procurement/procedure?{query}", headers=bearer(key))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["procedure"], body["threshold_eur_ht"]) == (procedure, threshold), body
        assert "article" in body["rule"] and body["eu_threshold_eur_ht"] in ("216000.00", "5404000.00")


async def test_the_simulator_refuses_bad_input_and_other_roles(client, admin_key):
    maker = (await tenant(client, admin_key, "manufacture", "maker"))[1]
    assert (await client.get("/v1/procurement/procedure?nature=fournitures&estimated_value_eur_ht=1",
                             headers=bearer(maker))).status_code == 403
    for query in ("nature=bois&estimated_value_eur_ht=1", "nature=fournitures&estimated_value_eur_ht=-3",
                  "nature=fournitures&estimated_value_eur_ht=1&on=2026-13-01",
                  "nature=fournitures&estimated_value_eur_ht=1&on=2019-12-31",
                  "nature=fournitures&estimated_value_eur_ht=1&cpv=39130000-5"):
        answer = await client.get(f"/v1/procurement/procedure?{query}", headers=bearer(admin_key))
        assert answer.status_code in (400, 422), (query, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")


async def test_creation_records_the_procedure_and_its_rule(client, buyer):
    created = await client.post("/v1/requests", json=desk(), headers={**bearer(buyer), **idem()})
    assert created.status_code == 201, created.text
    procurement = created.json()["procurement"]
    assert procurement["procedure"] == "sans_publicite" and procurement["nature"] == "fournitures"
    assert procurement["cpv"] == "39121100-7" and procurement["estimated_value_eur_ht"] == "9000.00"
    assert procurement["threshold_eur_ht"] == "60000.00" and "R.2122-8" in procurement["rule"]
    assert procurement["cumulative"]["cpv_group"] == "391" and procurement["warning"] is None


@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        (desk(estimate="250000"), "procedure-formalisee", "/procurement/estimated_value_eur_ht"),
        (desk(estimate="95000", days=30), "mapa-window-too-short", "/quote_window_hours"),
        (desk(estimate="95000") | {"quote_window_hours": 168}, "publicity-reference-required",
         "/procurement/publicity_reference"),
        (desk(estimate="70000") | {"quote_window_hours": 168, "deadline": (datetime.now(UTC) + timedelta(days=5))
                                   .isoformat()}, "mapa-window-too-short", "/deadline"),
        (desk(estimate=None), "estimate-required", "/procurement/estimated_value_eur_ht"),
        (desk(cpv="39130000-5"), "cpv-invalid", "/procurement/cpv"),
        ({k: v for k, v in desk().items() if k != "item"} | {"custom": {
            "name": "Banc", "steps": [{"process": "cnc_routing", "material": "birch_plywood", "thickness_mm": 18,
                                       "part_size_mm": [1200, 400, 18], "minutes_per_unit": 30}]}},
         "cpv-required", "/procurement/cpv"),
    ],
)
async def test_creation_refuses_what_the_law_refuses(client, buyer, db, body, code, pointer):
    before = await _count(db)
    answer = await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == code, problem
    assert pointer in answer.text, problem
    assert await _count(db) == before


async def test_a_mapa_with_its_notice_and_window_is_created(client, buyer):
    body = desk(estimate="95000", publicity_reference="BOAMP 26-123456") | {"quote_window_hours": 168}
    created = await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()})
    assert created.status_code == 201, created.text
    assert created.json()["procurement"]["procedure"] == "mapa_publicite"


async def test_the_cumulative_need_of_the_year_upgrades_the_procedure(client, buyer):
    # 2 × 25 000 € open for office furniture (group 391), then 15 000 €: 65 000 € > 60 000 € → MAPA.
    for _ in range(2):
        first = await client.post("/v1/requests", json=desk(estimate="25000"), headers={**bearer(buyer), **idem()})
        assert first.status_code == 201 and first.json()["procurement"]["procedure"] == "sans_publicite"
    third = await client.post("/v1/requests", json=desk(estimate="15000"), headers={**bearer(buyer), **idem()})
    assert third.status_code == 422 and third.json()["code"] == "mapa-window-too-short", third.text
    third = await client.post("/v1/requests", json=desk(estimate="15000") | {"quote_window_hours": 168},
                              headers={**bearer(buyer), **idem()})
    assert third.status_code == 201, third.text
    procurement = third.json()["procurement"]
    assert procurement["procedure"] == "mapa"
    assert procurement["cumulative"]["open_estimates_eur_ht"] == "50000.00"
    assert "R.2121" in procurement["warning"]
    # Another CPV group is another need; the simulator sees the same sum for this buyer.
    other = await client.post("/v1/requests", json=desk(estimate="15000", cpv="18142000-6"),
                              headers={**bearer(buyer), **idem()})
    assert other.status_code == 201 and other.json()["procurement"]["procedure"] == "sans_publicite", other.text
    simulated = (await client.get("/v1/procurement/procedure?nature=fournitures&estimated_value_eur_ht=1000"
                                  "&cpv=39130000-2", headers=bearer(buyer))).json()
    assert simulated["cumulative"]["open_estimates_eur_ht"] == "65000.00" and simulated["procedure"] == "mapa"


async def _count(db) -> int:
    from sqlalchemy import text

    async with db.reader() as session:
        return int((await session.execute(text("SELECT count(*) FROM fab_request"))).scalar_one())
