"""Build the Chorus Pro adapter the settings ask for: the fake by default, PISTE when configured."""

from __future__ import annotations

from adapters.chorus.base import ChorusPro
from adapters.chorus.fake import FakeChorusPro
from adapters.chorus.piste import PisteChorusPro
from broker.settings import ChorusSettings


def make_chorus(settings: ChorusSettings) -> ChorusPro:
    """The adapter for ``settings.mode``.

    Raises:
        ValueError: ``mode="piste"`` without its credentials; the message names the missing ``BROKER_CHORUS_*``
            variables.
    """
    if settings.mode == "piste":
        return PisteChorusPro(settings)
    closed = frozenset(code.strip() for code in settings.fake_closed_services.split(",") if code.strip())
    return FakeChorusPro(settings.fake_step_s, closed)
