"""Notifiers: the log one writes no secrets, the fake records, the SMTP one talks to a tiny server on 127.0.0.1."""

from __future__ import annotations

import email
import logging
from collections.abc import AsyncIterator
from email.policy import default as default_policy

import pytest
from support_smtp import TinySmtp

from adapters.notifications.base import SmtpConfig
from adapters.notifications.email import SmtpNotifier, make_notifier
from adapters.notifications.fake import FakeNotifier
from adapters.notifications.log import LogNotifier, mask_address
from broker.errors import Rejected, UpstreamUnavailable


@pytest.fixture
async def smtp_server() -> AsyncIterator[TinySmtp]:
    server = TinySmtp()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _config(port: int, **changes: object) -> SmtpConfig:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "noreply@broker.example.fr",
        "timeout_s": 3,
    }
    fields.update(changes)
    return SmtpConfig(**fields)  # type: ignore[arg-type]


async def test_smtp_notifier_delivers_to_a_local_server(smtp_server: TinySmtp) -> None:
    notifier = SmtpNotifier(_config(smtp_server.port))
    await notifier.send("atelier@example.fr", "Nouvelle invitation", "Bonjour,\nUne demande vous attend.\n")
    assert len(smtp_server.messages) == 1
    sender, recipients, raw = smtp_server.messages[0]
    assert sender == "noreply@broker.example.fr" and recipients == ["atelier@example.fr"]
    message = email.message_from_bytes(raw, policy=default_policy)
    assert message["Subject"] == "Nouvelle invitation"
    assert message["To"] == "atelier@example.fr"
    assert message.get_content().startswith("Bonjour,")


async def test_smtp_refusal_is_upstream_unavailable_without_secrets() -> None:
    server = TinySmtp(refuse_rcpt=True)
    await server.start()
    try:
        notifier = SmtpNotifier(_config(server.port, username="bot", password="s3cr3t-pw"))
        with pytest.raises(UpstreamUnavailable) as caught:
            await notifier.send("atelier@example.fr", "x", "y")
    finally:
        await server.stop()
    assert "s3cr3t-pw" not in str(caught.value) and "atelier@" not in caught.value.detail


async def test_smtp_unreachable_is_upstream_unavailable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UpstreamUnavailable):
        await SmtpNotifier(_config(port)).send("a@example.fr", "x", "y")


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("a@example.fr\r\nBcc: victim@example.fr", "x"),
        ("a@example.fr\n", "x"),
        ("not-an-address", "x"),
        ("a@example.fr", "x\r\nBcc: v@e.fr"),
    ],
)
async def test_header_injection_refused(to: str, subject: str) -> None:
    with pytest.raises(Rejected):
        await SmtpNotifier(_config(1)).send(to, subject, "body")


def test_config_repr_hides_password() -> None:
    assert "hunter2" not in repr(_config(25, password="hunter2"))


def test_smtp_is_off_by_default() -> None:
    assert isinstance(make_notifier(None), LogNotifier)
    assert isinstance(make_notifier(_config(25)), SmtpNotifier)


async def test_log_notifier_never_logs_body_or_full_address(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="broker.notifications"):
        await LogNotifier().send("jeanne.dupont@mairie.fr", "Nouveau devis", "lien: https://x/?token=SECRET123")
    text = caplog.text
    assert "Nouveau devis" in text and "j***@mairie.fr" in text
    assert "SECRET123" not in text and "jeanne.dupont" not in text
    assert mask_address("nobody") == "***"


async def test_fake_notifier_records() -> None:
    fake = FakeNotifier()
    await fake.send("a@example.fr", "s", "b")
    assert [(n.to, n.subject, n.body) for n in fake.sent] == [("a@example.fr", "s", "b")]
