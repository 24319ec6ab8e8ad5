"""DECP (issue 17): the données essentielles of the awards at or above the publication threshold, in
the official JSON or XML form, those overdue, and their publication."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal, cast

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import JSONBody, PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, IdempotencyKey, Limit, keyset_page, next_link, page_size
from broker.api.problems import problems
from broker.api.security import access
from broker.domain.access import Role
from broker.domain.decp import DecpRecord, Marche, Marches, MarchesDocument
from broker.domain.fabrication import euros
from broker.services import decp as decp_service

Id = Annotated[str, PathParameter(max_length=64)]
READERS = (Role.BUYER, Role.INTEGRATION, Role.ADMIN)
PUBLISHERS = (Role.BUYER, Role.INTEGRATION)

#: At most this many marchés in one document; more come in further parts (``Link: rel="next"``).
DOCUMENT_MAX = 1000


class DecpRecordOut(msgspec.Struct, kw_only=True):
    """A DECP record: the marché in the official JSON form and its publication state. ``id`` is the
    marché's ``id``; the record is due for publication by ``due_on`` (two months after notification)."""

    id: str
    request_id: str
    year: int
    amount_eur_ht: str
    notified_on: date
    due_on: date
    published_at: datetime | None
    marche: Marche


class DecpRecordPage(msgspec.Struct, kw_only=True):
    items: list[DecpRecordOut]
    next_cursor: str | None


class PublishedIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``published_on``: the day the data were published (today in Paris by default), between the
    notification and today."""

    published_on: date | None = None


@dataclass
class _JsonOrXml(Operation):
    """The year's document is also served as XML (``format=xml``, schema 2.0.2)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content["application/xml"] = OpenAPIMediaType(schema=Schema(
                type=OpenAPIType.STRING, description="the official XML form (schema 2.0.2): `<marches>`"))


def _out(record: DecpRecord) -> DecpRecordOut:
    return DecpRecordOut(id=record.id, request_id=record.request_id, year=record.year,
                         amount_eur_ht=euros(record.amount_cents), notified_on=record.notified_on,
                         due_on=record.due_on, published_at=record.published_at, marche=record.marche)


class DecpController(Controller):
    path = "/v1/decp"
    tags = ["procurement"]

    @get("/", opt=access(*READERS), operation_id="list_decp", operation_class=_JsonOrXml,
         responses=problems(400, 401, 403, 429))
    async def document(
        self,
        ctx: NamedDependency[RequestContext],
        year: Annotated[int, QueryParameter(name="year", ge=2000, le=2999, description="year of notification")],
        format: Annotated[Literal["json", "xml"], QueryParameter(
            name="format", description="`json` (schema 2.0.3, default) or `xml` (schema 2.0.2)")] = "json",
        limit: Annotated[int | None, QueryParameter(
            name="limit", ge=1, le=DOCUMENT_MAX, description=f"marchés per document (default and most: {DOCUMENT_MAX})",
        )] = None,
        cursor: Cursor = None,
    ) -> Response[MarchesDocument]:
        """The données essentielles of the marchés notified in `year` (the caller's organisation's;
        every organisation's for an admin), as one official document: `{"marches": {"marche": [...]}}`
        valid against the DECP schema 2.0.3, or with `format=xml` the `<marches>` document of the
        schema 2.0.2 (`application/xml`). Oldest first; past 1 000 marchés (`limit`), the
        `Link: rel="next"` header gives the next part."""
        filters = f"decp:{year}"
        after = ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None
        size = limit or DOCUMENT_MAX
        rows = await decp_service.of_year(ctx.session, actor=ctx.principal, year=year, after=after, limit=size + 1)
        rows, nxt = keyset_page(ctx, rows, size, filters, lambda r: (r.created_at, r.id))
        headers = next_link(ctx.request, nxt)
        if format == "xml":
            xml = decp_service.marches_xml([r.marche for r in rows])
            return cast("Response[MarchesDocument]", Response(xml, media_type="application/xml", headers=headers))
        return Response(MarchesDocument(marches=Marches(marche=[r.marche for r in rows])), headers=headers)

    @get("/overdue", opt=access(*READERS), operation_id="list_overdue_decp", responses=problems(400, 401, 403, 429))
    async def overdue(
        self, ctx: NamedDependency[RequestContext], limit: Limit = None, cursor: Cursor = None
    ) -> Response[DecpRecordPage]:
        """The records not marked published whose `due_on` (two months after notification) is past,
        today in Paris: the caller's organisation's, every organisation's for an admin. Oldest first."""
        after = ctx.runtime.cursors.decode(cursor, filters="decp-overdue") if cursor else None
        size = page_size(ctx, limit)
        rows = await decp_service.overdue(ctx.session, actor=ctx.principal, now=ctx.now, after=after, limit=size + 1)
        rows, nxt = keyset_page(ctx, rows, size, "decp-overdue", lambda r: (r.created_at, r.id))
        return Response(DecpRecordPage(items=[_out(r) for r in rows], next_cursor=nxt),
                        headers=next_link(ctx.request, nxt))

    @post("/{record_id:str}/published", opt=access(*PUBLISHERS, idempotent=True), status_code=200,
          operation_id="mark_decp_published", responses=problems(400, 401, 403, 404, 413, 422, 429))
    async def mark_published(
        self,
        record_id: Id,
        ctx: NamedDependency[RequestContext],
        data: JSONBody[PublishedIn | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DecpRecordOut]:
        """The organisation published the record (on `published_on`, today by default): the day
        becomes the marché's `datePublicationDonnees`, the record leaves the overdue list and
        `decp.record_published` is emitted. Marking it again answers the record unchanged (200)."""
        record = await decp_service.mark_published(ctx.session, actor=ctx.principal, record_id=record_id,
                                                   published_on=data.published_on if data else None, now=ctx.now)
        return await ctx.respond(_out(record), status=200, resource=("decp_record", record.id))


__all__ = ("DecpController", "DecpRecordOut", "DecpRecordPage", "PublishedIn")
