"""The default notifier: one log line per message; neither the body (it may carry links with tokens) nor the full
address is written."""

from __future__ import annotations

import logging

logger = logging.getLogger("broker.notifications")


def mask_address(address: str) -> str:
    """``jeanne.dupont@mairie.fr`` → ``j***@mairie.fr``."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


class LogNotifier:
    def __init__(self, log: logging.Logger | None = None) -> None:
        self._log = log or logger

    async def send(self, to: str, subject: str, body: str) -> None:
        self._log.info(
            "notification to=%s subject=%r body_chars=%d", mask_address(to), subject.replace("\n", " "), len(body)
        )
