"""Domain objects -> API Structs, and the few unit conversions of the wire format."""

from __future__ import annotations

from decimal import Decimal

from broker.api.schemas import (
    CatalogueItemIO,
    MachineOut,
    MaterialOut,
    OrderHistoryOut,
    OrderOut,
    QuoteOut,
    RequestOut,
    StepIO,
    WorkshopOut,
)
from broker.domain.catalogue import CatalogueItem, ProcessStep
from broker.domain.fabrication import Machine, Order, OrderEvent, Quote, Request, Workshop, euros, totals_cents


def cents(amount: str) -> int:
    """``"12.5"`` -> 1250 (validated by the schema pattern already)."""
    return int(Decimal(amount) * 100)


def basis_points(rate: str) -> int:
    return int(Decimal(rate) * 100)


def percent(bp: int) -> str:
    return str((Decimal(bp) / 100).normalize()) if bp % 100 else str(bp // 100)


def step_io(step: ProcessStep) -> StepIO:
    return StepIO(
        process=step.process,
        material=step.material,
        thickness_mm=step.thickness_mm,
        part_size_mm=list(step.part_size_mm),
        minutes_per_unit=step.minutes_per_unit,
    )


def process_step(step: StepIO) -> ProcessStep:
    return ProcessStep(
        process=step.process,
        material=step.material,
        thickness_mm=step.thickness_mm,
        part_size_mm=(step.part_size_mm[0], step.part_size_mm[1], step.part_size_mm[2]),
        minutes_per_unit=step.minutes_per_unit,
    )


def catalogue_io(item: CatalogueItem) -> CatalogueItemIO:
    return CatalogueItemIO(
        slug=item.slug,
        name=item.name,
        description=item.description,
        licence=item.licence,
        steps=[step_io(s) for s in item.steps],
        certifications_required=list(item.certifications_required),
        files=list(item.files),
    )


def machine_out(machine: Machine) -> MachineOut:
    return MachineOut(
        id=machine.id,
        process=machine.process,
        envelope_mm=list(machine.envelope_mm),
        materials=[MaterialOut(material=m.material, max_thickness_mm=m.max_thickness_mm) for m in machine.materials],
        hours_per_week=machine.hours_per_week,
    )


def workshop_out(
    workshop: Workshop, machines: list[Machine], *, private: bool, capacities: dict[str, float] | None = None
) -> WorkshopOut:
    """``private`` adds what only the workshop, admins and coordinators see (capacities, bookings)."""
    return WorkshopOut(
        id=workshop.id,
        org_id=workshop.org_id,
        name=workshop.name,
        commune_insee=workshop.commune_insee,
        lat=workshop.lat,
        lon=workshop.lon,
        delivery_radius_km=workshop.delivery_radius_km,
        trades=list(workshop.trades),
        labels=list(workshop.labels),
        certifications=list(workshop.certifications),
        verified_labels=list(workshop.verified_labels),
        verified_certifications=list(workshop.verified_certifications),
        paused=workshop.paused,
        on_time_rate=workshop.on_time_rate,
        machines=[machine_out(m) for m in machines],
        capacities=capacities if private else None,
        reserved_units=workshop.reserved_units if private else None,
    )


def request_out(request: Request, *, invited: int | None = None) -> RequestOut:
    return RequestOut(
        id=request.id,
        status=request.status,
        item=request.item_slug,
        name=request.name,
        quantity=request.quantity,
        deadline=request.deadline,
        delivery={"commune_insee": request.delivery_insee, "address": request.delivery_address},
        budget_eur_ht=euros(request.budget_cents) if request.budget_cents is not None else None,
        min_quotes=request.min_quotes,
        quote_window_hours=request.quote_window_hours,
        quote_deadline=request.quote_deadline,
        window_closed=request.window_closed,
        allow_split=request.allow_split,
        max_distance_km=request.max_distance_km,
        procurement=request.procurement,
        match_state=request.match_state,
        steps=[step_io(s) for s in request.steps],
        certifications_required=list(request.certifications_required),
        award_justification=request.award_justification,
        created_at=request.created_at,
        invited=invited,
        award_justifications=(list(request.award_justifications) if request.award_justifications is not None
                              else None),
        awarded_by=request.awarded_by,
        awarded_at=request.awarded_at,
    )


def quote_out(quote: Quote) -> QuoteOut:
    ht, vat, ttc = totals_cents(quote.unit_price_cents, quote.quantity, quote.vat_rate_bp)
    return QuoteOut(
        id=quote.id,
        request_id=quote.request_id,
        workshop_id=quote.workshop_id,
        status=quote.status,
        unit_price_eur_ht=euros(quote.unit_price_cents),
        vat_rate=percent(quote.vat_rate_bp),
        quantity=quote.quantity,
        delivery_date=quote.delivery_date,
        valid_until=quote.valid_until,
        note=quote.note,
        total_eur_ht=euros(ht),
        total_vat_eur=euros(vat),
        total_eur_ttc=euros(ttc),
        created_at=quote.created_at,
    )


def order_out(order: Order, history: list[OrderEvent]) -> OrderOut:
    ht, _vat, ttc = totals_cents(order.unit_price_cents, order.quantity, order.vat_rate_bp)
    return OrderOut(
        id=order.id,
        number=order.number,
        request_id=order.request_id,
        quote_id=order.quote_id,
        workshop_id=order.workshop_id,
        buyer_org_id=order.buyer_org_id,
        quantity=order.quantity,
        unit_price_eur_ht=euros(order.unit_price_cents),
        vat_rate=percent(order.vat_rate_bp),
        total_eur_ht=euros(ht),
        total_eur_ttc=euros(ttc),
        delivery_date=order.delivery_date,
        status=order.status,
        units_done=order.units_done,
        tracking=order.tracking,
        late=order.late,
        created_at=order.created_at,
        history=[
            OrderHistoryOut(
                at=e.at,
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                units_done=e.units_done,
                note=e.note,
            )
            for e in history
        ],
    )
