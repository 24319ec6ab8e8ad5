"""Organisations (tenants): create with a checked SIRET and a known home commune; scoped reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.geocoding.base import Geocoder
from broker.db.repositories import Keyset, OrganisationRepository
from broker.domain.access import Organisation, OrgKind, Principal
from broker.domain.events import OrganizationCreated
from broker.domain.identifiers import iban_problem, siret_problem
from broker.domain.invoicing import VatRegime
from broker.errors import NotFound, Rejected
from broker.services.events import emit


async def create_organisation(
    session: AsyncSession,
    *,
    actor: Principal,
    kind: OrgKind,
    name: str,
    siret: str,
    commune_insee: str,
    geocoder: Geocoder,
    now: datetime,
    contact_email: str | None = None,
    vat_regime: VatRegime = VatRegime.NORMAL,
    legal_form: str | None = None,
    iban: str | None = None,
) -> Organisation:
    if (problem := siret_problem(siret)) is not None:
        raise Rejected(f"siret {siret!r}: {problem}", pointer="/siret", code="siret-invalid",
                       figures={"problem": problem})
    iban = _checked_iban(iban)
    if geocoder.commune(commune_insee) is None:
        raise Rejected(f"commune_insee {commune_insee!r} is not a French commune code", pointer="/commune_insee",
                       code="commune-unknown", figures={"commune": commune_insee})
    repo = OrganisationRepository(session)
    # A taken SIRET fails the commit on uq_organization_siret -> 409 siret-taken (broker/db/constraints.py).
    org = await repo.add(kind=kind, name=name.strip(), siret=siret, commune_insee=commune_insee.upper(), now=now,
                         contact_email=contact_email, vat_regime=vat_regime, legal_form=legal_form, iban=iban)
    await emit(session, OrganizationCreated(id=org.id, kind=org.kind, name=org.name, created_by=actor.org_id),
               org_id=org.id, resource_id=org.id, now=now, first=True)
    return org


def _checked_iban(iban: str | None) -> str | None:
    if iban is None:
        return None
    if (problem := iban_problem(iban)) is not None:
        raise Rejected(f"iban: {problem}", pointer="/iban", code="iban-invalid")
    return iban.replace(" ", "").upper()


async def update_organisation(
    session: AsyncSession, *, actor: Principal, org_id: str, values: dict[str, object]
) -> Organisation:
    """An organisation's own details (contact, VAT regime, legal form, IBAN), changed by itself or an
    administrator; ``values`` holds only the fields given (null clears an optional one)."""
    org = await get_organisation(session, actor=actor, org_id=org_id)
    if "iban" in values:
        values["iban"] = _checked_iban(values["iban"] if isinstance(values["iban"], str) else None)
    updated = await OrganisationRepository(session).update(org.id, values)
    if updated is None:
        raise NotFound(f"organization {org_id} not found")
    return updated


async def get_organisation(session: AsyncSession, *, actor: Principal, org_id: str) -> Organisation:
    org = await OrganisationRepository(session).get(org_id, scope_org_id=None if actor.is_admin else actor.org_id)
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return org


async def list_organisations(
    session: AsyncSession, *, actor: Principal, after: Keyset | None, limit: int, kind: OrgKind | None
) -> list[tuple[Organisation, Keyset]]:
    return await OrganisationRepository(session).page(
        scope_org_id=None if actor.is_admin else actor.org_id, after=after, limit=limit, kind=kind
    )
