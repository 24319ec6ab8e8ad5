"""Issue 18 item 6: the integration tests never leave the machine.

Several tests check that a public webhook URL is *accepted* (``https://erp.commune-b.fr/hooks``…). None
of them runs the relay today, but a worker started in-process (``relay_outbox`` + ``deliver_webhooks``
with the real, pinned sender) would resolve and connect to them. Here every target the pinned
transport is about to connect to is checked: loopback goes on (the test receivers), anything else is
recorded in ``egress`` and refused as an unsafe URL, so the attempt fails like any refused URL and
no packet leaves; names are never looked up either (the system resolver is replaced by one that
records and refuses)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from adapters.webhooks import ssrf, transport
from adapters.webhooks.ssrf import PinnedTarget, UnsafeUrl


class Egress:
    """What the tests' webhook traffic tried to reach beyond loopback (names looked up, targets refused)."""

    def __init__(self) -> None:
        self.lookups: list[tuple[str, int]] = []
        self.refused: list[PinnedTarget] = []


@pytest.fixture(autouse=True)
def egress(monkeypatch: pytest.MonkeyPatch) -> Egress:
    seen = Egress()
    real_resolve = transport.resolve

    async def offline(host: str, port: int) -> list[str]:
        seen.lookups.append((host, port))
        raise OSError(f"the tests resolve no name ({host})")

    async def loopback_only(url: str, **kwargs: Any) -> PinnedTarget:
        target = await real_resolve(url, **kwargs)
        if not ipaddress.ip_address(target.ip).is_loopback:
            seen.refused.append(target)
            raise UnsafeUrl(f"the tests connect to loopback only, not {target.ip}")
        return target

    monkeypatch.setattr(ssrf, "system_resolver", offline)
    monkeypatch.setattr(transport, "resolve", loopback_only)
    return seen
