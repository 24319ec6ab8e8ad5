"""Tenants and roles: organisation kinds, API-key roles and which kind may hold which role."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class OrgKind(StrEnum):
    COLLECTIVITE = "collectivite"
    MANUFACTURE = "manufacture"
    COORDINATION = "coordination"
    INTEGRATOR = "integrator"
    OPERATOR = "operator"


class Role(StrEnum):
    ADMIN = "admin"
    BUYER = "buyer"
    MAKER = "maker"
    COORDINATOR = "coordinator"
    INTEGRATION = "integration"


# Which roles an organisation of each kind may be given keys for. A workshop cannot buy, a
# collectivité cannot make; any organisation may plug in a procurement/ERP integration.
ROLES_BY_KIND: dict[OrgKind, frozenset[Role]] = {
    OrgKind.COLLECTIVITE: frozenset({Role.BUYER, Role.INTEGRATION}),
    OrgKind.MANUFACTURE: frozenset({Role.MAKER, Role.INTEGRATION}),
    OrgKind.COORDINATION: frozenset({Role.COORDINATOR, Role.BUYER, Role.INTEGRATION}),
    OrgKind.INTEGRATOR: frozenset({Role.INTEGRATION}),
    OrgKind.OPERATOR: frozenset({Role.ADMIN, Role.INTEGRATION}),
}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the key's organisation and role. Every query is scoped by ``org_id``."""

    org_id: str
    key_id: str
    key_prefix: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class Organisation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: OrgKind
    name: str
    siret: str
    commune_insee: str
    contact_email: str | None = None  # where notifications are e-mailed
    vat_regime: str = "normal"  # normal, or franchise_en_base (CGI art. 293 B): what its invoices charge
    legal_form: str | None = None  # INSEE catégorie juridique (7210 commune…): a buyer's payment delay
    iban: str | None = None  # where a seller is paid (its invoices' BT-84)


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    role: Role
    label: str
    prefix: str
    revoked: bool
