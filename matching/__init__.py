"""Pure matching core: rank workshops for a request (`match`) and allocate crisis calls (`allocate`).

No I/O, no clock, no randomness; stdlib, msgspec, numpy, scipy and OR-Tools only.
"""

from matching.allocation import Allocation, Assignment, DeliveryPoint, Supply, allocate, rebalance
from matching.capacity import capacity_units, working_days
from matching.engine import explain, match
from matching.fairness import FAIRNESS_WINDOW, award_weight, decayed_awards, fairness_reference
from matching.geo import haversine_km
from matching.index import CandidateIndex
from matching.model import (
    REASON_CODES,
    Candidate,
    Excluded,
    Included,
    Machine,
    MatchRequest,
    MatchResult,
    MatchWeights,
    MaterialSpec,
    Reason,
    ReasonCode,
    ScoreComponents,
    Step,
)

__all__ = (
    "FAIRNESS_WINDOW",
    "REASON_CODES",
    "Allocation",
    "Assignment",
    "Candidate",
    "CandidateIndex",
    "DeliveryPoint",
    "Excluded",
    "Included",
    "Machine",
    "MatchRequest",
    "MatchResult",
    "MatchWeights",
    "MaterialSpec",
    "Reason",
    "ReasonCode",
    "ScoreComponents",
    "Step",
    "Supply",
    "allocate",
    "award_weight",
    "capacity_units",
    "decayed_awards",
    "explain",
    "fairness_reference",
    "haversine_km",
    "match",
    "rebalance",
    "working_days",
)
