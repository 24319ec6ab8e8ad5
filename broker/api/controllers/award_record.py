"""The award record of a request (issue 17, item 6): JSON, or the PDF « note de choix »."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import PathParameter

from adapters.documents.base import AwardRecord
from broker.api.context import RequestContext
from broker.api.presenters import percent
from broker.api.problems import problems
from broker.api.security import access
from broker.domain.access import Role
from broker.domain.fabrication import euros
from broker.services import award_record as record_service

Id = Annotated[str, PathParameter(max_length=64)]
JSON = "application/json"
PDF = "application/pdf"


class RecordBuyerOut(msgspec.Struct, kw_only=True):
    name: str
    siret: str
    purchasing_siret: str
    service_code: str | None
    engagement_number: str | None


class RecordDeliveryOut(msgspec.Struct, kw_only=True):
    commune_insee: str
    commune_name: str | None
    address: str


class RecordObjectOut(msgspec.Struct, kw_only=True):
    name: str
    item: str | None
    quantity: int
    deadline: datetime
    delivery: RecordDeliveryOut
    allow_split: bool
    min_quotes: int


class RecordCumulativeOut(msgspec.Struct, kw_only=True):
    year: int
    cpv_group: str
    awarded_eur_ht: str
    open_estimates_eur_ht: str


class RecordProcurementOut(msgspec.Struct, kw_only=True):
    nature: str | None
    cpv: str | None
    cpv_label: str | None
    estimated_value_eur_ht: str | None
    budget_eur_ht: str | None
    procedure: str | None
    procedure_label: str | None
    threshold_eur_ht: str | None
    rule: str | None
    cumulative: RecordCumulativeOut | None
    warning: str | None
    publicity_reference: str | None


class RecordInvitationOut(msgspec.Struct, kw_only=True):
    """``source``: matching, buyer or consultation; ``answer``: quoted, declined, withdrawn or none."""

    workshop_id: str
    workshop_name: str
    source: str
    rank: int
    score: float
    distance_km: float
    reasons: list[str]
    status: str
    answer: str
    decline_reason: str | None


class RecordQuoteOut(msgspec.Struct, kw_only=True):
    """``flags`` (late, partial, expired) and ``valid`` as at the award (now, before it); ``lowest``:
    a valid quote of the lowest TTC total; ``chosen``: accepted at the award."""

    quote_id: str
    workshop_id: str
    workshop_name: str
    status: str
    quantity: int
    unit_price_eur_ht: str
    vat_rate: str
    total_eur_ht: str
    total_vat_eur: str
    total_eur_ttc: str
    delivery_date: date
    valid_until: datetime
    distance_km: float | None
    flags: list[str]
    valid: bool
    lowest: bool
    chosen: bool


class RecordOrderOut(msgspec.Struct, kw_only=True):
    order_id: str
    number: str
    quote_id: str
    workshop_name: str
    quantity: int
    total_eur_ht: str
    total_eur_ttc: str
    delivery_date: date
    status: str


class RecordJustificationOut(msgspec.Struct, kw_only=True):
    """``code``: the rule departed from (min-quotes-not-met, not-lowest, rotation, invalid-quote;
    null for a justification stored without one), ``label`` its French wording."""

    code: str | None
    label: str
    text: str


class AwardRecordOut(msgspec.Struct, kw_only=True):
    request_id: str
    reference: str
    status: str
    awarded: bool
    generated_at: datetime
    created_at: datetime
    quote_deadline: datetime
    window_closed: bool
    awarded_at: datetime | None
    awarded_by: str | None
    buyer: RecordBuyerOut
    object: RecordObjectOut
    procurement: RecordProcurementOut
    invitations: list[RecordInvitationOut]
    quotes: list[RecordQuoteOut]
    orders: list[RecordOrderOut]
    justifications: list[RecordJustificationOut]


def _eur(cents: int | None) -> str | None:
    return None if cents is None else euros(cents)


def record_out(r: AwardRecord) -> AwardRecordOut:
    b, o, p = r.buyer, r.object, r.procurement
    c = p.cumulative
    return AwardRecordOut(
        request_id=r.request_id, reference=r.reference, status=r.status, awarded=r.awarded,
        generated_at=r.generated_at, created_at=r.created_at, quote_deadline=r.quote_deadline,
        window_closed=r.window_closed, awarded_at=r.awarded_at, awarded_by=r.awarded_by,
        buyer=RecordBuyerOut(name=b.name, siret=b.siret, purchasing_siret=b.purchasing_siret,
                             service_code=b.service_code, engagement_number=b.engagement_number),
        object=RecordObjectOut(
            name=o.name, item=o.item_slug, quantity=o.quantity, deadline=o.deadline,
            delivery=RecordDeliveryOut(commune_insee=o.delivery_insee, commune_name=o.delivery_commune,
                                       address=o.delivery_address),
            allow_split=o.allow_split, min_quotes=o.min_quotes),
        procurement=RecordProcurementOut(
            nature=p.nature, cpv=p.cpv, cpv_label=p.cpv_label, estimated_value_eur_ht=_eur(p.estimated_cents),
            budget_eur_ht=_eur(p.budget_cents), procedure=p.procedure, procedure_label=p.procedure_label,
            threshold_eur_ht=_eur(p.threshold_cents), rule=p.rule,
            cumulative=None if c is None else RecordCumulativeOut(
                year=c.year, cpv_group=c.cpv_group, awarded_eur_ht=euros(c.awarded_cents),
                open_estimates_eur_ht=euros(c.open_estimates_cents)),
            warning=p.warning, publicity_reference=p.publicity_reference),
        invitations=[RecordInvitationOut(
            workshop_id=i.workshop_id, workshop_name=i.workshop_name, source=i.source, rank=i.rank, score=i.score,
            distance_km=i.distance_km, reasons=list(i.reasons), status=i.status, answer=i.answer,
            decline_reason=i.decline_reason) for i in r.invitations],
        quotes=[RecordQuoteOut(
            quote_id=q.quote_id, workshop_id=q.workshop_id, workshop_name=q.workshop_name, status=q.status,
            quantity=q.quantity, unit_price_eur_ht=euros(q.unit_price_cents), vat_rate=percent(q.vat_rate_bp),
            total_eur_ht=euros(q.ht_cents), total_vat_eur=euros(q.vat_cents), total_eur_ttc=euros(q.ttc_cents),
            delivery_date=q.delivery_date, valid_until=q.valid_until, distance_km=q.distance_km,
            flags=list(q.flags), valid=q.valid, lowest=q.lowest, chosen=q.chosen) for q in r.quotes],
        orders=[RecordOrderOut(
            order_id=x.order_id, number=x.number, quote_id=x.quote_id, workshop_name=x.workshop_name,
            quantity=x.quantity, total_eur_ht=euros(x.ht_cents), total_eur_ttc=euros(x.ttc_cents),
            delivery_date=x.delivery_date, status=x.status) for x in r.orders],
        justifications=[RecordJustificationOut(code=j.code, label=j.label, text=j.text) for j in r.justifications],
    )


@dataclass
class _JsonOrPdf(Operation):
    """The operation as generated, with the PDF form documented next to the JSON one."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        content = getattr(ok, "content", None)
        if content is not None:
            content[PDF] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, content_media_type=PDF))


class AwardRecordController(Controller):
    path = "/v1/requests/{request_id:str}/award-record"
    tags = ["requests"]

    @get(
        "/",
        opt=access(Role.BUYER, Role.INTEGRATION, Role.ADMIN),
        operation_id="get_award_record",
        operation_class=_JsonOrPdf,
        responses={200: ResponseSpec(AwardRecordOut, description="The record (JSON), or its PDF form"),
                   **problems(400, 401, 403, 404, 429)},
    )
    async def get_one(self, request_id: Id, ctx: NamedDependency[RequestContext]) -> Response[Any]:
        """The « rapport de présentation / note de choix »: buyer, object, nature and CPV, estimate and
        cumulative need, procedure and its rule, the workshops invited and why, who quoted or declined
        (with reasons), every quote compared (HT, TVA, TTC, delivery date, distance, flags, valid), the
        choice, the justifications, the dates and the deciding key's label.

        Available at any status: before the award `awarded` is false and `orders` and
        `justifications` are empty. JSON by default; with `Accept: application/pdf`, the same record
        as a French A4 PDF (`Content-Disposition: attachment`). The request's buyer organisation
        (buyer and integration keys) and admins may read it; anyone else gets a 404."""
        record = await record_service.award_record(ctx.session, actor=ctx.principal, request_id=request_id,
                                                   geocoder=ctx.geocoder, now=ctx.now)
        if ctx.request.accept.best_match([JSON, PDF], default=JSON) == PDF:
            pdf = await record_service.award_record_pdf(record)
            filename = f"note-de-choix-{record.reference.lower()}.pdf"
            return Response(pdf, media_type=PDF, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        return Response(record_out(record), media_type=JSON)


__all__ = ("AwardRecordController", "AwardRecordOut")
