"""The Notifier port and the SMTP settings it may be built from."""

from __future__ import annotations

from typing import Protocol

import msgspec


class SmtpConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything explicit: there is no default host. ``password`` is never logged or repr'd by us."""

    host: str
    port: int
    sender: str  # the From address
    username: str | None = None
    password: str | None = msgspec.field(default=None)
    starttls: bool = False
    use_tls: bool = False  # implicit TLS (SMTPS, usually port 465)
    timeout_s: float = 10.0

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"SmtpConfig(host={self.host!r}, port={self.port}, sender={self.sender!r}, username={self.username!r})"


class Notifier(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None:
        """Deliver one plain-text message to one address; raises ``UpstreamUnavailable`` when it cannot."""
        ...
