"""Suggestions for the commune fields while a person types (JSON for ``app.js``'s ``<datalist>``).

The fields work without it: the form itself resolves what was typed and offers the candidates."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from adapters.geocoding.lookup import commune_label, department_name, suggest_communes
from broker.api.context import RequestContext
from broker.web.security import WEB_ROLES, web_access

SUGGESTIONS = 10


class Suggestion(msgspec.Struct, frozen=True, kw_only=True):
    value: str  # « Mulhouse (68) »: what fills the field, read back as this very commune
    insee: str
    department: str  # its name: « Haut-Rhin »
    postcodes: list[str]
    population: int | None


class Suggestions(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Suggestion]


class CommunePages(Controller):
    path = "/communes"
    include_in_schema = False

    @get("/suggestions", opt=web_access(*WEB_ROLES), cache_control=CacheControlHeader(max_age=300, private=True))
    async def suggestions(
        self, ctx: NamedDependency[RequestContext],
        q: Annotated[str, QueryParameter(max_length=100)] = "",
    ) -> Suggestions:
        """The ten most populous communes matching ``q`` (a name, its start, a postcode or a code)."""
        found = suggest_communes(q, ctx.geocoder, limit=SUGGESTIONS) if len(q.strip()) >= 2 else []
        return Suggestions(items=[
            Suggestion(value=commune_label(c), insee=c.insee, department=department_name(c.department),
                       postcodes=list(c.postcodes), population=c.population)
            for c in found
        ])
