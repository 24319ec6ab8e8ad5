"""The law of public purchasing for buyers (issue 17): the procedure simulator."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from broker.api.context import RequestContext
from broker.api.presenters import cents
from broker.api.problems import problems
from broker.api.security import access
from broker.domain import procurement as law
from broker.domain.access import Role
from broker.domain.fabrication import CumulativeOut, euros
from broker.errors import Rejected
from broker.services import procurement as procurement_service

_MONEY = re.compile(r"^\d{1,9}(\.\d{1,2})?$")


class ProcedureOut(msgspec.Struct, kw_only=True):
    """The procedure for an estimated need on a day: ``threshold_eur_ht`` is the R.2122-8 threshold
    (no publicity nor competition below it), ``rule`` the article and the text of the deciding one."""

    procedure: str
    label: str
    nature: str
    estimated_value_eur_ht: str
    on: date
    threshold_eur_ht: str
    publicity_threshold_eur_ht: str
    eu_threshold_eur_ht: str
    rule: str
    cumulative: CumulativeOut | None = None
    warning: str | None = None


class ProcurementController(Controller):
    path = "/v1/procurement"
    tags = ["procurement"]

    @get(
        "/procedure",
        opt=access(Role.BUYER, Role.COORDINATOR, Role.ADMIN),
        operation_id="simulate_procedure",
        responses=problems(400, 401, 403, 422, 429),
    )
    async def procedure(
        self,
        ctx: NamedDependency[RequestContext],
        nature: Annotated[law.Nature, QueryParameter(name="nature")],
        estimated_value_eur_ht: Annotated[str, QueryParameter(name="estimated_value_eur_ht", max_length=12)],
        on: Annotated[date | None, QueryParameter(name="on")] = None,
        cpv: Annotated[str | None, QueryParameter(name="cpv", max_length=12)] = None,
    ) -> ProcedureOut:
        """Which procedure the code de la commande publique calls for: `sans_publicite` below the
        R.2122-8 threshold, `mapa` above it, `mapa_publicite` from 90 000 € HT, `formalisee` at or
        above the EU threshold (which the broker does not run). `on` defaults to today in Paris; with
        a `cpv`, a buyer's key also sums its awards and open requests of the same CPV group in that
        civil year (`cumulative`, with a `warning` when the sum changes the procedure)."""
        if not _MONEY.match(estimated_value_eur_ht):
            raise Rejected('estimated_value_eur_ht : un montant en euros, ex. "50000" ou "50000.00"',
                           pointer="/estimated_value_eur_ht")
        day = on or law.paris_day(ctx.now)
        estimate = cents(estimated_value_eur_ht)
        buyer = ctx.principal.org_id if ctx.principal.role == Role.BUYER else None
        decision = await procurement_service.simulate(ctx.session, org_id=buyer, nature=nature,
                                                      estimate_cents=estimate, on=day, cpv=cpv)
        cumulated = decision.cumulative
        return ProcedureOut(
            procedure=decision.procedure.value, label=decision.label, nature=nature.value,
            estimated_value_eur_ht=euros(estimate), on=day, threshold_eur_ht=euros(decision.threshold_cents),
            publicity_threshold_eur_ht=euros(decision.publicity_threshold_cents),
            eu_threshold_eur_ht=euros(decision.eu_threshold_cents), rule=decision.rule,
            cumulative=None if cumulated is None else CumulativeOut(
                year=cumulated.year, cpv_group=cumulated.cpv_group, awarded_eur_ht=euros(cumulated.awarded_cents),
                open_estimates_eur_ht=euros(cumulated.open_estimates_cents)),
            warning=decision.warning,
        )


__all__ = ("ProcedureOut", "ProcurementController")
