"""The OpenAPI 3.1 ``webhooks`` section (API-5): one entry per event type of the catalogue
(`broker.domain.events`), each a POST carrying the Standard Webhooks headers and the envelope the
relay sends (`broker.services.webhooks.envelope`): ``type``, ``timestamp`` and ``data``, where
``data`` is the event's payload (its schema derived from its Struct) plus ``sequence``,
``resource_type`` and ``resource_id``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)

from broker.domain.events import CATALOGUE, Event, event_type

_HEADERS = [
    Parameter(name="webhook-id", param_in="header", required=True, schema=Schema(type=OpenAPIType.STRING),
              description="msg_… — the same on every retry and replay of this event: deduplicate on it"),
    Parameter(name="webhook-timestamp", param_in="header", required=True, schema=Schema(type=OpenAPIType.STRING),
              description="Unix seconds of this attempt (each retry is re-signed)"),
    Parameter(name="webhook-signature", param_in="header", required=True, schema=Schema(type=OpenAPIType.STRING),
              description="space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` (two during a roll)"),
]

_REF = "#/$defs/"
#: JSON Schema keywords msgspec writes for the catalogue, and the `Schema` field of each. Any other
#: keyword (a new constraint on a payload field) fails at startup rather than vanishing from the docs.
_KEYWORDS = {
    "title": "title", "description": "description", "type": "type", "format": "format", "enum": "enum",
    "properties": "properties", "required": "required", "additionalProperties": "additional_properties",
    "items": "items", "anyOf": "any_of", "default": "default",
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` replaced by its definition (the catalogue has no recursive type)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].removeprefix(_REF)], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, defs) for value in node]
    return node


def _schema(node: dict[str, Any]) -> Schema:
    """Litestar's `Schema` of a JSON Schema object (refs inlined)."""
    unknown = set(node) - set(_KEYWORDS)
    if unknown:
        raise ValueError(f"JSON Schema keywords without an OpenAPI mapping: {sorted(unknown)}")
    # a default is never sent (an absent field is omitted), and nested objects may gain fields too
    fields: dict[str, Any] = {_KEYWORDS[key]: value for key, value in node.items()
                              if key != "default" and node[key] is not False}
    if "type" in node:
        fields["type"] = OpenAPIType(node["type"])
    if "format" in node:
        fields["format"] = OpenAPIFormat(node["format"])
    if "properties" in node:
        fields["properties"] = {name: _schema(sub) for name, sub in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        fields["additional_properties"] = _schema(node["additionalProperties"])
    if "items" in node:
        fields["items"] = _schema(node["items"])
    if "anyOf" in node:
        fields["any_of"] = [_schema(sub) for sub in node["anyOf"]]
    return Schema(**fields)


def _data(kind: type[Event], component: dict[str, Any]) -> Schema:
    """The envelope's ``data`` of ``kind``: its payload, without the tag (the envelope's ``type``),
    plus what the relay adds. Unknown fields are allowed: an event may gain fields."""
    payload = {name: sub for name, sub in component["properties"].items() if name != "type"}
    required = [name for name in component["required"] if name != "type"]
    return Schema(
        type=OpenAPIType.OBJECT,
        title=component["title"],
        description=" ".join((kind.__doc__ or "").split()),
        required=[*required, "sequence", "resource_type", "resource_id"],
        properties={
            **{name: _schema(sub) for name, sub in payload.items()},
            "sequence": Schema(type=OpenAPIType.INTEGER, description="per resource, strictly increasing"),
            "resource_type": Schema(type=OpenAPIType.STRING, const=kind.resource),
            "resource_id": Schema(type=OpenAPIType.STRING),
        },
        additional_properties=True,
    )


def _envelope(kind: type[Event], component: dict[str, Any]) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "timestamp", "data"],
        properties={
            "type": Schema(type=OpenAPIType.STRING, const=event_type(kind)),
            "timestamp": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
            "data": _data(kind, component),
        },
    )


def webhooks_section() -> dict[str, PathItem | Reference]:
    _, defs = msgspec.json.schema_components(CATALOGUE, ref_template=_REF + "{name}")
    components = {kind: _inline(defs[kind.__name__], defs) for kind in CATALOGUE}
    return {
        event_type(kind): PathItem(
            post=Operation(
                summary=f"{event_type(kind)} (sent to the subscribed endpoints of each party)",
                parameters=list(_HEADERS),
                request_body=RequestBody(
                    required=True,
                    content={"application/json": OpenAPIMediaType(schema=_envelope(kind, components[kind]))},
                ),
                responses={"2XX": OpenAPIResponse(description="received; any other answer is retried")},
            )
        )
        for kind in CATALOGUE
    }
