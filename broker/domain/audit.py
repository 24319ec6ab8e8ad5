"""The audit log's entries as their readers see them (frozen, no ORM, no HTTP): who did what,
when, with which key, and how it ended. Append-only: nothing changes an entry once written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int  # ascending in the order the entries were written
    at: datetime
    org_id: str | None
    api_key_id: str | None
    key_prefix: str | None
    role: str | None
    action: str  # "<METHOD> <route template>"
    resource_type: str | None
    resource_id: str | None
    status_code: int
    request_id: str
    detail: dict[str, Any] | None
