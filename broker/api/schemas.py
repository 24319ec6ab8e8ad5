"""Request and response Structs of the HTTP API. Inputs forbid unknown fields and carry bounds."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from broker.domain.access import ApiKey, Organisation, OrgKind, Role

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Siret = Annotated[str, Meta(min_length=14, max_length=14, pattern=r"^\d{14}$", description="14 digits, Luhn-checked")]
Insee = Annotated[
    str, Meta(min_length=5, max_length=5, pattern=r"^(\d{5}|2[ABab]\d{3})$", description="INSEE (COG) commune code")
]
Label = Annotated[str, Meta(max_length=200)]


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are an error (no mass assignment)."""


# ---- organisations and keys -------------------------------------------------------------------


class OrganizationKindIn(StrEnum):
    """The kinds an admin may create (the operator's own organisation is made at bootstrap)."""

    COLLECTIVITE = "collectivite"
    MANUFACTURE = "manufacture"
    COORDINATION = "coordination"
    INTEGRATOR = "integrator"


class OrganizationIn(Input):
    kind: OrganizationKindIn
    name: Name
    siret: Siret
    commune_insee: Insee


class OrganizationOut(msgspec.Struct, kw_only=True):
    id: str
    kind: OrgKind
    name: str
    siret: str
    commune_insee: str

    @classmethod
    def of(cls, org: Organisation) -> OrganizationOut:
        return cls(id=org.id, kind=org.kind, name=org.name, siret=org.siret, commune_insee=org.commune_insee)


class OrganizationPage(msgspec.Struct, kw_only=True):
    items: list[OrganizationOut]
    next_cursor: str | None


class ApiKeyIn(Input):
    role: Role
    label: Label = ""


class ApiKeyCreated(msgspec.Struct, kw_only=True):
    id: str
    key: str
    prefix: str
    role: Role
    label: str


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: str
    prefix: str
    role: Role
    label: str
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(id=key.id, prefix=key.prefix, role=key.role, label=key.label, revoked=key.revoked)


class ApiKeyList(msgspec.Struct, kw_only=True):
    items: list[ApiKeyOut]
    next_cursor: str | None = None


# ---- communes ---------------------------------------------------------------------------------


class CommuneOut(msgspec.Struct, kw_only=True):
    insee: str
    name: str
    department: str
    region: str
    population: int | None
    lat: float
    lon: float
    postcodes: list[str]


class CommuneList(msgspec.Struct, kw_only=True):
    items: list[CommuneOut]
    next_cursor: str | None = None


# ---- audit and health -------------------------------------------------------------------------


class AuditEntryOut(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    org_id: str | None
    key_prefix: str | None
    role: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    status_code: int
    request_id: str


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntryOut]
    next_cursor: str | None


class Health(msgspec.Struct, kw_only=True):
    status: str
    checks: dict[str, str]
