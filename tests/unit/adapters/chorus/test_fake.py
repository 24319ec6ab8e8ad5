"""The fake Chorus Pro: stateless (a second instance answers for the first), clock-driven, and refusing as Chorus Pro."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import msgspec
import pytest

from adapters.chorus.base import ChorusRefused, ChorusStatus, ChorusUnavailable, StatusReport, Submission
from adapters.chorus.factory import make_chorus
from adapters.chorus.fake import CLOSED_SERVICE, EMPTY_FILE, UNKNOWN_RECIPIENT, FakeChorusPro
from broker.settings import ChorusSettings

TODAY = date(2026, 12, 3)
# 2026-12-03 23:30 UTC (UTC+1 in winter) is already 2026-12-04 in Paris: the reports' days follow Paris's calendar.
DEPOSIT_AT = datetime(2026, 12, 3, 23, 30, tzinfo=UTC).timestamp()
STEP = 60.0
SUBMISSION = Submission(
    invoice_id="0193a0c4-7d1e-7c3a-9f2e-2b8f5c1d9e01",
    number="F-000042",
    syntax="factur-x",
    content=b"%PDF-1.7 Factur-X",
    file_name="F-000042.pdf",
    seller_siret="55208131766522",
    buyer_siret="21750001600019",  # Ville de Paris
    service_code="SERVICE_ACHATS",
    total_cents=125_000,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fake(clock: Clock, closed: frozenset[str] = frozenset()) -> FakeChorusPro:
    return FakeChorusPro(STEP, closed, clock=clock)


async def test_an_accepted_invoice_walks_the_path_one_status_per_step() -> None:
    clock = Clock(DEPOSIT_AT)
    deposit = await fake(clock).deposit(SUBMISSION, today=TODAY)
    assert deposit.deposited_on == TODAY
    assert re.fullmatch(r"FAKE-\d+-A-[0-9a-f]{8}", deposit.chorus_id)

    seen: list[StatusReport] = []
    for step in range(7):
        clock.now = DEPOSIT_AT + step * STEP + 1
        poller = fake(clock)  # another process, just started: nothing shared but the id
        seen.append(await poller.status(deposit.chorus_id, today=TODAY))
    assert [report.status for report in seen] == [
        ChorusStatus.DEPOSEE,
        ChorusStatus.MISE_A_DISPOSITION,
        ChorusStatus.SERVICE_FAIT,
        ChorusStatus.MANDATEE,
        ChorusStatus.MISE_EN_PAIEMENT,
        ChorusStatus.MISE_EN_PAIEMENT,
        ChorusStatus.MISE_EN_PAIEMENT,
    ]
    assert all(report.reason is None for report in seen)
    assert {report.on for report in seen} == {date(2026, 12, 4)}


async def test_each_report_is_dated_the_day_its_status_was_reached() -> None:
    clock = Clock(DEPOSIT_AT)
    one_day = FakeChorusPro(86_400.0, frozenset(), clock=clock)
    deposit = await one_day.deposit(SUBMISSION, today=TODAY)
    clock.now = DEPOSIT_AT + 10 * 86_400
    report = await one_day.status(deposit.chorus_id, today=date(2026, 12, 14))
    # Paid on the 4th step, four days after the deposit (Paris day 2026-12-04).
    assert report == StatusReport(status=ChorusStatus.MISE_EN_PAIEMENT, on=date(2026, 12, 8))


async def test_a_closed_service_is_accepted_then_rejected_at_the_first_step() -> None:
    clock = Clock(DEPOSIT_AT)
    chorus = fake(clock, frozenset({"SERVICE_ACHATS"}))
    deposit = await chorus.deposit(SUBMISSION, today=TODAY)
    assert "-R-" in deposit.chorus_id
    clock.now = DEPOSIT_AT + STEP - 1
    assert (await chorus.status(deposit.chorus_id, today=TODAY)).status is ChorusStatus.DEPOSEE
    for later in (STEP, 10 * STEP):
        clock.now = DEPOSIT_AT + later
        report = await chorus.status(deposit.chorus_id, today=TODAY)
        assert report == StatusReport(status=ChorusStatus.REJETEE, on=date(2026, 12, 4), reason=CLOSED_SERVICE)


async def test_an_invoice_without_service_code_is_not_caught_by_closed_services() -> None:
    chorus = fake(Clock(DEPOSIT_AT), frozenset({"SERVICE_ACHATS"}))
    deposit = await chorus.deposit(msgspec.structs.replace(SUBMISSION, service_code=None), today=TODAY)
    assert "-A-" in deposit.chorus_id


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"content": b""}, EMPTY_FILE),
        ({"buyer_siret": "21750001600018"}, UNKNOWN_RECIPIENT),
        ({"buyer_siret": "2175000160001"}, UNKNOWN_RECIPIENT),
    ],
)
async def test_deposit_refuses_an_empty_file_and_an_invalid_buyer_siret(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ChorusRefused) as refused:
        await fake(Clock(DEPOSIT_AT)).deposit(msgspec.structs.replace(SUBMISSION, **change), today=TODAY)
    assert refused.value.reason == reason


async def test_a_clock_behind_the_deposit_still_answers_deposee() -> None:
    clock = Clock(DEPOSIT_AT)
    deposit = await fake(clock).deposit(SUBMISSION, today=TODAY)
    clock.now = DEPOSIT_AT - 5  # the worker's clock a little behind the API's
    assert (await fake(clock).status(deposit.chorus_id, today=TODAY)).status is ChorusStatus.DEPOSEE


async def test_step_zero_jumps_to_the_last_status() -> None:
    clock = Clock(DEPOSIT_AT)
    chorus = FakeChorusPro(0.0, frozenset({"FERME"}), clock=clock)
    paid = await chorus.deposit(SUBMISSION, today=TODAY)
    rejected = await chorus.deposit(msgspec.structs.replace(SUBMISSION, service_code="FERME"), today=TODAY)
    assert (await chorus.status(paid.chorus_id, today=TODAY)).status is ChorusStatus.MISE_EN_PAIEMENT
    assert (await chorus.status(rejected.chorus_id, today=TODAY)).status is ChorusStatus.REJETEE
    with pytest.raises(ValueError, match="negative"):
        FakeChorusPro(-1.0, frozenset())


@pytest.mark.parametrize("chorus_id", ["CPP0021100000000000000023", "FAKE-1-X-0123abcd", "FAKE-1-A-0123", ""])
async def test_an_id_the_fake_did_not_make_is_unavailable(chorus_id: str) -> None:
    with pytest.raises(ChorusUnavailable, match="fake"):
        await fake(Clock(DEPOSIT_AT)).status(chorus_id, today=TODAY)


async def test_the_factory_builds_the_fake_by_default_with_the_closed_services() -> None:
    settings = ChorusSettings(fake_step_s=STEP, fake_closed_services=" SERVICE_ACHATS , ,FERME")
    chorus = make_chorus(settings)
    assert isinstance(chorus, FakeChorusPro)
    assert repr(chorus) == "FakeChorusPro(step_s=60.0, closed_services=['FERME', 'SERVICE_ACHATS'])"
    deposit = await chorus.deposit(SUBMISSION, today=TODAY)
    assert "-R-" in deposit.chorus_id
    await chorus.aclose()
