"""The Chorus Pro port: deposit an invoice, read its status. Both adapters (fake, PISTE) behave alike."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal, Protocol

import msgspec


class ChorusStatus(StrEnum):
    """The statuses of a deposited invoice the broker follows (Chorus Pro's « statut courant »)."""

    DEPOSEE = "deposee"
    MISE_A_DISPOSITION = "mise_a_disposition"
    SERVICE_FAIT = "service_fait"
    MANDATEE = "mandatee"
    MISE_EN_PAIEMENT = "mise_en_paiement"
    SUSPENDUE = "suspendue"
    REJETEE = "rejetee"


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """What is deposited: the document's bytes in one syntax, and the routing Chorus Pro needs."""

    invoice_id: str  # the broker's id (the fake derives its answers from it; the real adapter ignores it)
    number: str
    syntax: Literal["factur-x", "ubl"]  # a Factur-X PDF (IN_DP_E2_CII_FACTURX), or a UBL XML (IN_DP_E1_UBL_INVOICE)
    content: bytes
    file_name: str
    seller_siret: str
    buyer_siret: str
    service_code: str | None = None
    engagement_number: str | None = None
    total_cents: int


class Deposit(msgspec.Struct, frozen=True, kw_only=True):
    chorus_id: str  # Chorus Pro's identifier of the deposited flow / invoice
    deposited_on: date


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    status: ChorusStatus
    on: date  # when Chorus Pro says it took this status
    reason: str | None = None  # why it is suspended or rejected, in Chorus Pro's words


class ChorusRefused(Exception):
    """Chorus Pro refused the deposit itself (unknown recipient, inactive service…): final for this
    invoice, which becomes ``rejetee`` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChorusUnavailable(Exception):
    """Chorus Pro could not be reached or answered an error worth retrying: the job tries again later."""


class ChorusPro(Protocol):
    async def deposit(self, submission: Submission, *, today: date) -> Deposit:
        """Deposit the invoice. Raises ``ChorusRefused`` (final) or ``ChorusUnavailable`` (retry)."""
        ...

    async def status(self, chorus_id: str, *, today: date) -> StatusReport:
        """The invoice's current status. Raises ``ChorusUnavailable`` (retry)."""
        ...

    async def aclose(self) -> None: ...
