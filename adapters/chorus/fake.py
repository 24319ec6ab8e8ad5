"""A stateless stand-in for Chorus Pro: the deposit's answer carries everything ``status`` needs later.

The API (which deposits) and the worker (which polls) are separate processes and restart at will, so the
fake keeps nothing in memory: ``deposit`` returns ``FAKE-<deposit epoch seconds>-<A|R>-<8 hex digits>``
(``A`` walks the happy path, ``R`` is rejected at the first step; the hex digits are the start of the
SHA-256 of the broker's invoice id, to tell ids apart in logs) and ``status`` is a pure function of that
id and the clock:

- accepted: ``deposee`` → ``mise_a_disposition`` → ``service_fait`` → ``mandatee`` → ``mise_en_paiement``,
  one status every ``step_s`` seconds after the deposit (``step_s == 0``: straight to the last one);
- addressed to a service of ``closed_services``: ``deposee``, then ``rejetee`` one step later, as Chorus Pro
  rejects an invoice to an unknown or inactive service after having accepted its deposit.

Each report's ``on`` is the Paris calendar day on which the status was reached. ``deposit`` refuses, as
Chorus Pro refuses the flow itself, an empty file and a buyer SIRET failing its checksum.

``status`` of an id this fake did not make raises ``ChorusUnavailable`` rather than a final error: it only
happens when ``BROKER_CHORUS_MODE`` changed between the deposit and the poll (a PISTE flow number polled by
the fake), and switching the mode back lets the retried job succeed.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from adapters.chorus.base import ChorusRefused, ChorusStatus, ChorusUnavailable, Deposit, StatusReport, Submission
from broker.domain.identifiers import siret_problem
from broker.domain.procurement import paris_day

#: Chorus Pro's words for the refusals and the rejection the fake plays.
UNKNOWN_RECIPIENT = "Destinataire inconnu"
EMPTY_FILE = "Le fichier déposé est vide"
CLOSED_SERVICE = "Code service inconnu ou inactif dans la structure destinataire"

#: The statuses an accepted invoice walks through, one per step.
PATH: tuple[ChorusStatus, ...] = (
    ChorusStatus.DEPOSEE,
    ChorusStatus.MISE_A_DISPOSITION,
    ChorusStatus.SERVICE_FAIT,
    ChorusStatus.MANDATEE,
    ChorusStatus.MISE_EN_PAIEMENT,
)

_ACCEPTED, _REJECTED = "A", "R"
_ID = re.compile(r"^FAKE-(?P<epoch>\d{1,12})-(?P<fate>[AR])-[0-9a-f]{8}$")


class FakeChorusPro:
    """Chorus Pro as ``broker up``, the demo and the tests see it: no network, no state."""

    def __init__(
        self,
        step_s: float,
        closed_services: frozenset[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if step_s < 0:
            raise ValueError("step_s is a duration in seconds: it cannot be negative")
        self._step_s = step_s
        self._closed_services = closed_services
        self._clock = clock

    def __repr__(self) -> str:
        return f"FakeChorusPro(step_s={self._step_s!r}, closed_services={sorted(self._closed_services)!r})"

    async def deposit(self, submission: Submission, *, today: date) -> Deposit:
        """Accept the deposit (``deposited_on`` is ``today``) or refuse it as Chorus Pro refuses a flow."""
        if not submission.content:
            raise ChorusRefused(EMPTY_FILE)
        if siret_problem(submission.buyer_siret) is not None:
            raise ChorusRefused(UNKNOWN_RECIPIENT)
        fate = _REJECTED if submission.service_code in self._closed_services else _ACCEPTED
        digest = hashlib.sha256(submission.invoice_id.encode()).hexdigest()[:8]
        return Deposit(chorus_id=f"FAKE-{int(self._clock())}-{fate}-{digest}", deposited_on=today)

    async def status(self, chorus_id: str, *, today: date) -> StatusReport:
        """The status ``chorus_id`` has reached by now (``today`` is not needed: the id and the clock say it all)."""
        match = _ID.match(chorus_id)
        if match is None:
            raise ChorusUnavailable(f"{chorus_id!r} was not made by the fake Chorus Pro (FAKE-…): mode changed?")
        deposited_at = int(match["epoch"])
        elapsed = max(self._clock() - deposited_at, 0.0)
        steps = len(PATH) if self._step_s == 0 else int(elapsed // self._step_s)
        if match["fate"] == _REJECTED:
            if steps == 0:
                return StatusReport(status=ChorusStatus.DEPOSEE, on=_day(deposited_at))
            rejected_on = _day(deposited_at + self._step_s)
            return StatusReport(status=ChorusStatus.REJETEE, on=rejected_on, reason=CLOSED_SERVICE)
        reached = min(steps, len(PATH) - 1)
        return StatusReport(status=PATH[reached], on=_day(deposited_at + reached * self._step_s))

    async def aclose(self) -> None:
        """Nothing to release."""


def _day(epoch_s: float) -> date:
    return paris_day(datetime.fromtimestamp(epoch_s, tz=UTC))
