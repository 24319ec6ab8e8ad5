"""The procedure of a request (issue 17): the law's thresholds (`broker.domain.procurement`) applied
to the buyer's estimate and to its cumulative need for the CPV group in the civil year."""

from __future__ import annotations

from datetime import date, datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.procurement import cumulative_cents, cumulative_cents_now
from broker.db.session import Database
from broker.domain import procurement as law
from broker.domain.cpv import DEFAULT_CPV, cpv_group, cpv_problem, normalise_cpv
from broker.domain.fabrication import CumulativeOut, euros
from broker.errors import Rejected


class Need(msgspec.Struct, frozen=True, kw_only=True):
    """What a new request says of the need: its nature, CPV, estimate and publicity reference."""

    nature: law.Nature
    cpv: str
    estimate_cents: int
    publicity_reference: str | None


def need_of(
    *, item: str | None, nature: str, cpv: str | None, estimate_cents: int | None, budget_cents: int | None,
    publicity_reference: str | None,
) -> Need:
    """The need as given, checked: the CPV (the catalogue item's default when omitted) and the
    estimate (the budget when omitted)."""
    if cpv is None and item is not None:
        cpv = DEFAULT_CPV.get(item)
    if cpv is None:
        raise Rejected("indiquez le code CPV de l'achat (8 chiffres, un tiret et le chiffre de contrôle, "
                       "ex. 39130000-2)", pointer="/procurement/cpv", code="cpv-required")
    if (problem := cpv_problem(cpv)) is not None:
        raise Rejected(problem, pointer="/procurement/cpv", code="cpv-invalid")
    estimate = estimate_cents if estimate_cents is not None else budget_cents
    if estimate is None:
        raise Rejected("indiquez la valeur estimée du besoin (procurement.estimated_value_eur_ht) ou un budget "
                       "(budget_eur_ht) : la procédure en dépend", pointer="/procurement/estimated_value_eur_ht",
                       code="estimate-required")
    return Need(nature=law.Nature(nature), cpv=normalise_cpv(cpv), estimate_cents=estimate,
                publicity_reference=publicity_reference)


async def cumulative(
    session: AsyncSession, *, org_id: str, cpv: str, on: date, db: Database | None = None
) -> law.Cumulative:
    """The buyer's year for the CPV group, in one statement. Given ``db`` it is read outside the
    request's write transaction (SQLite: `Database.read_now` beside the writer; PostgreSQL: one
    autocommit read), so that creating a request stays one INSERT statement. Two requests of one
    buyer for one CPV group created within the same few milliseconds may each be measured without
    the other: the broker does not serialise them (a splitting buyer sends one after the other, and
    each is measured against all the previous ones)."""
    group = cpv_group(cpv)
    start, end = law.civil_year_bounds(on.year)
    if db is not None and db.reads_now:
        with db.read_now() as reader:
            awarded, open_estimates = cumulative_cents_now(reader, org_id=org_id, cpv_group=group, start=start,
                                                           end=end)
    elif db is not None and db.is_sqlite:
        async with db.reader() as read_session:
            awarded, open_estimates = await cumulative_cents(read_session, org_id=org_id, cpv_group=group,
                                                             start=start, end=end)
    elif db is not None:
        async with db.read_engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            awarded, open_estimates = await cumulative_cents(autocommit, org_id=org_id, cpv_group=group,
                                                             start=start, end=end)
    else:
        awarded, open_estimates = await cumulative_cents(session, org_id=org_id, cpv_group=group, start=start,
                                                         end=end)
    return law.Cumulative(year=on.year, cpv_group=group, awarded_cents=awarded, open_estimates_cents=open_estimates)


def decide(nature: law.Nature, estimate_cents: int, on: date, cumulated: law.Cumulative | None) -> law.Decision:
    """`law.decide` (with the cumulative need when given); no rule for that day is a 422."""
    try:
        if cumulated is None:
            return law.decide(nature, estimate_cents, on)
        return law.decide_with_cumulative(nature, estimate_cents, on, cumulated)
    except law.NoRule as exc:
        raise Rejected(f"{exc} : le broker ne connaît pas encore les seuils applicables à cette date",
                       pointer="/procurement", code="procedure-unknown-date") from exc


async def decide_for_request(
    session: AsyncSession, *, org_id: str, need: Need, quote_window_hours: int, deadline: datetime, now: datetime,
    db: Database | None = None,
) -> law.Decision:
    """The procedure a new request is created under, on the server's day in Paris. Refuses (422) a
    need that calls for a formalised procedure, an adapted procedure without the 7-day window it
    needs, and a MAPA of 90 000 € HT or more without the reference of its notice."""
    on = law.paris_day(now)
    decision = decide(need.nature, need.estimate_cents, on,
                      await cumulative(session, org_id=org_id, cpv=need.cpv, on=on, db=db))
    if decision.procedure == law.Procedure.FORMALISEE:
        total = decision.cumulative.total_with(need.estimate_cents) if decision.cumulative else need.estimate_cents
        raise Rejected(
            f"un besoin estimé à {law.format_euros(total)} HT atteint le seuil européen de "
            f"{law.format_euros(decision.eu_threshold_cents)} HT ({decision.rule}) : il relève d'une procédure "
            "formalisée (appel d'offres), que le broker ne conduit pas. Publiez-la sur votre profil d'acheteur, "
            "ou, si le besoin peut être réellement distinct, décrivez-le tel quel — le fractionnement pour rester "
            "sous un seuil est interdit (article R.2121-5).",
            pointer="/procurement/estimated_value_eur_ht", code="procedure-formalisee",
        )
    if decision.procedure in law.OPEN_PROCEDURES:
        if quote_window_hours < law.MAPA_MIN_WINDOW_HOURS:
            raise Rejected(
                f"une procédure adaptée laisse au moins 7 jours pour répondre : quote_window_hours doit valoir au "
                f"moins {law.MAPA_MIN_WINDOW_HOURS} (reçu : {quote_window_hours})",
                pointer="/quote_window_hours", code="mapa-window-too-short",
            )
        if (deadline - now).total_seconds() < law.MAPA_MIN_WINDOW_HOURS * 3600:
            raise Rejected("une procédure adaptée laisse au moins 7 jours pour répondre : l'échéance de livraison "
                           "doit être postérieure", pointer="/deadline", code="mapa-window-too-short")
    if decision.procedure == law.Procedure.MAPA_PUBLICITE and not (need.publicity_reference or "").strip():
        raise Rejected(
            f"à partir de {law.format_euros(decision.publicity_threshold_cents)} HT, une procédure adaptée exige "
            "un avis au BOAMP ou dans un journal d'annonces légales (article R.2131-12) : indiquez sa référence "
            "dans procurement.publicity_reference",
            pointer="/procurement/publicity_reference", code="publicity-reference-required",
        )
    return decision


def recorded_decision(need: Need, decision: law.Decision) -> dict[str, object]:
    """The procurement fields a request stores and is answered with (beside the Chorus references)."""
    cumulated = decision.cumulative
    return {
        "nature": need.nature.value,
        "cpv": need.cpv,
        "estimated_value_eur_ht": euros(need.estimate_cents),
        "publicity_reference": need.publicity_reference,
        "procedure": decision.procedure.value,
        "threshold_eur_ht": euros(decision.threshold_cents),
        "publicity_threshold_eur_ht": euros(decision.publicity_threshold_cents),
        "eu_threshold_eur_ht": euros(decision.eu_threshold_cents),
        "rule": decision.rule,
        "cumulative": None if cumulated is None else msgspec.to_builtins(CumulativeOut(
            year=cumulated.year, cpv_group=cumulated.cpv_group, awarded_eur_ht=euros(cumulated.awarded_cents),
            open_estimates_eur_ht=euros(cumulated.open_estimates_cents))),
        "warning": decision.warning,
    }


async def simulate(
    session: AsyncSession, *, org_id: str | None, nature: law.Nature, estimate_cents: int, on: date,
    cpv: str | None,
) -> law.Decision:
    """The simulator: the procedure for an estimate on a day; with a CPV and a buyer's key, the
    buyer's cumulative need for that group in that year is taken into account."""
    if cpv is not None and (problem := cpv_problem(cpv)) is not None:
        raise Rejected(problem, pointer="/cpv", code="cpv-invalid")
    cumulated = None
    if cpv is not None and org_id is not None:
        cumulated = await cumulative(session, org_id=org_id, cpv=normalise_cpv(cpv), on=on)
    return decide(nature, estimate_cents, on, cumulated)
