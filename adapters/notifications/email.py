"""SMTP notifier (off by default: build it only when SMTP settings are given). Uses stdlib ``smtplib`` in a thread."""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from adapters.notifications.base import Notifier, SmtpConfig
from adapters.notifications.log import LogNotifier, mask_address
from broker.errors import Rejected, UpstreamUnavailable

_ADDRESS = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+")


def _check_address(address: str, pointer: str) -> None:
    if not _ADDRESS.fullmatch(address):
        raise Rejected(f"not a plain e-mail address: {mask_address(address)}", pointer=pointer)


class SmtpNotifier:
    def __init__(self, config: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        _check_address(config.sender, "/smtp/sender")
        self._config = config
        self._ssl = ssl_context

    def _message(self, to: str, subject: str, body: str) -> EmailMessage:
        _check_address(to, "/to")
        if "\r" in subject or "\n" in subject:
            raise Rejected("a subject is one line", pointer="/subject")
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._config.sender.rpartition("@")[2])
        message.set_content(body)
        return message

    def _send_blocking(self, message: EmailMessage) -> None:
        c = self._config
        context = self._ssl or ssl.create_default_context()
        smtp: smtplib.SMTP
        if c.use_tls:
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        with smtp:
            if c.starttls and not c.use_tls:
                smtp.starttls(context=context)
            if c.username is not None and c.password is not None:
                smtp.login(c.username, c.password)
            smtp.send_message(message)

    async def send(self, to: str, subject: str, body: str) -> None:
        message = self._message(to, subject, body)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send_blocking, message), self._config.timeout_s + 5)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            # The exception text may echo the server's answer, never our credentials.
            raise UpstreamUnavailable(
                f"SMTP delivery to {mask_address(to)} failed: {type(exc).__name__}", code="smtp-unavailable"
            ) from exc


def make_notifier(smtp: SmtpConfig | None) -> Notifier:
    """SMTP when configured, otherwise the log notifier (the default)."""
    return SmtpNotifier(smtp) if smtp is not None else LogNotifier()
