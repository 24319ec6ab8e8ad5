"""Queries of the fabrication lifecycle: workshops, catalogue, requests, invitations, quotes, orders.

Tenant scoping happens in the WHERE clause; status changes are compare-and-set UPDATEs whose
rowcount tells a lost race; capacity is reserved by one conditional UPDATE."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Text, bindparam, case, func, insert, null, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.base import new_id, table_of
from broker.db.models import (
    CatalogueItemRow,
    InvitationRow,
    MachineRow,
    OrderEventRow,
    OrderRow,
    QuoteRow,
    RegistryVersionRow,
    RequestRow,
    WorkshopCapacityRow,
    WorkshopRow,
    is_pending,
)
from broker.db.pending import buffer_insert
from broker.db.repositories import OUTBOX_TABLE, last_sequences, outbox_row
from broker.db.status import INVITATIONS, ORDERS, QUOTES, REQUESTS, Stored, compare_and_set, lock, move_all
from broker.domain.catalogue import CatalogueItem
from broker.domain.events import DomainEvent
from broker.domain.fabrication import Machine, Order, OrderEvent, Quote, Request, Workshop
from broker.domain.lifecycle import (
    MATCH,
    InvitationStatus,
    MatchState,
    OrderStatus,
    QuoteStatus,
    RequestStatus,
    check,
)

Keyset = tuple[datetime, str]

REQUEST_TABLE = table_of(RequestRow)
INVITATION_TABLE = table_of(InvitationRow)
#: A request's matching state, written as a status is (`broker.db.status`) where one row moves:
#: the buyer's second matching (`RequestRepository.rematch`).
MATCH_STATES = Stored(MATCH, RequestRow, column="match_state")


def _to(row: Any, kind: type[Any]) -> Any:
    return msgspec.convert(row, kind, from_attributes=True)


def _after(model: Any, after: Keyset | None) -> Any:
    if after is None:
        return True
    return (model.created_at > after[0]) | ((model.created_at == after[0]) & (model.id > after[1]))


async def _rowcount(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _plain(session: AsyncSession, query: Any) -> list[dict[str, Any]]:
    """Rows as dicts, for one ``msgspec.convert`` of them all: for the large reads, where ORM
    objects (or ``Row._asdict``) cost more than the query."""
    result = await session.execute(query)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


class WorkshopRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def row_for_org(self, org_id: str) -> WorkshopRow | None:
        query = select(WorkshopRow).where(WorkshopRow.org_id == org_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get(self, workshop_id: str) -> Workshop | None:
        row = await self.session.get(WorkshopRow, workshop_id)
        return None if row is None else _to(row, Workshop)

    async def row(self, workshop_id: str) -> WorkshopRow | None:
        return await self.session.get(WorkshopRow, workshop_id)

    def add(self, row: WorkshopRow) -> None:
        self.session.add(row)

    async def page(self, *, after: Keyset | None, limit: int) -> list[Workshop]:
        query = (
            select(WorkshopRow)
            .where(_after(WorkshopRow, after))
            .order_by(WorkshopRow.created_at, WorkshopRow.id)
            .limit(limit)
        )
        return [_to(r, Workshop) for r in (await self.session.execute(query)).scalars()]

    async def many(self, ids: Sequence[str]) -> dict[str, Workshop]:
        if not ids:
            return {}
        query = select(WorkshopRow).where(WorkshopRow.id.in_(list(ids)))
        return {r.id: _to(r, Workshop) for r in (await self.session.execute(query)).scalars()}

    async def everything(self) -> list[Workshop]:
        """Every workshop, as plain rows converted in one call (no ORM objects: this is the whole
        registry, loaded when a cached candidate index is rebuilt)."""
        return msgspec.convert(await _plain(self.session, select(WorkshopRow.__table__)), list[Workshop])

    async def bookings(self) -> dict[str, tuple[int, float | None]]:
        """What bookings change, per workshop: reserved units and on-time rate (as
        ``Workshop.on_time_rate``: None before the first delivery). The fairness input is no column:
        it is computed from the orders (``awards``)."""
        query = select(
            WorkshopRow.id,
            WorkshopRow.reserved_units,
            WorkshopRow.orders_delivered,
            WorkshopRow.orders_on_time,
        )
        return {
            i: (reserved, None if delivered == 0 else on_time / delivered)
            for i, reserved, delivered, on_time in await self.session.execute(query)
        }

    async def awards(
        self, *, since: datetime, until: datetime, workshop_ids: Sequence[str] | None = None
    ) -> dict[str, tuple[int, int]]:
        """Per workshop (of ``workshop_ids``, all when None), its awards created in [since, until[:
        how many, and the exact sum of their creation instants in epoch microseconds (whole seconds
        on SQLite) — all that linear weights need (``matching.fairness``). One aggregate over that
        window of ``fab_order`` grouped by workshop; workshops without an award are left out.

        An award is an order not cancelled (a cancelled order was no work won); crisis commitments
        are allocations, not awards (another table): they do not count."""
        query = (
            select(OrderRow.workshop_id, func.count(), func.sum(func.extract("epoch", OrderRow.created_at)))
            .where(
                OrderRow.created_at >= since,
                OrderRow.created_at < until,
                OrderRow.status != OrderStatus.CANCELLED,
            )
            .group_by(OrderRow.workshop_id)
        )
        if workshop_ids is not None:
            if not workshop_ids:
                return {}
            query = query.where(OrderRow.workshop_id.in_(list(workshop_ids)))
        # PostgreSQL sums numeric epochs with at most 6 decimals (a Decimal), SQLite whole seconds
        # (an int): either way, times 10**6 is an exact integer.
        return {w: (int(n), int(epochs * 1_000_000)) for w, n, epochs in await self.session.execute(query)}

    async def cancelled_orders(self) -> int:
        """How many orders were ever cancelled: the count only grows (a cancelled order stays so and
        orders are never deleted), so a cached ``awards`` sum is still exact while it has not moved."""
        query = select(func.count()).select_from(OrderRow).where(OrderRow.status == OrderStatus.CANCELLED)
        return int((await self.session.execute(query)).scalar_one())

    async def within_box(self, *, lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> list[Workshop]:
        query = select(WorkshopRow).where(
            WorkshopRow.lat.between(lat_min, lat_max), WorkshopRow.lon.between(lon_min, lon_max)
        )
        return [_to(r, Workshop) for r in (await self.session.execute(query)).scalars()]

    async def count_and_max_radius(self) -> tuple[int, float]:
        query = select(func.count(WorkshopRow.id), func.max(WorkshopRow.delivery_radius_km))
        count, radius = (await self.session.execute(query)).one()
        return int(count or 0), float(radius or 0.0)

    async def machines(self, workshop_ids: Sequence[str]) -> dict[str, list[Machine]]:
        out: dict[str, list[Machine]] = {w: [] for w in workshop_ids}
        if not workshop_ids:
            return out
        columns = [MachineRow.__table__.c[name] for name in Machine.__struct_fields__]
        query = select(*columns).order_by(MachineRow.created_at, MachineRow.id)
        if len(workshop_ids) < 500:
            query = query.where(MachineRow.workshop_id.in_(list(workshop_ids)))
        rows = [row for row in await _plain(self.session, query) if row["workshop_id"] in out]
        for machine in msgspec.convert(rows, list[Machine]):
            out[machine.workshop_id].append(machine)
        return out

    async def capacities(self, workshop_ids: Sequence[str], item_slug: str) -> dict[str, float]:
        if not workshop_ids:
            return {}
        query = select(WorkshopCapacityRow.workshop_id, WorkshopCapacityRow.units_per_day).where(
            WorkshopCapacityRow.item_slug == item_slug
        )
        if len(workshop_ids) < 500:
            query = query.where(WorkshopCapacityRow.workshop_id.in_(list(workshop_ids)))
        wanted = set(workshop_ids)
        return {w: float(u) for w, u in (await self.session.execute(query)).all() if w in wanted}

    async def all_capacities(self, workshop_id: str) -> dict[str, float]:
        query = select(WorkshopCapacityRow.item_slug, WorkshopCapacityRow.units_per_day).where(
            WorkshopCapacityRow.workshop_id == workshop_id
        )
        return {s: float(u) for s, u in (await self.session.execute(query)).all()}

    def add_machine(self, row: MachineRow) -> None:
        self.session.add(row)

    async def set_capacity(self, *, workshop_id: str, item_slug: str, units_per_day: float, now: datetime) -> None:
        query = select(WorkshopCapacityRow).where(
            WorkshopCapacityRow.workshop_id == workshop_id, WorkshopCapacityRow.item_slug == item_slug
        )
        row = (await self.session.execute(query)).scalar_one_or_none()
        if row is None:
            self.session.add(
                WorkshopCapacityRow(
                    id=new_id(),
                    workshop_id=workshop_id,
                    item_slug=item_slug,
                    units_per_day=units_per_day,
                    updated_at=now,
                )
            )
        else:
            row.units_per_day = units_per_day
            row.updated_at = now

    async def reserve(self, workshop_id: str, units: int, *, capacity: int) -> bool:
        """Book ``units`` if the total stays within ``capacity``: one atomic conditional UPDATE, so
        concurrent awards can never overbook (rowcount 0 means no room left). ``recent_wins`` is
        kept as a lifetime count of awards booked (a statistic): matching no longer reads it, its
        fairness input is the decayed count of the last 12 months' orders (see ``awards``)."""
        statement = (
            update(WorkshopRow)
            .where(WorkshopRow.id == workshop_id, WorkshopRow.reserved_units + units <= capacity)
            .values(reserved_units=WorkshopRow.reserved_units + units, recent_wins=WorkshopRow.recent_wins + 1)
        )
        booked = await _rowcount(self.session, statement) == 1
        if booked:
            await RegistryRepository(self.session).bump(RegistryRepository.BOOKINGS)
        return booked

    async def release(self, workshop_id: str, units: int, *, delivered_on_time: bool | None = None) -> None:
        left = WorkshopRow.reserved_units - units
        values: dict[str, Any] = {"reserved_units": case((left < 0, 0), else_=left)}
        if delivered_on_time is not None:
            values["orders_delivered"] = WorkshopRow.orders_delivered + 1
            values["orders_on_time"] = WorkshopRow.orders_on_time + (1 if delivered_on_time else 0)
        await _rowcount(self.session, update(WorkshopRow).where(WorkshopRow.id == workshop_id).values(**values))
        await RegistryRepository(self.session).bump(RegistryRepository.BOOKINGS)


class RegistryVersion(NamedTuple):
    """The two counters of what matching reads: ``workshops`` moves with what a candidate index is
    built from (profiles, machines, capacities, verification, pause), ``bookings`` with what awards,
    releases and crisis commitments change (reserved units, recent wins, deliveries on time), which
    a cached index refreshes without a rebuild."""

    workshops: int
    bookings: int


class RegistryRepository:
    """The version counters of what matching reads (see RegistryVersionRow, RegistryVersion)."""

    WORKSHOPS = "workshops"
    BOOKINGS = "bookings"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def bump(self, name: str = WORKSHOPS) -> None:
        statement = (
            update(RegistryVersionRow)
            .where(RegistryVersionRow.name == name)
            .values(version=RegistryVersionRow.version + 1)
        )
        if await _rowcount(self.session, statement) == 0:
            self.session.add(RegistryVersionRow(name=name, version=1))

    async def current(self) -> RegistryVersion:
        """Both counters, in one query."""
        query = select(RegistryVersionRow.name, RegistryVersionRow.version).where(
            RegistryVersionRow.name.in_((self.WORKSHOPS, self.BOOKINGS))
        )
        found = dict((await self.session.execute(query)).all())
        return RegistryVersion(workshops=int(found.get(self.WORKSHOPS, 0)), bookings=int(found.get(self.BOOKINGS, 0)))


class CatalogueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, slug: str) -> CatalogueItem | None:
        row = await self.session.get(CatalogueItemRow, slug)
        return None if row is None else _to(row, CatalogueItem)

    async def all(self) -> list[CatalogueItem]:
        query = select(CatalogueItemRow).order_by(CatalogueItemRow.slug)
        return [_to(r, CatalogueItem) for r in (await self.session.execute(query)).scalars()]

    def add(self, row: CatalogueItemRow) -> None:
        self.session.add(row)


#: The matching moves these batch statements make, asked of the table once (at import: the SQL is
#: built once, and PostgreSQL's one-statement batch spells its states as literals for the partial index).
_CLAIM = check(MATCH, MatchState.PENDING, MatchState.RUNNING)
_STORE = check(MATCH, MatchState.RUNNING, MatchState.DONE)
_CLAIM_AND_STORE = check(MATCH, MatchState.PENDING, MatchState.DONE)


def claim_matches(request_ids: Sequence[str], *, now: datetime) -> Any:
    """``pending → running`` of those still pending, returning their id and status."""
    return (
        update(REQUEST_TABLE)
        .where(REQUEST_TABLE.c.id.in_(request_ids), REQUEST_TABLE.c.match_state == MatchState.PENDING.value)
        .values(match_state=_CLAIM.value, updated_at=now)
        .returning(REQUEST_TABLE.c.id, REQUEST_TABLE.c.status)
    )


#: SQLite: a request's matching result, and ``done`` (an executemany of `store_match_rows`), after
#: `claim_matches`. The result comes already encoded as JSON text (`encode_result`), so it is not
#: converted to Python objects and encoded again on its way (that was a tenth of the worker's CPU
#: under load); SQLite stores the text as its JSON type does.
STORE_MATCH = (
    update(REQUEST_TABLE)
    .where(REQUEST_TABLE.c.id == bindparam("b_id"))
    .values(match_state=_STORE.value, match_result=bindparam("b_result", type_=Text()), updated_at=bindparam("b_at"))
)

#: PostgreSQL: the compare-and-set and the results of a batch in one statement, so each request's
#: row gets one new version instead of two (``pending → running``, then ``done`` with its result;
#: every version adds an entry to each of the table's indexes). A request cancelled in the
#: meantime gets `NO_MATCH`. Returns the id and status of the requests this batch took.
CLAIM_AND_STORE = text(f"""
UPDATE fab_request AS r
SET match_state = '{_CLAIM_AND_STORE.value}', updated_at = :now,
    match_result = CASE WHEN r.status = '{RequestStatus.OPEN.value}' THEN CAST(v.result AS json)
                        ELSE CAST(:no_match AS json) END
FROM unnest(CAST(:ids AS varchar[]), CAST(:results AS text[])) AS v(id, result)
WHERE r.id = v.id AND r.match_state = '{MatchState.PENDING.value}'
RETURNING r.id, r.status,
    (SELECT max(o.sequence) FROM outbox_event AS o WHERE o.resource_type = 'request' AND o.resource_id = r.id)
""")


def encode_result(result: Any) -> str:
    """A matching result (a `matching` struct or plain data) as the JSON text `STORE_MATCH` stores."""
    return msgspec.json.encode(result).decode()


def store_match_rows(results: Sequence[tuple[str, str]], *, now: datetime) -> list[dict[str, Any]]:
    return [{"b_id": i, "b_result": r, "b_at": now} for i, r in results]


class PreparedMatch(NamedTuple):
    """A request's matching as rows, built before the write transaction: the result, its
    invitations and their events, and its ``request.matched`` event (sequenced at the write)."""

    request_id: str
    result: str  # encoded JSON (`encode_result`)
    invitations: list[dict[str, Any]]
    invitation_events: list[dict[str, Any]]
    matched_event: DomainEvent


#: The result stored for a request cancelled before its matching was written.
NO_MATCH = encode_result({"included": [], "excluded": [], "eligible": 0})


def write_matches(connection: Connection, prepared: Sequence[PreparedMatch], *, now: datetime) -> dict[str, int]:
    """One transaction's statements for a batch of matchings, whatever its size (sync, so that on
    SQLite it runs whole on the writer thread: `Database.write`): the compare-and-set of those
    still pending (of two jobs for one request one writes it, the other leaves it out; on SQLite
    ``pending → running`` and the results after, on PostgreSQL both at once: `CLAIM_AND_STORE`),
    the events' sequences, then every invitation and event. A request cancelled in the meantime is
    marked done with no invitation. Returns request id → invited count."""
    by_id = {p.request_id: p for p in prepared}
    stored = connection.dialect.name == "postgresql"
    if stored:
        ids = list(by_id)
        claimed = connection.execute(CLAIM_AND_STORE, {
            "now": now, "no_match": NO_MATCH, "ids": ids, "results": [by_id[i].result for i in ids]})
    else:
        claimed = connection.execute(claim_matches(list(by_id), now=now))
    rows = claimed.all()
    won = {row[0]: row[1] for row in rows}
    if not won:
        return {}
    if stored:  # the last sequence of each request's events came back with the claim (one probe each)
        sequences = {row[0]: int(row[2]) for row in rows if row[2] is not None}
    else:
        sequences = {rid: int(last) for rid, last in connection.execute(last_sequences("request", list(won)))}
    results: list[tuple[str, str]] = []
    invitations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    invited: dict[str, int] = {}
    for request_id, status in won.items():
        if status != RequestStatus.OPEN:
            results.append((request_id, NO_MATCH))
            invited[request_id] = 0
            continue
        match = by_id[request_id]
        results.append((request_id, match.result))
        invitations += match.invitations
        events += match.invitation_events
        events.append(outbox_row(match.matched_event, now=now, sequence=sequences.get(request_id, 0) + 1))
        invited[request_id] = len(match.invitations)
    if not stored:
        connection.execute(STORE_MATCH, store_match_rows(results, now=now))
    if invitations:
        connection.execute(insert(INVITATION_TABLE), invitations)
    if events:
        connection.execute(insert(OUTBOX_TABLE), events)
    return invited


class RequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, values: dict[str, Any]) -> Request:
        """Written with the transaction's other new rows (``broker.db.pending``: no ORM bookkeeping,
        this is the busiest write of the API)."""
        buffer_insert(self.session, REQUEST_TABLE, values)
        return msgspec.convert(values, Request)

    async def get(self, request_id: str, *, scope_org_id: str | None) -> Request | None:
        query = select(RequestRow).where(RequestRow.id == request_id)
        if scope_org_id is not None:
            query = query.where(RequestRow.org_id == scope_org_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else _to(row, Request)

    async def match_result(self, request_id: str) -> dict[str, Any] | None:
        query = select(RequestRow.match_result).where(RequestRow.id == request_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def many(self, request_ids: Sequence[str]) -> list[Request]:
        if not request_ids:
            return []
        query = select(RequestRow).where(RequestRow.id.in_(request_ids))
        return [_to(r, Request) for r in (await self.session.execute(query)).scalars()]

    async def pending_match_ids(self, *, limit: int, first: str | None = None) -> list[str]:
        """Requests waiting for their matching, oldest first (``first`` leads when still pending)."""
        query = (
            select(RequestRow.id)
            .where(is_pending(RequestRow.match_state))
            .order_by(RequestRow.created_at)
            .limit(limit)
        )
        ids = list((await self.session.execute(query)).scalars())
        if first is not None and first not in ids:
            ids = [first, *ids[: limit - 1]]
        return ids

    async def pending_matches(self, *, older_than: datetime, limit: int) -> list[str]:
        query = (
            select(RequestRow.id)
            .where(RequestRow.status == RequestStatus.OPEN, is_pending(RequestRow.match_state),
                   RequestRow.created_at < older_than)
            .order_by(RequestRow.created_at)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def page(
        self, *, scope_org_id: str | None, after: Keyset | None, limit: int, status: str | None
    ) -> list[Request]:
        query = select(RequestRow).where(_after(RequestRow, after)).order_by(RequestRow.created_at, RequestRow.id)
        if scope_org_id is not None:
            query = query.where(RequestRow.org_id == scope_org_id)
        if status is not None:
            query = query.where(RequestRow.status == status)
        return [_to(r, Request) for r in (await self.session.execute(query.limit(limit))).scalars()]

    async def set_status(
        self,
        request_id: str,
        *,
        expected: RequestStatus | Collection[RequestStatus],
        status: RequestStatus,
        now: datetime,
        **values: Any,
    ) -> bool:
        return await compare_and_set(self.session, REQUESTS, request_id, expected=expected, to=status,
                                     values={"updated_at": now, **values})

    async def rematch(
        self, request_id: str, *, allow_split: bool, max_distance_km: float | None, quote_deadline: datetime,
        now: datetime,
    ) -> bool:
        """``done → pending`` of the matching of a request still ``open``, with the buyer's new split
        and distance settings and a new quote window; the previous result is dropped. False: it was
        no longer so (a lost race)."""
        return await compare_and_set(
            self.session, MATCH_STATES, request_id, expected=MatchState.DONE, to=MatchState.PENDING,
            values={"allow_split": allow_split, "max_distance_km": max_distance_km, "quote_deadline": quote_deadline,
                    "match_result": null(), "updated_at": now},
            where=[RequestRow.status == RequestStatus.OPEN],
        )

    async def record_award(
        self, request_id: str, *, justifications: list[dict[str, str]], awarded_by: str | None, awarded_at: datetime
    ) -> None:
        """The award record of a request the award has just moved to ``awarded`` (its row is held):
        the justifications of the rules that fired, the deciding key's label and when."""
        statement = (
            update(RequestRow)
            .where(RequestRow.id == request_id, RequestRow.status == RequestStatus.AWARDED)
            .values(award_justifications=justifications, awarded_by=awarded_by, awarded_at=awarded_at)
        )
        if await _rowcount(self.session, statement) != 1:
            raise AssertionError(f"request {request_id} is not awarded")

    async def lock(self, request_id: str) -> RequestStatus | None:
        """The request's status, its row held until commit: the writers of a request's quotes
        (submit, withdraw, award, cancel) take it before the quotes, so they queue on it."""
        return await lock(self.session, REQUESTS, request_id)

    async def windows_to_close(self, now: datetime, limit: int = 500) -> list[Request]:
        query = (
            select(RequestRow)
            .where(RequestRow.window_closed.is_(False), RequestRow.quote_deadline <= now)
            .order_by(RequestRow.quote_deadline)
            .limit(limit)
        )
        return [_to(r, Request) for r in (await self.session.execute(query)).scalars()]

    async def close_window(self, request_id: str, now: datetime) -> bool:
        statement = (
            update(RequestRow)
            .where(RequestRow.id == request_id, RequestRow.window_closed.is_(False))
            .values(window_closed=True, updated_at=now)
        )
        return await _rowcount(self.session, statement) == 1


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_request(self, request_id: str) -> list[InvitationRow]:
        query = select(InvitationRow).where(InvitationRow.request_id == request_id).order_by(InvitationRow.rank)
        return list((await self.session.execute(query)).scalars())

    async def of(self, request_id: str, workshop_id: str) -> InvitationRow | None:
        query = select(InvitationRow).where(
            InvitationRow.request_id == request_id, InvitationRow.workshop_id == workshop_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get(self, invitation_id: str, *, workshop_id: str | None) -> InvitationRow | None:
        query = select(InvitationRow).where(InvitationRow.id == invitation_id)
        if workshop_id is not None:
            query = query.where(InvitationRow.workshop_id == workshop_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def decline(self, invitation: InvitationRow, *, reason: str) -> bool:
        return await compare_and_set(self.session, INVITATIONS, invitation.id, expected=InvitationStatus.INVITED,
                                     to=InvitationStatus.DECLINED, values={"decline_reason": reason}, loaded=invitation)

    async def page_for_workshop(
        self, workshop_id: str, *, after: Keyset | None, limit: int
    ) -> list[tuple[InvitationRow, RequestRow]]:
        query = (
            select(InvitationRow, RequestRow)
            .join(RequestRow, RequestRow.id == InvitationRow.request_id)
            .where(InvitationRow.workshop_id == workshop_id, _after(InvitationRow, after))
            .order_by(InvitationRow.created_at, InvitationRow.id)
            .limit(limit)
        )
        return [(i, r) for i, r in (await self.session.execute(query)).all()]


class QuoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: QuoteRow) -> None:
        self.session.add(row)

    async def get(self, quote_id: str) -> Quote | None:
        row = await self.session.get(QuoteRow, quote_id)
        return None if row is None else _to(row, Quote)

    async def for_request(self, request_id: str) -> list[Quote]:
        query = select(QuoteRow).where(QuoteRow.request_id == request_id).order_by(QuoteRow.created_at, QuoteRow.id)
        return [_to(r, Quote) for r in (await self.session.execute(query)).scalars()]

    async def set_status(self, quote_id: str, *, expected: QuoteStatus, status: QuoteStatus) -> bool:
        return await compare_and_set(self.session, QUOTES, quote_id, expected=expected, to=status)

    async def reject_others(self, request_id: str, keep: Sequence[str]) -> None:
        await move_all(self.session, QUOTES, where=[QuoteRow.request_id == request_id, QuoteRow.id.not_in(list(keep))],
                       expected=QuoteStatus.SUBMITTED, to=QuoteStatus.REJECTED)

    async def expire(self, now: datetime) -> int:
        return await move_all(self.session, QUOTES, where=[QuoteRow.valid_until <= now],
                              expected=QuoteStatus.SUBMITTED, to=QuoteStatus.EXPIRED)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: OrderRow) -> None:
        self.session.add(row)

    def add_event(self, row: OrderEventRow) -> None:
        self.session.add(row)

    async def get(self, order_id: str) -> Order | None:
        row = await self.session.get(OrderRow, order_id)
        return None if row is None else _to(row, Order)

    async def history(self, order_id: str) -> list[OrderEvent]:
        query = select(OrderEventRow).where(OrderEventRow.order_id == order_id).order_by(OrderEventRow.id)
        return [_to(r, OrderEvent) for r in (await self.session.execute(query)).scalars()]

    async def page(
        self,
        *,
        buyer_org_id: str | None,
        maker_org_id: str | None,
        after: Keyset | None,
        limit: int,
        request_id: str | None = None,
    ) -> list[Order]:
        query = select(OrderRow).where(_after(OrderRow, after)).order_by(OrderRow.created_at, OrderRow.id)
        if buyer_org_id is not None:
            query = query.where(OrderRow.buyer_org_id == buyer_org_id)
        if maker_org_id is not None:
            query = query.where(OrderRow.maker_org_id == maker_org_id)
        if request_id is not None:
            query = query.where(OrderRow.request_id == request_id)
        return [_to(r, Order) for r in (await self.session.execute(query.limit(limit))).scalars()]

    async def for_request(self, request_id: str) -> list[Order]:
        query = select(OrderRow).where(OrderRow.request_id == request_id).order_by(OrderRow.created_at)
        return [_to(r, Order) for r in (await self.session.execute(query)).scalars()]

    async def set_status(
        self, order_id: str, *, expected: OrderStatus, status: OrderStatus, now: datetime, **values: Any
    ) -> bool:
        return await compare_and_set(self.session, ORDERS, order_id, expected=expected, to=status,
                                     values={"updated_at": now, **values})

    async def set_progress(self, order_id: str, *, units_done: int, statuses: Sequence[str], now: datetime) -> bool:
        """Monotonic: only moves forward, only while producing."""
        statement = (
            update(OrderRow)
            .where(
                OrderRow.id == order_id,
                OrderRow.units_done <= units_done,
                OrderRow.status.in_(list(statuses)),
            )
            .values(units_done=units_done, updated_at=now)
        )
        return await _rowcount(self.session, statement) == 1

    async def overdue(self, now: datetime, statuses: Sequence[str]) -> list[Order]:
        query = (
            select(OrderRow)
            .join(RequestRow, RequestRow.id == OrderRow.request_id)
            .where(OrderRow.late.is_(False), OrderRow.status.in_(list(statuses)), RequestRow.deadline < now)
        )
        return [_to(r, Order) for r in (await self.session.execute(query)).scalars()]

    async def mark_late(self, order_id: str) -> bool:
        statement = update(OrderRow).where(OrderRow.id == order_id, OrderRow.late.is_(False)).values(late=True)
        return await _rowcount(self.session, statement) == 1
