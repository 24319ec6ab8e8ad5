"""Bad input, tried as a new user would: the right 4xx problem details, and nothing written."""

from __future__ import annotations

import pytest
from factories import bearer, make_siret
from sqlalchemy import text

GOOD = {"kind": "collectivite", "name": "Commune de Lannion", "commune_insee": "22113"}
TABLES = ("organization", "api_key", "audit_log", "idempotency_record", "outbox_event")


async def _counts(db) -> dict[str, int]:
    async with db.reader() as session:
        return {t: (await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in TABLES}


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["instance"].startswith("urn:uuid:")
    return body


CASES = [
    pytest.param({"content": b'{"kind": "collectivite", "name": '}, 400, None, id="malformed-json"),
    pytest.param({"json": {**GOOD, "siret": "21750001600019", "tenant_id": "x"}}, 400, "/tenant_id", id="unknown-field"),
    pytest.param({"json": {**GOOD, "siret": 21750001600019}}, 400, "/siret", id="wrong-type"),
    pytest.param({"json": {**GOOD, "kind": "operator", "siret": "21750001600019"}}, 400, "/kind", id="kind-operator"),
    pytest.param({"json": {**GOOD, "siret": "21750001600018"}}, 422, "/siret", id="siret-luhn"),
    pytest.param({"json": {**GOOD, "siret": "21750001600019", "commune_insee": "99999"}}, 422, "/commune_insee",
                 id="unknown-insee"),
    pytest.param({"json": {**GOOD, "siret": "21750001600019", "commune_insee": "7505"}}, 400, "/commune_insee",
                 id="insee-shape"),
    pytest.param({"json": {k: v for k, v in GOOD.items() if k != "name"} | {"siret": "21750001600019"}}, 400, "",
                 id="missing-field"),
    pytest.param({"json": [1, 2]}, 400, "", id="array-body"),
]


@pytest.mark.parametrize(("kwargs", "status", "pointer"), CASES)
async def test_bad_organization_bodies_are_refused_and_write_nothing(client, admin_key, db, kwargs, status, pointer):
    before = await _counts(db)
    headers = {**bearer(admin_key), "content-type": "application/json"}
    response = await client.post("/v1/organizations", headers=headers, **kwargs)
    body = _assert_problem(response, status)
    if pointer is not None:
        assert pointer in [e.get("pointer") for e in body["errors"]], body
    assert await _counts(db) == before


async def test_oversized_body_is_413_with_content_length(client, admin_key, db):
    before = await _counts(db)
    big = b'{"name": "' + b"x" * (300 * 1024) + b'"}'
    response = await client.post("/v1/organizations", content=big,
                                 headers={**bearer(admin_key), "content-type": "application/json"})
    _assert_problem(response, 413)
    assert await _counts(db) == before


async def test_oversized_body_is_413_without_content_length(settings, admin_key, db):
    """A chunked body (no Content-Length) is cut off once it passes the limit, straight over ASGI."""
    before = await _counts(db)
    chunks = [b'{"name": "'] + [b"x" * 8192] * 40 + [b'"}']
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/organizations", "raw_path": b"/v1/organizations", "root_path": "", "query_string": b"",
        "headers": [(b"authorization", f"Bearer {admin_key}".encode()), (b"content-type", b"application/json"),
                    (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }
    from broker.app import create_app

    app = create_app(settings)
    try:
        await app(scope, receive, send)
    finally:
        await app.state.runtime.close()
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert await _counts(db) == before


async def test_duplicate_siret_is_409_and_writes_nothing(client, admin_key, db):
    siret = make_siret()
    first = await client.post("/v1/organizations", json={**GOOD, "siret": siret}, headers=bearer(admin_key))
    assert first.status_code == 201
    before = await _counts(db)
    again = await client.post("/v1/organizations", json={**GOOD, "siret": siret}, headers=bearer(admin_key))
    assert _assert_problem(again, 409)["code"] == "siret-taken"
    assert await _counts(db) == before


async def test_missing_or_invalid_key_writes_nothing(client, admin_key, db):
    before = await _counts(db)
    for headers in ({}, bearer("fab_aaaaaaaaaaaa_" + "b" * 43)):
        response = await client.post("/v1/organizations", json={**GOOD, "siret": make_siret()}, headers=headers)
        _assert_problem(response, 401)
    assert await _counts(db) == before


async def test_unknown_route_and_method_are_problems(client, admin_key):
    _assert_problem(await client.get("/v1/nowhere", headers=bearer(admin_key)), 404)
    response = await client.put("/v1/organizations", json={}, headers=bearer(admin_key))
    _assert_problem(response, 405)
    assert "allow" in {k.lower() for k in response.headers}


async def test_unexpected_error_is_a_generic_500_problem(client, admin_key, monkeypatch, caplog):
    from broker.services import organisations

    async def boom(*_args, **_kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(organisations, "create_organisation", boom)
    response = await client.post("/v1/organizations", json={**GOOD, "siret": make_siret()}, headers=bearer(admin_key))
    body = _assert_problem(response, 500)
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert body["instance"].removeprefix("urn:uuid:") in body["detail"]
