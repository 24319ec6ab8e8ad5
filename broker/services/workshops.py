"""Workshop profiles, machines and declared capacities (added, edited, removed), admin verification;
and the catalogue. Every change matching could see bumps the registry's ``workshops`` version, which
drops the cached candidate indexes (``broker.services.matching``)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.geocoding.base import Geocoder
from broker.db.base import new_id
from broker.db.fabrication import CatalogueRepository, Keyset, RegistryRepository, WorkshopRepository
from broker.db.makers import MachineRepository
from broker.db.models import CatalogueItemRow, MachineRow, WorkshopRow
from broker.db.repositories import OrganisationRepository
from broker.domain.access import OrgKind, Principal, Role
from broker.domain.catalogue import CatalogueItem, ProcessStep
from broker.domain.events import WorkshopVerified
from broker.domain.fabrication import Machine, MaterialLimit, Workshop
from broker.errors import Conflict, NotFound, Rejected
from broker.services.events import emit


async def my_workshop(session: AsyncSession, *, actor: Principal) -> Workshop:
    row = await WorkshopRepository(session).row_for_org(actor.org_id)
    if row is None:
        raise NotFound(
            "this organisation has no workshop profile yet: PUT /v1/workshops/me first", code="workshop-profile-missing"
        )
    return msgspec.convert(row, Workshop, from_attributes=True)


async def save_my_workshop(
    session: AsyncSession,
    *,
    actor: Principal,
    commune_insee: str,
    delivery_radius_km: float,
    trades: list[str],
    labels: list[str],
    certifications: list[str],
    paused: bool,
    geocoder: Geocoder,
    now: datetime,
) -> Workshop:
    """Create or replace the caller's workshop profile. Declared labels and certifications that
    change lose their verification; those kept stay verified."""
    commune = geocoder.commune(commune_insee)
    if commune is None:
        raise Rejected(f"commune_insee {commune_insee!r} is not a French commune code", pointer="/commune_insee",
                       code="commune-unknown", figures={"commune": commune_insee})
    org = await OrganisationRepository(session).get(actor.org_id, scope_org_id=actor.org_id)
    if org is None or org.kind != OrgKind.MANUFACTURE:
        raise Conflict("only an organisation of kind 'manufacture' has a workshop profile", code="not-a-workshop")
    repo = WorkshopRepository(session)
    row = await repo.row_for_org(actor.org_id)
    if row is None:
        row = WorkshopRow(
            id=new_id(),
            org_id=actor.org_id,
            name=org.name,
            created_at=now,
            reserved_units=0,
            orders_delivered=0,
            orders_on_time=0,
            recent_wins=0,
            verified_labels=[],
            verified_certifications=[],
        )
        repo.add(row)
    row.commune_insee = commune.insee
    row.lat, row.lon = commune.lat, commune.lon
    row.delivery_radius_km = delivery_radius_km
    row.trades = sorted(set(trades))
    row.labels = sorted(set(labels))
    row.certifications = sorted(set(certifications))
    row.verified_labels = [v for v in (row.verified_labels or []) if v in row.labels]
    row.verified_certifications = [v for v in (row.verified_certifications or []) if v in row.certifications]
    row.paused = paused
    row.updated_at = now
    await session.flush()
    await RegistryRepository(session).bump()
    return msgspec.convert(row, Workshop, from_attributes=True)


async def add_machine(
    session: AsyncSession,
    *,
    actor: Principal,
    process: str,
    envelope_mm: tuple[float, float, float],
    materials: list[MaterialLimit],
    hours_per_week: float,
    now: datetime,
) -> Machine:
    workshop = await my_workshop(session, actor=actor)
    row = MachineRow(
        id=new_id(),
        workshop_id=workshop.id,
        process=process,
        envelope_mm=list(envelope_mm),
        materials=[msgspec.to_builtins(m) for m in materials],
        hours_per_week=hours_per_week,
        created_at=now,
    )
    WorkshopRepository(session).add_machine(row)
    await _touch(session, workshop.id, now)
    return msgspec.convert(row, Machine, from_attributes=True)


async def my_machine(session: AsyncSession, *, actor: Principal, machine_id: str) -> Machine:
    """One machine of the caller's workshop (another workshop's is not found)."""
    workshop = await my_workshop(session, actor=actor)
    row = await MachineRepository(session).row(machine_id, workshop_id=workshop.id)
    if row is None:
        raise NotFound(f"machine {machine_id} not found")
    return msgspec.convert(row, Machine, from_attributes=True)


async def update_machine(
    session: AsyncSession,
    *,
    actor: Principal,
    machine_id: str,
    process: str,
    envelope_mm: tuple[float, float, float],
    materials: list[MaterialLimit],
    hours_per_week: float,
    now: datetime,
) -> Machine:
    """Replace what a machine of the caller's workshop is (process, envelope, materials, hours)."""
    workshop = await my_workshop(session, actor=actor)
    row = await MachineRepository(session).row(machine_id, workshop_id=workshop.id)
    if row is None:
        raise NotFound(f"machine {machine_id} not found")
    row.process = process
    row.envelope_mm = list(envelope_mm)
    row.materials = [msgspec.to_builtins(m) for m in materials]
    row.hours_per_week = hours_per_week
    await session.flush()
    await _touch(session, workshop.id, now)
    return msgspec.convert(row, Machine, from_attributes=True)


async def remove_machine(session: AsyncSession, *, actor: Principal, machine_id: str, now: datetime) -> Machine:
    """Remove a machine of the caller's workshop; returns what it was. Requests already matched keep
    their invitations: only the next matchings go without it."""
    workshop = await my_workshop(session, actor=actor)
    repo = MachineRepository(session)
    row = await repo.row(machine_id, workshop_id=workshop.id)
    if row is None:
        raise NotFound(f"machine {machine_id} not found")
    machine = msgspec.convert(row, Machine, from_attributes=True)
    await repo.remove(row)
    await _touch(session, workshop.id, now)
    return machine


async def _touch(session: AsyncSession, workshop_id: str, now: datetime) -> None:
    row = await WorkshopRepository(session).row(workshop_id)
    if row is not None:
        row.updated_at = now
    await RegistryRepository(session).bump()


async def declare_capacity(
    session: AsyncSession, *, actor: Principal, slug: str, units_per_day: float, now: datetime
) -> tuple[Workshop, float]:
    workshop = await my_workshop(session, actor=actor)
    if await CatalogueRepository(session).get(slug) is None:
        raise NotFound(f"no catalogue item {slug!r}")
    await WorkshopRepository(session).set_capacity(
        workshop_id=workshop.id, item_slug=slug, units_per_day=units_per_day, now=now
    )
    await _touch(session, workshop.id, now)
    return workshop, units_per_day


async def remove_capacity(session: AsyncSession, *, actor: Principal, slug: str, now: datetime) -> Workshop:
    """Withdraw the capacity declared for a catalogue item: matching estimates it from the machine
    hours again (404 when none was declared)."""
    workshop = await my_workshop(session, actor=actor)
    if not await MachineRepository(session).remove_capacity(workshop_id=workshop.id, item_slug=slug):
        raise NotFound(f"no capacity declared for {slug!r}")
    await _touch(session, workshop.id, now)
    return workshop


async def get_workshop(session: AsyncSession, *, actor: Principal, workshop_id: str) -> Workshop:
    """Admins, coordinators and buyers read any workshop (buyers get public fields at the edge);
    a maker reads only its own; integrations none."""
    workshop = await WorkshopRepository(session).get(workshop_id)
    if workshop is None or (actor.role in (Role.MAKER, Role.INTEGRATION) and workshop.org_id != actor.org_id):
        raise NotFound(f"workshop {workshop_id} not found")
    return workshop


async def list_workshops(
    session: AsyncSession, *, actor: Principal, after: Keyset | None, limit: int
) -> list[Workshop]:
    if actor.role in (Role.MAKER, Role.INTEGRATION):
        row = await WorkshopRepository(session).row_for_org(actor.org_id)
        own = [] if row is None else [msgspec.convert(row, Workshop, from_attributes=True)]
        return [w for w in own if after is None]
    return await WorkshopRepository(session).page(after=after, limit=limit)


async def machines_of(session: AsyncSession, workshop_ids: list[str]) -> dict[str, list[Machine]]:
    return await WorkshopRepository(session).machines(workshop_ids)


async def capacities_of(session: AsyncSession, workshop_id: str) -> dict[str, float]:
    return await WorkshopRepository(session).all_capacities(workshop_id)


async def verify_workshop(
    session: AsyncSession,
    *,
    actor: Principal,
    workshop_id: str,
    labels: list[str],
    certifications: list[str],
    now: datetime,
) -> Workshop:
    """Admin: mark declared labels and certifications as verified (matching trusts only those)."""
    row = await WorkshopRepository(session).row(workshop_id)
    if row is None:
        raise NotFound(f"workshop {workshop_id} not found")
    undeclared = sorted((set(labels) - set(row.labels)) | (set(certifications) - set(row.certifications)))
    if undeclared:
        raise Rejected(f"not declared by the workshop: {', '.join(undeclared)}", pointer="/labels",
                       code="not-declared", figures={"undeclared": undeclared})
    row.verified_labels = sorted(set(labels))
    row.verified_certifications = sorted(set(certifications))
    row.updated_at = now
    await RegistryRepository(session).bump()
    await emit(session, WorkshopVerified(workshop_id=row.id, labels=row.verified_labels,
                                         certifications=row.verified_certifications, by=actor.org_id),
               org_id=row.org_id, resource_id=row.id, now=now)
    await session.flush()
    return msgspec.convert(row, Workshop, from_attributes=True)


# ---- catalogue ---------------------------------------------------------------------------------


async def catalogue(session: AsyncSession) -> list[CatalogueItem]:
    return await CatalogueRepository(session).all()


async def catalogue_item(session: AsyncSession, *, slug: str) -> CatalogueItem:
    item = await CatalogueRepository(session).get(slug)
    if item is None:
        raise NotFound(f"no catalogue item {slug!r}")
    return item


async def add_catalogue_item(session: AsyncSession, *, item: CatalogueItem, now: datetime) -> CatalogueItem:
    repo = CatalogueRepository(session)
    if await repo.get(item.slug) is not None:
        raise Conflict(f"catalogue item {item.slug!r} already exists", code="slug-taken")
    repo.add(
        CatalogueItemRow(
            slug=item.slug,
            name=item.name,
            description=item.description,
            licence=item.licence,
            steps=[msgspec.to_builtins(s) for s in item.steps],
            certifications_required=list(item.certifications_required),
            files=list(item.files),
            created_at=now,
        )
    )
    return item


__all__ = ("ProcessStep",)
