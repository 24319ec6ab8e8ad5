"""Public procurement on the buyer's pages (issue 17): the procedure shown live while the buyer types
the estimate, and the explanation of an award rule that asks for a written justification.

The procedure comes from `broker.services.procurement.simulate` (the buyer's cumulative need for the
CPV group included), exactly what the request's creation will decide on the same day."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from broker.api.context import RequestContext
from broker.domain import procurement as law
from broker.domain.cpv import DEFAULT_CPV, cpv_label, cpv_problem, normalise_cpv
from broker.errors import BrokerError
from broker.services import procurement as procurement_service
from broker.web.forms import sentence
from broker.web.labels import AWARD_RULE, NATURE, QUOTE_FLAG_REASON, euros
from broker.web.refusals import french

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
MAX_ESTIMATE_CENTS = 999_999_999_99

# The award's refusals that the page explains and answers with a justification in place.
JUSTIFIED_RULES = frozenset({"justification-required", "rotation-justification-required", "min-quotes-not-met"})


def estimate_cents(text: str) -> int | None:
    """``"75 000"``, ``"75000,50"`` or ``"75000.50 €"`` in cents; None when it is not an amount."""
    value = _SPACES.sub("", text or "").replace(",", ".").removesuffix("€")
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", value):
        return None
    try:
        cents = int(Decimal(value) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern above rules it out
        return None
    return cents if 0 < cents <= MAX_ESTIMATE_CENTS else None


def default_cpv(item: str | None) -> str:
    return DEFAULT_CPV.get(item or "", "")


def cpv_text(code: str | None) -> str | None:
    """``39121100-7 — Bureaux`` for a valid code, else None."""
    if not code or cpv_problem(code) is not None:
        return None
    found = cpv_label(normalise_cpv(code))
    return f"{normalise_cpv(code)} — {found}" if found else normalise_cpv(code)


async def procedure_context(
    ctx: RequestContext, *, nature: str, estimate: str, budget: str = "", cpv: str = "", item: str = "",
) -> dict[str, Any]:
    """What the live procedure panel shows for what the buyer typed so far (never raises: whatever
    cannot be decided yet is said in the panel)."""
    nature = nature if nature in NATURE else "fournitures"
    cpv = normalise_cpv(cpv) or default_cpv(item)
    from_budget = not _SPACES.sub("", estimate or "") and bool(_SPACES.sub("", budget or ""))
    typed = budget if from_budget else estimate
    cents = estimate_cents(typed)
    result: dict[str, Any] = {"decision": None, "problem": None, "estimate_cents": cents, "nature": nature,
                              "cpv": cpv, "cpv_text": cpv_text(cpv), "from_budget": from_budget,
                              "cpv_problem": None}
    if cpv and (problem := cpv_problem(cpv)) is not None:
        result["cpv_problem"] = sentence(problem)
        cpv = ""
    if cents is None:
        result["problem"] = ("Saisissez la valeur estimée du besoin (ou un budget), en euros hors taxes, pour voir "
                             "la procédure applicable." if not _SPACES.sub("", typed or "") else
                             "La valeur estimée doit être un montant positif en euros, par exemple 45\u202f000.")
        return result
    try:
        decision = await procurement_service.simulate(
            ctx.session, org_id=ctx.principal.org_id, nature=law.Nature(nature), estimate_cents=cents,
            on=law.paris_day(ctx.now), cpv=cpv or None)
    except BrokerError as exc:
        result["problem"] = french(exc)
        return result
    result["decision"] = decision
    result["total_cents"] = (decision.cumulative.total_with(cents) if decision.cumulative else cents)
    return result


def rule_explanation(exc: BrokerError | None, *, chosen: list[dict[str, Any]],
                     cheapest: dict[str, Any] | None) -> dict[str, Any] | None:
    """The award rules that fired, for the page: each one's French title and the service's own
    explanation with its figures (the problem's ``rules``); without them, what the page knows
    (the chosen quote against the cheapest valid one, the flags of an invalid quote)."""
    if exc is None or exc.code not in JUSTIFIED_RULES:
        return None
    extensions: dict[str, Any] = dict(getattr(exc, "extensions", None) or {})
    rules = []
    for rule in extensions.get("rules") or []:
        reason = str(rule.get("reason", ""))
        detail = str(rule.get("detail", ""))
        rules.append({"reason": reason, "title": AWARD_RULE.get(reason, AWARD_RULE[exc.code]),
                      "detail": "" if _looks_english(detail) else sentence(detail)})
    if not rules:
        rules = [_known_rule(exc, extensions.get("reason"), chosen=chosen, cheapest=cheapest)]
    return {"code": exc.code, "rules": rules}


def _known_rule(exc: BrokerError, reason: object, *, chosen: list[dict[str, Any]],
                cheapest: dict[str, Any] | None) -> dict[str, Any]:
    flagged = [c for c in chosen if c.get("flags")]
    if exc.code == "justification-required" and reason is None:
        reason = "invalid-quote" if flagged else "not-lowest"
    detail = ""
    if exc.code == "justification-required" and reason == "invalid-quote":
        detail = " ".join(f"Le devis de {c['name']} n'est pas valide\u00a0: "
                          + ", ".join(QUOTE_FLAG_REASON.get(f, f) for f in c["flags"]) + "." for c in flagged)
    elif exc.code == "justification-required" and cheapest is not None and chosen:
        detail = (f"Devis retenu\u00a0: {chosen[0]['name']}, {euros(chosen[0]['ttc'])} TTC. Devis valide le moins "
                  f"cher\u00a0: {cheapest['name']}, {euros(cheapest['ttc'])} TTC.")
    elif exc.code == "rotation-justification-required":
        detail = ("L'article R.2122-8 demande de ne pas contracter systématiquement avec le même opérateur lorsque "
                  "plusieurs offres peuvent répondre au besoin.")
    elif not _looks_english(exc.detail):
        detail = sentence(exc.detail)
    key = str(reason) if exc.code == "justification-required" else exc.code
    return {"reason": key, "title": AWARD_RULE.get(key, AWARD_RULE[exc.code]), "detail": detail}


def _looks_english(text: str) -> bool:
    return bool(re.search(r"\b(the|quote|required|while|received)\b", text))
