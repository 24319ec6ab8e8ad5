"""The offline commune table: look up by INSEE code, by postcode, or by what a person typed."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from adapters.geocoding.base import Commune
from adapters.geocoding.lookup import resolve_commune
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

    @get(
        "/",
        opt=access(*ANY_ROLE),
        operation_id="find_communes",
        responses=problems(400, 401, 403, 422, 429),
        description=(
            "Either `postcode`: every commune it serves, by INSEE code. Or `q`: what a person typed for a "
            "commune (a name, a postcode, an INSEE code, or a name with its postcode or department, as in "
            "`Saint-Denis (93)`; case, accents, hyphens, « St » and a leading article do not matter): one item "
            "when exactly one commune matches, otherwise the candidates, most populous first (a code may be one "
            "commune's INSEE code and another's postcode: both are listed). A name matching none exactly lists "
            "up to 10 communes whose name starts so. No match: an empty list."
        ),
    )
    async def find(
        self,
        ctx: NamedDependency[RequestContext],
        postcode: Annotated[
            str | None, QueryParameter(name="postcode", min_length=1, max_length=16, description="5-digit postcode")
        ] = None,
        q: Annotated[
            str | None,
            QueryParameter(name="q", min_length=1, max_length=100, description="A name, a postcode or an INSEE code"),
        ] = None,
    ) -> CommuneList:
        if q is not None and postcode is None:
            return CommuneList(items=[_out(c.commune) for c in resolve_commune(q, ctx.geocoder).candidates])
        if postcode is None or q is not None:
            raise Rejected("give exactly one of 'postcode' and 'q'", pointer=None, code="validation-error")
        if not is_postcode(postcode):
            raise Rejected(f"postcode {postcode!r} is not 5 digits", pointer=None, code="validation-error")
        return CommuneList(items=[_out(c) for c in ctx.geocoder.by_postcode(postcode)])
