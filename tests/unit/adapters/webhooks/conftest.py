"""Fixtures: a loopback HTTP receiver and a loopback sentinel listener (see webhook_receiver.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from webhook_receiver import Receiver, Sentinel


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def sentinel() -> AsyncIterator[Sentinel]:
    s = Sentinel()
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
