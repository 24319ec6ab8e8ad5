"""Score components (each in [0, 1]) and their weighted sum, scalar and vectorised alike.

Both forms perform the same floating-point operations in the same order, so the engine and the
pure-Python reference agree to the bit for equal inputs (distances aside, see `matching.geo`).
"""

from __future__ import annotations

import functools

import numpy as np

from matching.constraints import fmt
from matching.geo import FloatArray
from matching.model import MatchWeights, ScoreComponents


def validate_weights(weights: MatchWeights) -> None:
    """Reject scales that would divide by zero or weights that are not finite."""
    if weights.distance_scale_km <= 0 or weights.slack_target <= 0 or weights.fairness_scale <= 0:
        raise ValueError("distance_scale_km, slack_target and fairness_scale must be > 0")
    values = (weights.distance, weights.slack, weights.on_time, weights.fairness, weights.on_time_prior)
    if not all(np.isfinite(values)):
        raise ValueError("weights must be finite")


def components(
    *,
    distance_km: float,
    capacity: int,
    quantity: int,
    on_time_rate: float | None,
    recent_wins: float,
    weights: MatchWeights,
) -> ScoreComponents:
    """Score parts of one workshop (formulas in `MatchWeights`)."""
    rate = weights.on_time_prior if on_time_rate is None else on_time_rate
    return ScoreComponents(
        distance=1.0 / (1.0 + distance_km / weights.distance_scale_km),
        slack=min(1.0, capacity / (weights.slack_target * quantity)),
        on_time=min(1.0, max(0.0, rate)),
        fairness=1.0 / (1.0 + max(0.0, float(recent_wins)) / weights.fairness_scale),
    )


def weighted(c: ScoreComponents, weights: MatchWeights) -> float:
    """The score: weighted sum of the components."""
    return (
        weights.distance * c.distance
        + weights.slack * c.slack
        + weights.on_time * c.on_time
        + weights.fairness * c.fairness
    )


def component_arrays(
    *,
    distance_km: FloatArray,
    capacity: FloatArray,
    quantity: int,
    on_time_rate: FloatArray,
    recent_wins: FloatArray,
    weights: MatchWeights,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Vectorised `components` and `weighted`: (score, distance, slack, on_time, fairness).

    `on_time_rate` holds NaN for unknown rates; `recent_wins` is already clamped at 0.
    """
    prox = 1.0 / (1.0 + distance_km / weights.distance_scale_km)
    slack = np.minimum(1.0, capacity / (weights.slack_target * quantity))
    rate = np.where(np.isnan(on_time_rate), weights.on_time_prior, on_time_rate)
    on_time = np.minimum(1.0, np.maximum(0.0, rate))
    fair = 1.0 / (1.0 + recent_wins / weights.fairness_scale)
    score = weights.distance * prox + weights.slack * slack + weights.on_time * on_time + weights.fairness * fair
    return score, prox, slack, on_time, fair


@functools.lru_cache(maxsize=64)
def _weight_labels(weights: MatchWeights) -> tuple[str, str, str, str]:
    return (fmt(weights.distance, 3), fmt(weights.slack, 3), fmt(weights.on_time, 3), fmt(weights.fairness, 3))


def explain_score(
    c: ScoreComponents,
    *,
    distance_km: float,
    capacity: int,
    quantity: int,
    on_time_rate: float | None,
    recent_wins: float,
    weights: MatchWeights,
) -> tuple[str, ...]:
    """Human explanation of each score component of an included workshop."""
    w = _weight_labels(weights)
    lines = [
        f"à {fmt(distance_km)} km : proximité {fmt(c.distance, 2)} × poids {w[0]}",
        f"capacité de {capacity} unités d'ici l'échéance pour {quantity} demandées : "
        f"marge {fmt(c.slack, 2)} × poids {w[1]}"
        + (" (capacité partielle, commande fractionnable)" if capacity < quantity else ""),
    ]
    if on_time_rate is None:
        lines.append(f"ponctualité inconnue : valeur neutre {fmt(c.on_time, 2)} × poids {w[2]}")
    else:
        lines.append(f"livré à l'heure {fmt(on_time_rate * 100)} % du temps : {fmt(c.on_time, 2)} × poids {w[2]}")
    lines.append(f"{wins_label(recent_wins)}\u00a0: équité {fmt(c.fairness, 2)} × poids {w[3]}")
    return tuple(lines)


def wins_label(recent_wins: float) -> str:
    """What the fairness term measures, in French: the awards of the last 12 months, weighted by age
    (`matching.fairness`), e.g. « 2,4 commandes remportées sur les 12 derniers mois (pondérées par
    leur ancienneté) ». Plural from 2, as French has it; a small non-zero figure keeps enough
    decimals not to read as 0."""
    wins = max(0.0, float(recent_wins))
    if wins == 0:
        return "aucune commande remportée sur les 12 derniers mois"
    decimals = next((d for d in (1, 2, 3) if round(wins, d) > 0), None)
    if decimals is None:
        return "moins de 0,001 commande remportée sur les 12 derniers mois (compte pondéré par l'ancienneté)"
    if round(wins, decimals) >= 2:
        return f"{fmt(wins, decimals)} commandes remportées sur les 12 derniers mois (pondérées par leur ancienneté)"
    return f"{fmt(wins, decimals)} commande remportée sur les 12 derniers mois (compte pondéré par l'ancienneté)"
