"""Orders after the award: reads scoped to each side, status moves through ``transition_order``,
monotonic progress, capacity released when an order ends, and the deadline watch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.geocoding.base import Geocoder
from broker.db.fabrication import Keyset, OrderRepository, RegistryRepository, RequestRepository, WorkshopRepository
from broker.db.lists import orders_page
from broker.db.models import OrderEventRow
from broker.domain.access import Principal, Role
from broker.domain.events import OrderDelivered, OrderLate, OrderProgress, OrderStatusChanged
from broker.domain.fabrication import Order, OrderEvent
from broker.domain.lifecycle import ORDER_ACTIVE, OrderStatus, RequestStatus, Side, transition_order
from broker.domain.listing import ListedOrder, ListQuery, Position
from broker.errors import Conflict, NotFound, Rejected
from broker.services.events import emit
from broker.services.requests import raise_lost_race, with_communes

PRODUCING = (OrderStatus.CONFIRMED, OrderStatus.IN_PRODUCTION, OrderStatus.READY)


def _side(actor: Principal, order: Order) -> Side | None:
    if actor.role == Role.MAKER and order.maker_org_id == actor.org_id:
        return Side.MAKER
    if actor.role == Role.BUYER and order.buyer_org_id == actor.org_id:
        return Side.BUYER
    return None


def _visible(actor: Principal, order: Order) -> bool:
    if actor.is_admin:
        return True
    if actor.role == Role.INTEGRATION:  # a procurement system reads its buyer organisation's orders
        return order.buyer_org_id == actor.org_id
    return _side(actor, order) is not None


async def get_order(session: AsyncSession, *, actor: Principal, order_id: str) -> tuple[Order, list[OrderEvent]]:
    repo = OrderRepository(session)
    order = await repo.get(order_id)
    if order is None or not _visible(actor, order):
        raise NotFound(f"order {order_id} not found")
    return order, await repo.history(order_id)


def _parties(actor: Principal) -> tuple[str | None, str | None]:
    """(buyer, maker) organisation whose orders ``actor`` lists: its own side's; (None, None) for an admin."""
    if actor.is_admin:
        return None, None
    if actor.role == Role.MAKER:
        return None, actor.org_id
    return actor.org_id, None


async def list_orders(
    session: AsyncSession, *, actor: Principal, after: Keyset | None, limit: int, request_id: str | None = None
) -> list[Order]:
    buyer, maker = _parties(actor)
    return await OrderRepository(session).page(
        buyer_org_id=buyer, maker_org_id=maker, after=after, limit=limit, request_id=request_id
    )


async def search_orders(
    session: AsyncSession, *, actor: Principal, query: ListQuery, geocoder: Geocoder, after: Position | None,
    limit: int,
) -> list[ListedOrder]:
    """The web's list of orders, for either side (an admin's: all): searched, filtered and sorted in
    the query, ``limit`` rows after ``after``."""
    buyer, maker = _parties(actor)
    return await orders_page(session, buyer_org_id=buyer, maker_org_id=maker, query=with_communes(query, geocoder),
                             after=after, limit=limit)


async def move_order(
    session: AsyncSession,
    *,
    actor: Principal,
    order_id: str,
    to: OrderStatus,
    note: str | None,
    tracking: str | None,
    now: datetime,
) -> Order:
    order, _ = await get_order(session, actor=actor, order_id=order_id)
    side = _side(actor, order)
    if side is None:  # an admin or integration key reads orders but does not move them
        raise Conflict("only the order's maker or buyer may change its status", code="transition-not-yours")
    current = OrderStatus(order.status)
    target = transition_order(current, to, side=side)
    if target == OrderStatus.SHIPPED and not tracking:
        raise Rejected("shipping needs a tracking reference (carrier and number)", pointer="/tracking",
                       code="tracking-required")
    if target in (OrderStatus.CANCELLED, OrderStatus.DISPUTED) and not (note or "").strip():
        raise Rejected(f"say why the order is {target}", pointer="/note", code="note-required",
                       figures={"target": target.value})
    extra = {"tracking": tracking} if tracking else {}
    repo = OrderRepository(session)
    if not await repo.set_status(order_id, expected=current, status=target, now=now, **extra):
        raise_lost_race("order")
    repo.add_event(
        OrderEventRow(
            order_id=order_id,
            at=now,
            kind="status",
            from_status=current,
            to_status=target,
            actor_org_id=actor.org_id,
            note=note,
        )
    )
    if current in ORDER_ACTIVE and target not in ORDER_ACTIVE:
        on_time = now.date() <= order.delivery_date if target == OrderStatus.DELIVERED else None
        await WorkshopRepository(session).release(order.workshop_id, order.quantity, delivered_on_time=on_time)
    elif target == OrderStatus.DELIVERED:
        await WorkshopRepository(session).release(
            order.workshop_id, 0, delivered_on_time=now.date() <= order.delivery_date
        )
    elif target == OrderStatus.CANCELLED:
        # disputed → cancelled books nothing back, but a cancelled order stops counting in matching's
        # fairness term (awards of the last 12 months): the cached candidates must see it now.
        await RegistryRepository(session).bump(RegistryRepository.BOOKINGS)
    await emit(session, OrderStatusChanged(id=order_id, number=order.number, from_=current, to=target, note=note,
                                           tracking=tracking, maker_org_id=order.maker_org_id),
               org_id=order.buyer_org_id, resource_id=order_id, now=now)
    if target == OrderStatus.DELIVERED:
        await emit(session, OrderDelivered(id=order_id, number=order.number, quantity=order.quantity,
                                           maker_org_id=order.maker_org_id),
                   org_id=order.buyer_org_id, resource_id=order_id, now=now)
    if target in (OrderStatus.DELIVERED, OrderStatus.CLOSED, OrderStatus.CANCELLED):
        await _maybe_close_request(session, order.request_id, now=now)
    moved, _ = await get_order(session, actor=actor, order_id=order_id)
    return moved


async def _maybe_close_request(session: AsyncSession, request_id: str, *, now: datetime) -> None:
    orders = await OrderRepository(session).for_request(request_id)
    finished = {OrderStatus.DELIVERED, OrderStatus.CLOSED, OrderStatus.CANCELLED}
    if orders and all(OrderStatus(o.status) in finished for o in orders):
        await RequestRepository(session).set_status(
            request_id, expected=[RequestStatus.AWARDED], status=RequestStatus.CLOSED, now=now
        )


async def report_progress(
    session: AsyncSession, *, actor: Principal, order_id: str, units_done: int, now: datetime
) -> Order:
    order, _ = await get_order(session, actor=actor, order_id=order_id)
    if _side(actor, order) is not Side.MAKER:
        raise Conflict("only the order's maker reports production progress", code="transition-not-yours")
    if units_done > order.quantity:
        raise Rejected(f"units_done {units_done} is more than the {order.quantity} ordered", pointer="/units_done",
                       code="units-over-ordered", figures={"done": units_done, "ordered": order.quantity})
    if units_done < order.units_done:
        raise Rejected(
            f"progress only moves forward: {order.units_done} units are already reported", pointer="/units_done",
            code="progress-backwards", figures={"reported": order.units_done},
        )
    if order.status not in PRODUCING:
        raise Conflict(
            f"the order is '{order.status}'; progress is reported while confirmed, in production or ready",
            code="invalid-state-transition", figures={"noun": "order", "current": str(order.status)},
        )
    repo = OrderRepository(session)
    if not await repo.set_progress(order_id, units_done=units_done, statuses=PRODUCING, now=now):
        raise_lost_race("order")
    repo.add_event(
        OrderEventRow(
            order_id=order_id,
            at=now,
            kind="progress",
            from_status=None,
            to_status=None,
            units_done=units_done,
            actor_org_id=actor.org_id,
            note=None,
        )
    )
    await emit(session, OrderProgress(id=order_id, units_done=units_done, quantity=order.quantity),
               org_id=order.buyer_org_id, resource_id=order_id, now=now)
    moved, _ = await get_order(session, actor=actor, order_id=order_id)
    return moved


async def flag_late_orders(session: AsyncSession, *, now: datetime) -> int:
    """The deadline watch: orders still open after their request's deadline are flagged once."""
    repo = OrderRepository(session)
    flagged = 0
    open_statuses = [s for s in OrderStatus if s in ORDER_ACTIVE or s == OrderStatus.SHIPPED]
    for order in await repo.overdue(now, open_statuses):
        if await repo.mark_late(order.id):
            flagged += 1
            await emit(session, OrderLate(id=order.id, number=order.number, status=OrderStatus(order.status),
                                          maker_org_id=order.maker_org_id),
                       org_id=order.buyer_org_id, resource_id=order.id, now=now)
    return flagged
