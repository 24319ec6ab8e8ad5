"""Workshop profiles, machines and capacities (makers: added, edited, removed), verification (admins),
the catalogue."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, IdempotencyKey, Limit, keyset_page, next_link, page_size
from broker.api.presenters import catalogue_io, machine_out, process_step, workshop_out
from broker.api.problems import problems
from broker.api.schemas import (
    CapacityIn,
    CapacityOut,
    CatalogueItemIO,
    CatalogueList,
    MachineIn,
    MachineOut,
    VerificationIn,
    WorkshopIn,
    WorkshopOut,
    WorkshopPage,
)
from broker.api.security import ANY_ROLE, access
from broker.domain.access import Role
from broker.domain.catalogue import CatalogueItem
from broker.domain.fabrication import MaterialLimit
from broker.services import workshops

WorkshopId = Annotated[str, PathParameter(max_length=64)]
MachineId = Annotated[str, PathParameter(max_length=64)]
SlugPath = Annotated[str, PathParameter(max_length=60)]
PRIVATE_READERS = (Role.ADMIN, Role.COORDINATOR)


async def _full(ctx: RequestContext, workshop_id: str, *, private: bool) -> WorkshopOut:
    workshop = await workshops.get_workshop(ctx.session, actor=ctx.principal, workshop_id=workshop_id)
    machines = (await workshops.machines_of(ctx.session, [workshop.id]))[workshop.id]
    caps = await workshops.capacities_of(ctx.session, workshop.id) if private else None
    return workshop_out(workshop, machines, private=private, capacities=caps)


class MyWorkshopController(Controller):
    path = "/v1/workshops/me"
    tags = ["workshops"]

    @put(
        "/",
        opt=access(Role.MAKER),
        operation_id="save_my_workshop",
        responses=problems(400, 401, 403, 409, 413, 422, 429),
    )
    async def save(self, data: JSONBody[WorkshopIn], ctx: NamedDependency[RequestContext]) -> WorkshopOut:
        """Create or replace this organisation's workshop profile (location by INSEE code)."""
        workshop = await workshops.save_my_workshop(
            ctx.session,
            actor=ctx.principal,
            commune_insee=data.commune_insee.upper(),
            delivery_radius_km=data.delivery_radius_km,
            trades=data.trades,
            labels=data.labels,
            certifications=data.certifications,
            paused=data.paused,
            geocoder=ctx.geocoder,
            now=ctx.now,
        )
        ctx.resource = ("workshop", workshop.id)
        return await _full(ctx, workshop.id, private=True)

    @get("/", opt=access(Role.MAKER), operation_id="get_my_workshop", responses=problems(400, 401, 403, 404, 429))
    async def mine(self, ctx: NamedDependency[RequestContext]) -> WorkshopOut:
        workshop = await workshops.my_workshop(ctx.session, actor=ctx.principal)
        return await _full(ctx, workshop.id, private=True)

    @post(
        "/machines",
        opt=access(Role.MAKER, idempotent=True),
        operation_id="add_machine",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def add_machine(
        self, data: JSONBody[MachineIn], ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[MachineOut]:
        machine = await workshops.add_machine(
            ctx.session,
            actor=ctx.principal,
            process=data.process,
            envelope_mm=(data.envelope_mm[0], data.envelope_mm[1], data.envelope_mm[2]),
            materials=[MaterialLimit(material=m.material, max_thickness_mm=m.max_thickness_mm) for m in data.materials],
            hours_per_week=data.hours_per_week,
            now=ctx.now,
        )
        return await ctx.respond(machine_out(machine), resource=("machine", machine.id))

    @put(
        "/machines/{machine_id:str}",
        opt=access(Role.MAKER),
        operation_id="update_machine",
        responses=problems(400, 401, 403, 404, 413, 422, 429),
    )
    async def update_machine(
        self, machine_id: MachineId, data: JSONBody[MachineIn], ctx: NamedDependency[RequestContext]
    ) -> MachineOut:
        """Replace one of the workshop's machines (another workshop's machine is 404)."""
        machine = await workshops.update_machine(
            ctx.session,
            actor=ctx.principal,
            machine_id=machine_id,
            process=data.process,
            envelope_mm=(data.envelope_mm[0], data.envelope_mm[1], data.envelope_mm[2]),
            materials=[MaterialLimit(material=m.material, max_thickness_mm=m.max_thickness_mm) for m in data.materials],
            hours_per_week=data.hours_per_week,
            now=ctx.now,
        )
        ctx.resource = ("machine", machine.id)
        return machine_out(machine)

    @delete(
        "/machines/{machine_id:str}",
        opt=access(Role.MAKER),
        operation_id="remove_machine",
        responses=problems(400, 401, 403, 404, 429),
        status_code=204,
    )
    async def remove_machine(self, machine_id: MachineId, ctx: NamedDependency[RequestContext]) -> None:
        """Remove one of the workshop's machines: the next matchings go without it."""
        machine = await workshops.remove_machine(ctx.session, actor=ctx.principal, machine_id=machine_id, now=ctx.now)
        ctx.resource = ("machine", machine.id)
        ctx.status = 204

    @put(
        "/capacities/{slug:str}",
        opt=access(Role.MAKER),
        operation_id="declare_capacity",
        responses=problems(400, 401, 403, 404, 413, 422, 429),  # 422: NUL in a string (screen_request)
    )
    async def capacity(
        self, slug: SlugPath, data: JSONBody[CapacityIn], ctx: NamedDependency[RequestContext]
    ) -> CapacityOut:
        """Units of this catalogue item the workshop can make per working day (used before machine hours)."""
        workshop, units = await workshops.declare_capacity(
            ctx.session, actor=ctx.principal, slug=slug, units_per_day=data.units_per_day, now=ctx.now
        )
        ctx.resource = ("workshop", workshop.id)
        return CapacityOut(workshop_id=workshop.id, item=slug, units_per_day=units)


    @delete(
        "/capacities/{slug:str}",
        opt=access(Role.MAKER),
        operation_id="remove_capacity",
        responses=problems(400, 401, 403, 404, 429),
        status_code=204,
    )
    async def remove_capacity(self, slug: SlugPath, ctx: NamedDependency[RequestContext]) -> None:
        """Withdraw the capacity declared for a catalogue item: matching estimates it from machine hours again."""
        workshop = await workshops.remove_capacity(ctx.session, actor=ctx.principal, slug=slug, now=ctx.now)
        ctx.resource = ("workshop", workshop.id)
        ctx.status = 204


class WorkshopController(Controller):
    path = "/v1/workshops"
    tags = ["workshops"]

    @get("/", opt=access(*ANY_ROLE), operation_id="list_workshops", responses=problems(400, 401, 403, 429))
    async def list_(
        self, ctx: NamedDependency[RequestContext], limit: Limit = None, cursor: Cursor = None
    ) -> Response[WorkshopPage]:
        """Admins and coordinators see full profiles, buyers public fields, a maker its own workshop."""
        after = ctx.runtime.cursors.decode(cursor, filters="workshops") if cursor else None
        size = page_size(ctx, limit)
        rows = await workshops.list_workshops(ctx.session, actor=ctx.principal, after=after, limit=size + 1)
        rows, nxt = keyset_page(ctx, rows, size, "workshops", lambda w: (w.created_at, w.id))
        machines = await workshops.machines_of(ctx.session, [w.id for w in rows])
        private = ctx.principal.role in PRIVATE_READERS
        items = [workshop_out(w, machines[w.id], private=private) for w in rows]
        return Response(WorkshopPage(items=items, next_cursor=nxt), headers=next_link(ctx.request, nxt))

    @get(
        "/{workshop_id:str}",
        opt=access(*ANY_ROLE),
        operation_id="get_workshop",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def get_one(self, workshop_id: WorkshopId, ctx: NamedDependency[RequestContext]) -> WorkshopOut:
        private = ctx.principal.role in PRIVATE_READERS or ctx.principal.role == Role.MAKER
        return await _full(ctx, workshop_id, private=private)

    @post(
        "/{workshop_id:str}/verification",
        opt=access(Role.ADMIN, idempotent=True),
        status_code=200,
        operation_id="verify_workshop",
        responses=problems(400, 401, 403, 404, 413, 422, 429),
    )
    async def verify(
        self,
        workshop_id: WorkshopId,
        data: JSONBody[VerificationIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[WorkshopOut]:
        """Mark declared labels and certifications as verified; matching trusts only verified ones."""
        workshop = await workshops.verify_workshop(
            ctx.session,
            actor=ctx.principal,
            workshop_id=workshop_id,
            labels=data.labels,
            certifications=data.certifications,
            now=ctx.now,
        )
        return await ctx.respond(
            await _full(ctx, workshop.id, private=True), status=200, resource=("workshop", workshop.id)
        )


class CatalogueController(Controller):
    path = "/v1/catalogue"
    tags = ["catalogue"]

    @get("/", opt=access(*ANY_ROLE), operation_id="list_catalogue", responses=problems(400, 401, 403, 429))
    async def list_(self, ctx: NamedDependency[RequestContext]) -> CatalogueList:
        return CatalogueList(items=[catalogue_io(i) for i in await workshops.catalogue(ctx.session)])

    @get(
        "/{slug:str}",
        opt=access(*ANY_ROLE),
        operation_id="get_catalogue_item",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def get_one(self, slug: SlugPath, ctx: NamedDependency[RequestContext]) -> CatalogueItemIO:
        return catalogue_io(await workshops.catalogue_item(ctx.session, slug=slug))

    @post(
        "/",
        opt=access(Role.ADMIN, idempotent=True),
        operation_id="add_catalogue_item",
        responses=problems(400, 401, 403, 409, 413, 429),
    )
    async def add(
        self,
        data: JSONBody[CatalogueItemIO],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CatalogueItemIO]:
        item = CatalogueItem(
            slug=data.slug,
            name=data.name,
            description=data.description,
            licence=data.licence,
            steps=tuple(process_step(s) for s in data.steps),
            certifications_required=tuple(data.certifications_required),
            files=tuple(data.files),
        )
        await workshops.add_catalogue_item(ctx.session, item=item, now=ctx.now)
        return await ctx.respond(catalogue_io(item), resource=("catalogue_item", item.slug))
