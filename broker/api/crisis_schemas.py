"""Request and response Structs of crisis calls and commitments (API.md, Crisis calls)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from broker.api.schemas import Deadline, Input, Insee, Name, Quantity, Slug, check_instant

Priority = Annotated[int, Meta(ge=1, le=5, description="1 = most urgent … 5")]
Units = Annotated[int, Meta(ge=0, le=10_000_000)]


class DeliveryPointIn(Input):
    label: Name
    commune_insee: Insee
    quantity: Quantity
    priority: Priority


class CrisisCallIn(Input):
    """``name`` is optional: without it the call is named after the item and the day it is launched
    (« Visières — 3 décembre 2026 »)."""

    item: Slug
    deadline: Deadline
    priority: Priority
    delivery_points: Annotated[list[DeliveryPointIn], Meta(min_length=1, max_length=5000)]
    max_distance_km: Annotated[float, Meta(gt=0, le=2000)] | None = None
    name: Annotated[str, Meta(min_length=1, max_length=200, description="the call's name, e.g. 'Visières CHU "
                              "Bretagne' (default: the item and the day)")] | None = None

    def __post_init__(self) -> None:
        check_instant(self.deadline, "/deadline")


class DeliveryPointsIn(Input):
    delivery_points: Annotated[list[DeliveryPointIn], Meta(min_length=1, max_length=5000)]


class DeliveryPointPatch(Input):
    quantity: Quantity


class CommitmentDeclineIn(Input):
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


class CommitmentProgressIn(Input):
    units_produced: Units
    units_delivered: Units


class TotalsOut(msgspec.Struct, kw_only=True):
    requested: int
    committed: int
    accepted: int
    produced: int
    delivered: int
    unmet: int


class CrisisCallOut(msgspec.Struct, kw_only=True):
    id: str
    status: str
    item: str
    name: str
    deadline: datetime
    priority: int
    max_distance_km: float | None
    revision: int
    rebalance_pending: bool
    totals: TotalsOut
    created_at: datetime
    closed_at: datetime | None


class CrisisCallPage(msgspec.Struct, kw_only=True):
    items: list[CrisisCallOut]
    next_cursor: str | None


class DeliveryPointOut(msgspec.Struct, kw_only=True):
    id: str
    label: str
    commune_insee: str
    lat: float
    lon: float
    quantity: int
    priority: int
    committed: int
    accepted: int
    produced: int
    delivered: int
    unmet: int


class CallSummaryOut(msgspec.Struct, kw_only=True):
    id: str
    item: str
    name: str
    deadline: datetime
    priority: int
    status: str


class DestinationOut(msgspec.Struct, kw_only=True):
    label: str
    commune_insee: str
    lat: float
    lon: float
    priority: int


class CommitmentOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A commitment. The maker's views add the call and the destination; the coordinator's view
    adds the workshop's name and commune."""

    id: str
    call_id: str
    workshop_id: str
    delivery_point: str
    quantity: int
    status: str
    distance_km: float
    units_produced: int
    units_delivered: int
    expires_at: datetime
    accepted_at: datetime | None
    decline_reason: str | None
    origin: str
    revision: int
    created_at: datetime
    workshop_name: str | None = None
    workshop_commune_insee: str | None = None
    call: CallSummaryOut | None = None
    destination: DestinationOut | None = None


class CommitmentPage(msgspec.Struct, kw_only=True):
    items: list[CommitmentOut]
    next_cursor: str | None


class RebalanceOut(msgspec.Struct, kw_only=True):
    id: str
    revision: int
    reason: str
    units_moved: int
    unmet_before: int
    unmet_after: int
    moved: dict[str, Any]
    created_at: datetime


class CrisisCallDetailOut(msgspec.Struct, kw_only=True):
    id: str
    status: str
    item: str
    name: str
    deadline: datetime
    priority: int
    max_distance_km: float | None
    revision: int
    rebalance_pending: bool
    totals: TotalsOut
    delivery_points: list[DeliveryPointOut]
    commitments: list[CommitmentOut]
    rebalances: list[RebalanceOut]
    created_at: datetime
    closed_at: datetime | None
