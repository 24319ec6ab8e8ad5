"""Domain events written to the outbox in the same transaction as the change they describe."""

from __future__ import annotations

import msgspec


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``type`` is the public event type (``order.created``…); ``resource_id`` orders the sequence."""

    type: str
    org_id: str
    resource_type: str
    resource_id: str
    data: dict[str, object]
