"""The OpenAPI 3.1 document is the inventory: valid, complete about errors and Idempotency-Key."""

from __future__ import annotations

from openapi_spec_validator import validate


async def _schema(client) -> dict:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


async def test_schema_is_valid_openapi_3_1(client):
    schema = await _schema(client)
    assert schema["openapi"].startswith("3.1")
    validate(schema)


async def test_every_error_response_is_problem_json(client):
    schema = await _schema(client)
    leftovers = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for status, response in op.get("responses", {}).items():
                if status.startswith(("4", "5")):
                    media = set(response.get("content", {}))
                    if media != {"application/problem+json"}:
                        leftovers.append(f"{method.upper()} {path} {status} {media}")
    assert leftovers == []


async def test_idempotency_key_is_documented_on_every_creating_post(client):
    schema = await _schema(client)
    missing = []
    for path, item in schema["paths"].items():
        op = item.get("post")
        if op is None:
            continue
        names = {p["name"].lower() for p in op.get("parameters", []) if p.get("in") == "header"}
        if "idempotency-key" not in names:
            missing.append(path)
    assert missing == []


async def test_operation_ids_are_unique_and_stable(client):
    schema = await _schema(client)
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert len(ids) == len(set(ids))
    assert "create_organization" in ids and "health_ready" in ids


def test_app_refuses_to_start_with_a_route_without_access(settings):
    import pytest
    from litestar import get

    from broker import app as app_module

    @get("/v1/forgotten", sync_to_thread=False)
    def forgotten() -> dict:
        return {}

    original = list(app_module.ROUTE_HANDLERS)
    app_module.ROUTE_HANDLERS.append(forgotten)
    try:
        with pytest.raises(RuntimeError, match="/v1/forgotten"):
            app_module.create_app(settings)
    finally:
        app_module.ROUTE_HANDLERS[:] = original


async def test_every_event_type_is_documented_under_webhooks(client):
    """One entry per event type of the catalogue, in its order, each with its own payload schema
    (the Struct's fields, required as the Struct requires them) inside the relay's envelope."""
    import msgspec

    from broker.domain.events import CATALOGUE, event_type
    from broker.services.webhooks import EVENT_TYPES

    schema = await _schema(client)
    assert list(schema["webhooks"]) == list(EVENT_TYPES) == [event_type(kind) for kind in CATALOGUE]
    for kind in CATALOGUE:
        post = schema["webhooks"][event_type(kind)]["post"]
        names = {p["name"] for p in post["parameters"]}
        assert names == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["type"]["const"] == event_type(kind)
        data = body["properties"]["data"]
        assert data["properties"]["resource_type"]["const"] == kind.resource
        fields = msgspec.inspect.type_info(kind).fields
        assert set(data["properties"]) == {f.encode_name for f in fields} | {"sequence", "resource_type",
                                                                             "resource_id"}
        assert set(data["required"]) == {f.encode_name for f in fields if f.required} | {
            "sequence", "resource_type", "resource_id"}


async def test_every_json_success_body_is_documented_by_its_schema(client):
    """Handlers that answer through ``ctx.respond`` (pre-encoded bytes) must still document the body
    they send: a bare ``string`` schema told clients nothing (and schemathesis caught it)."""
    schema = await _schema(client)
    vague = [
        (method, path, code)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for code, response in operation.get("responses", {}).items()
        if code.startswith("2")
        and response.get("content", {}).get("application/json", {}).get("schema", {}).get("type") == "string"
    ]
    assert vague == []
