"""The offline commune table: look up by INSEE code or by postcode."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from adapters.geocoding.base import Commune
from broker.api.context import RequestContext
from broker.api.problems import problems
from broker.api.schemas import CommuneList, CommuneOut
from broker.api.security import ANY_ROLE, access
from broker.domain.identifiers import is_insee_code, is_postcode
from broker.errors import NotFound, Rejected


def _out(c: Commune) -> CommuneOut:
    return CommuneOut(
        insee=c.insee,
        name=c.name,
        department=c.department,
        region=c.region,
        population=c.population,
        lat=c.lat,
        lon=c.lon,
        postcodes=list(c.postcodes),
    )


class CommuneController(Controller):
    path = "/v1/communes"
    tags = ["communes"]

    @get("/{insee:str}", opt=access(*ANY_ROLE), operation_id="get_commune", responses=problems(400, 401, 403, 404, 429))
    async def get_one(
        self, insee: Annotated[str, PathParameter(max_length=16)], ctx: NamedDependency[RequestContext]
    ) -> CommuneOut:
        commune = ctx.geocoder.commune(insee) if is_insee_code(insee.upper()) else None
        if commune is None:
            raise NotFound(f"no commune has INSEE code {insee!r}")
        return _out(commune)

    @get("/", opt=access(*ANY_ROLE), operation_id="find_communes", responses=problems(400, 401, 403, 422, 429))
    async def by_postcode(
        self,
        ctx: NamedDependency[RequestContext],
        postcode: Annotated[
            str, QueryParameter(name="postcode", min_length=1, max_length=16, description="5-digit postcode")
        ],
    ) -> CommuneList:
        if not is_postcode(postcode):
            raise Rejected(f"postcode {postcode!r} is not 5 digits", pointer=None, code="validation-error")
        return CommuneList(items=[_out(c) for c in ctx.geocoder.by_postcode(postcode)])
