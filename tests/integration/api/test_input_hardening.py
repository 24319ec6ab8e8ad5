"""Issue 18, rows F3-F7: hostile input is a 4xx problem that writes nothing, never a 500.

F3 deep JSON nesting, F4 naive or extreme datetimes, F5 a far deadline already stored cannot break
the pages, F6 NUL in strings and ids, F7 an invalid IDNA host in a webhook URL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from crisis_support import seed
from factories import WOOD_SHOP, bearer, create_org, make_siret, make_workshop, matched, tenant
from sqlalchemy import text, update

from broker.db.models import CrisisCallRow, RequestRow

TABLES = ("organization", "api_key", "fab_request", "quote", "crisis_call", "webhook_endpoint", "idempotency_record",
          "outbox_event")


async def _counts(db) -> dict[str, int]:
    async with db.reader() as session:
        return {t: (await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in TABLES}


def _business(counts: dict[str, int]) -> dict[str, int]:
    """Without the Idempotency-Key record of the refusal (ID-3: a 4xx is replayed too)."""
    return {k: v for k, v in counts.items() if k != "idempotency_record"}


def _problem(response, *statuses: int) -> dict:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == response.status_code
    return dict(body)


def _pointers(body: dict) -> list[str | None]:
    return [e.get("pointer") for e in body.get("errors") or []]


def _soon(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _request_body(**overrides):
    return {"item": "france-services-desk", "quantity": 6, "deadline": _soon(),
            "delivery": {"commune_insee": "35238", "address": "2 rue de la Mairie"},
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}} | overrides


def _call_body(**overrides):
    return {"item": "face-visor", "deadline": _soon(10), "priority": 1,
            "delivery_points": [{"label": "CHU de Rennes", "commune_insee": "35238", "quantity": 10,
                                 "priority": 1}]} | overrides


@pytest.fixture
async def keys(client, admin_key):
    _, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    _, coordinator = await tenant(client, admin_key, "coordination", "coordinator")
    _, maker = await tenant(client, admin_key, "manufacture", "maker")
    return {"admin": admin_key, "buyer": buyer, "coordinator": coordinator, "maker": maker}


# ---- F3: deep nesting -----------------------------------------------------------------------

DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000

JSON_WRITES = [
    ("POST", "/v1/organizations", "admin"),
    ("POST", "/v1/requests", "buyer"),
    ("POST", "/v1/crisis-calls", "coordinator"),
    ("PUT", "/v1/workshops/me", "maker"),
    ("POST", "/v1/webhook-endpoints", "buyer"),
]


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
@pytest.mark.parametrize(("method", "path", "role"), JSON_WRITES, ids=[p for _, p, _ in JSON_WRITES])
async def test_f3_deep_nesting_is_refused_before_decoding(client, db, keys, method, path, role, body):
    before = await _counts(db)
    response = await client.request(method, path, content=body,
                                    headers={**bearer(keys[role]), "content-type": "application/json"})
    problem = _problem(response, 400)
    assert "imbrication" in problem["detail"]
    assert await _counts(db) == before


async def test_f3_reasonable_nesting_still_decodes(client, db, keys):
    """A real body (a few levels) goes through; 33 levels of a wrong shape is an ordinary 400."""
    response = await client.post("/v1/requests", json=_request_body(), headers=bearer(keys["buyer"]))
    assert response.status_code == 201, response.text


# ---- F4: naive and extreme datetimes --------------------------------------------------------

NAIVE = "2027-06-01T00:00:00"
FAR = "9999-12-31T23:59:59-14:00"
FAR_Z = "9999-12-31T23:59:59Z"
ANCIENT = "0001-01-01T00:00:00+14:00"


@pytest.mark.parametrize("value", [NAIVE, FAR, FAR_Z, ANCIENT], ids=["naive", "far", "far-z", "ancient"])
async def test_f4_request_deadline(client, db, keys, value):
    before = await _counts(db)
    response = await client.post("/v1/requests", json=_request_body(deadline=value),
                                  headers={**bearer(keys["buyer"]), "Idempotency-Key": str(uuid.uuid4())})
    problem = _problem(response, 422)
    assert "/deadline" in _pointers(problem), problem
    assert _business(await _counts(db)) == _business(before)


@pytest.mark.parametrize("value", [NAIVE, FAR, FAR_Z, ANCIENT], ids=["naive", "far", "far-z", "ancient"])
async def test_f4_crisis_deadline(client, db, keys, value):
    before = await _counts(db)
    response = await client.post("/v1/crisis-calls", json=_call_body(deadline=value),
                                 headers=bearer(keys["coordinator"]))
    problem = _problem(response, 422)
    assert "/deadline" in _pointers(problem), problem
    assert await _counts(db) == before


@pytest.mark.parametrize("value", [NAIVE, FAR, ANCIENT], ids=["naive", "far", "ancient"])
async def test_f4_quote_valid_until(client, db, admin_key, keys, value):
    """On a request the maker is invited to (the unfixed code compared the naive date there: 500)."""
    _, maker = await make_workshop(client, admin_key, name="Menuiserie de Rennes", commune_insee="35238",
                                   machines=WOOD_SHOP)
    created = await client.post("/v1/requests", json=_request_body(budget_eur_ht="9000.00"),
                                headers=bearer(keys["buyer"]))
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    await matched(client, keys["buyer"], request_id)
    before = await _counts(db)
    body = {"unit_price_eur_ht": "1100.00", "vat_rate": "20", "quantity": 6,
            "delivery_date": (datetime.now(UTC) + timedelta(days=20)).date().isoformat(), "valid_until": value}
    response = await client.post(f"/v1/requests/{request_id}/quotes", json=body,
                                 headers={**bearer(maker), "Idempotency-Key": str(uuid.uuid4())})
    problem = _problem(response, 422)
    assert "/valid_until" in _pointers(problem), problem
    assert _business(await _counts(db)) == _business(before)


@pytest.mark.parametrize("value", [NAIVE, FAR, ANCIENT, "1999-12-31T23:59:59Z"],
                         ids=["naive", "far", "ancient", "last-century"])
async def test_f4_recover_since(client, db, keys, value):
    endpoint = await client.post("/v1/webhook-endpoints", json={"url": "https://erp.example.org/hooks"},
                                 headers=bearer(keys["buyer"]))
    assert endpoint.status_code == 201, endpoint.text
    before = await _counts(db)
    response = await client.post(f"/v1/webhook-endpoints/{endpoint.json()['id']}/recover", json={"since": value},
                                 headers=bearer(keys["buyer"]))
    problem = _problem(response, 422)
    assert "/since" in _pointers(problem), problem
    assert await _counts(db) == before


async def test_f4_openapi_says_an_offset_is_required(client):
    schema = (await client.get("/schema/openapi.json")).json()
    text_ = str(schema["components"]["schemas"])
    assert "décalage" in text_


# ---- F5: a far deadline already stored does not break the pages -----------------------------


async def test_f5_pages_survive_a_far_deadline_in_the_database(client, db, keys, admin_key):
    await seed(db, workshops_at=[("35238", 30.0, 80.0)], coordinator=False, admin_token=admin_key)
    created = await client.post("/v1/requests", json=_request_body(), headers=bearer(keys["buyer"]))
    assert created.status_code == 201, created.text
    call = await client.post("/v1/crisis-calls", json=_call_body(), headers=bearer(keys["coordinator"]))
    assert call.status_code == 201, call.text
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    async with db.writer() as session:  # as stored before the F4 bound existed
        await session.execute(update(RequestRow).where(RequestRow.id == created.json()["id"])
                              .values(deadline=far, quote_deadline=far))
        await session.execute(update(CrisisCallRow).where(CrisisCallRow.id == call.json()["id"]).values(deadline=far))
        await session.commit()
    for key in (keys["buyer"], keys["coordinator"], admin_key):
        cookie = await _web_session(client, key)
        for page in ("/app/demandes", "/app/crises"):
            response = await client.get(page, headers={"Cookie": cookie}, follow_redirects=False)
            assert response.status_code in (200, 403), (page, response.status_code, response.text[:500])


async def _web_session(client, key: str) -> str:
    """The session cookie of a web sign-in (sent by hand: the cookies are Secure, the client is http)."""
    page = await client.get("/app/connexion")
    token = re.search(r'name="_csrf_signin" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    jar = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    signed = await client.post("/app/connexion", data={"cle": key, "_csrf_signin": token.group(1), "suite": ""},
                               headers={"Cookie": jar}, follow_redirects=False)
    assert signed.status_code == 303, signed.text[:500]
    return f"broker_session={signed.cookies['broker_session']}"


# ---- F6: NUL in strings and ids -------------------------------------------------------------


async def test_f6_nul_in_organisation_name(client, db, admin_key):
    before = await _counts(db)
    body = {"kind": "collectivite", "name": "Commune\u0000de Lannion", "siret": make_siret(),
            "commune_insee": "22113"}
    problem = _problem(await client.post("/v1/organizations", json=body, headers=bearer(admin_key)), 422)
    assert _pointers(problem) == ["/name"], problem
    assert await _counts(db) == before


async def test_f6_nul_in_key_label(client, db, admin_key):
    org = await create_org(client, admin_key)
    before = await _counts(db)
    response = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer", "label": "a\u0000"},
                                 headers=bearer(admin_key))
    assert _pointers(_problem(response, 422)) == ["/label"]
    assert await _counts(db) == before


@pytest.mark.parametrize(("field", "pointer"), [
    ({"delivery": {"commune_insee": "35238", "address": "2 rue\u0000"}}, "/delivery/address"),
    ({"procurement": {"buyer_siret": "21750001600019", "service_code": "S\u0000"}}, "/procurement/service_code"),
], ids=["address", "service-code"])
async def test_f6_nul_in_request_strings(client, db, keys, field, pointer):
    before = await _counts(db)
    response = await client.post("/v1/requests", json=_request_body(**field), headers=bearer(keys["buyer"]))
    assert _pointers(_problem(response, 422)) == [pointer]
    assert await _counts(db) == before


async def test_f6_escaped_backslash_is_not_a_nul(client, keys):
    """`\\\\u0000` in JSON is a backslash then `u0000`: an ordinary string."""
    body = _request_body(delivery={"commune_insee": "35238", "address": "rue \\u0000"})
    response = await client.post("/v1/requests", json=body, headers=bearer(keys["buyer"]))
    assert response.status_code == 201, response.text
    assert response.json()["delivery"]["address"] == "rue \\u0000"


ID_ROUTES = [
    ("GET", "/v1/organizations/{x}", "admin"),
    ("GET", "/v1/organizations/{x}/api-keys", "admin"),
    ("DELETE", "/v1/api-keys/{x}", "admin"),
    ("GET", "/v1/requests/{x}", "buyer"),
    ("GET", "/v1/requests/{x}/matches", "buyer"),
    ("GET", "/v1/requests/{x}/quotes", "buyer"),
    ("GET", "/v1/orders/{x}", "buyer"),
    ("GET", "/v1/orders/{x}/order-x", "buyer"),
    ("GET", "/v1/workshops/{x}", "admin"),
    ("GET", "/v1/catalogue/{x}", "admin"),
    ("GET", "/v1/crisis-calls/{x}", "coordinator"),
    ("GET", "/v1/commitments/{x}", "maker"),
    ("GET", "/v1/webhook-endpoints/{x}/deliveries", "buyer"),
    ("GET", "/v1/communes/{x}", "buyer"),
]


@pytest.mark.parametrize(("method", "path", "role"), ID_ROUTES, ids=[f"{m} {p}" for m, p, _ in ID_ROUTES])
async def test_f6_nul_in_a_path_id_is_404(client, db, keys, method, path, role):
    before = await _counts(db)
    response = await client.request(method, path.format(x="abc%00def"), headers=bearer(keys[role]))
    _problem(response, 404)
    assert await _counts(db) == before


async def test_f6_nul_in_a_query_value_is_400(client, keys):
    response = await client.get("/v1/requests?cursor=ab%00cd", headers=bearer(keys["buyer"]))
    assert "NUL" in _problem(response, 400)["detail"]


# ---- F7: invalid IDNA host ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://xn--zz.fr/", "https://xn--a.example.org/h"])
async def test_f7_invalid_idna_host_is_refused(client, db, keys, url):
    before = await _counts(db)
    response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=bearer(keys["buyer"]))
    problem = _problem(response, 422)
    assert "/url" in _pointers(problem), problem
    assert await _counts(db) == before
