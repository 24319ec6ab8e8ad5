"""The OpenAPI 3.1 ``webhooks`` section (API-5): one entry per event type the broker emits, each a
POST carrying the Standard Webhooks headers and the event envelope."""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    PathItem,
    RequestBody,
    Schema,
)

from broker.services.webhooks import EVENT_TYPES

_HEADERS = [
    Parameter(name="webhook-id", param_in="header", required=True, schema=Schema(type="string"),
              description="msg_… — the same on every retry and replay of this event: deduplicate on it"),
    Parameter(name="webhook-timestamp", param_in="header", required=True, schema=Schema(type="string"),
              description="Unix seconds of this attempt (each retry is re-signed)"),
    Parameter(name="webhook-signature", param_in="header", required=True, schema=Schema(type="string"),
              description="space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` (two during a roll)"),
]


def _envelope(event_type: str) -> Schema:
    return Schema(
        type="object",
        required=["type", "timestamp", "data"],
        properties={
            "type": Schema(type="string", const=event_type),
            "timestamp": Schema(type="string", format="date-time"),
            "data": Schema(
                type="object",
                required=["sequence", "resource_type", "resource_id"],
                properties={
                    "sequence": Schema(type="integer", description="per resource, strictly increasing"),
                    "resource_type": Schema(type="string"),
                    "resource_id": Schema(type="string"),
                },
                additional_properties=True,
            ),
        },
    )


def webhooks_section() -> dict[str, PathItem]:
    return {
        event_type: PathItem(
            post=Operation(
                summary=f"{event_type} (sent to the subscribed endpoints of each party)",
                parameters=_HEADERS,
                request_body=RequestBody(
                    required=True, content={"application/json": OpenAPIMediaType(schema=_envelope(event_type))}
                ),
                responses={"2XX": OpenAPIResponse(description="received; any other answer is retried")},
            )
        )
        for event_type in EVENT_TYPES
    }
