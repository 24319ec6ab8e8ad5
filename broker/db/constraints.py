"""Unique constraints that stand for business rules, and the conflicts they mean when violated.

Relying on the constraint (instead of a SELECT first) saves a round trip and is race-free; this
table turns the driver's IntegrityError into the domain error, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from broker.errors import Conflict

# (PostgreSQL constraint name, SQLite "table.column" text) -> (code, message)
UNIQUE_RULES: dict[tuple[str, str], tuple[str, str]] = {
    ("uq_organization_siret", "organization.siret"): ("siret-taken", "an organisation with this SIRET already exists"),
    ("uq_idempotency_record_org_id_method_route_key", "idempotency_record.org_id"): (
        "idempotency-key-in-flight",
        "a request with this Idempotency-Key is being processed; retry in a second",
    ),
}


def conflict_for(exc: IntegrityError) -> Conflict | None:
    """The business conflict behind a unique violation, or None when it is not one of ours."""
    text = str(exc.orig)
    for (pg_name, sqlite_cols), (code, message) in UNIQUE_RULES.items():
        if pg_name in text or sqlite_cols in text:
            return Conflict(message, code=code)
    return None
