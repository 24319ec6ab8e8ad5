"""A notifier for tests: keeps every message in memory."""

from __future__ import annotations

import msgspec


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    subject: str
    body: str


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append(Notification(to=to, subject=subject, body=body))
