"""TLS through the pinned transport: the socket goes to the pinned IP, SNI and certificate check use the name.

A self-signed certificate for ``hooks.broker-test.fr`` is made with the ``openssl`` CLI; the server listens on
127.0.0.1. ``resolve`` is replaced by a stub that pins the name to 127.0.0.1 (the real policy would, rightly,
refuse a name resolving to loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.webhooks import transport as transport_module
from adapters.webhooks.ssrf import PinnedTarget
from adapters.webhooks.transport import PinnedTransport

NAME = "hooks.broker-test.fr"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    key, crt = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", f"/CN={NAME}",
         "-addext", f"subjectAltName=DNS:{NAME}"],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    return crt, key


@pytest.fixture
async def tls_server(cert: tuple[Path, Path]) -> AsyncIterator[tuple[int, list[str], list[bytes]]]:
    crt, key = cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, key)
    snis: list[str] = []
    heads: list[bytes] = []
    context.sni_callback = lambda _sock, name, _ctx: snis.append(name or "")  # type: ignore[assignment,func-returns-value]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            heads.append(head)
            length = next(
                (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), 0
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], snis, heads
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def _pin_to_loopback(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    async def fake_resolve(url: str, **_: object) -> PinnedTarget:
        return PinnedTarget(url=url, scheme="https", host=NAME, port=port, ip="127.0.0.1", host_header=f"{NAME}:{port}")

    monkeypatch.setattr(transport_module, "resolve", fake_resolve)


async def test_tls_connects_to_pinned_ip_with_name_for_sni_and_verification(
    tls_server: tuple[int, list[str], list[bytes]], cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, snis, heads = tls_server
    _pin_to_loopback(monkeypatch, port)
    verify = ssl.create_default_context(cafile=str(cert[0]))
    async with httpx.AsyncClient(transport=PinnedTransport(verify=verify), timeout=3) as client:
        response = await client.post(f"https://{NAME}:{port}/hook", content=b"{}")
    assert response.status_code == 200
    assert snis == [NAME]
    assert f"host: {NAME}:{port}".encode() in heads[0].lower()


async def test_tls_fails_when_the_certificate_is_for_another_name(
    tls_server: tuple[int, list[str], list[bytes]], cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _, heads = tls_server

    async def other_name(url: str, **_: object) -> PinnedTarget:
        return PinnedTarget(url=url, scheme="https", host="other.broker-test.fr", port=port, ip="127.0.0.1",
                            host_header="other.broker-test.fr")  # fmt: skip

    monkeypatch.setattr(transport_module, "resolve", other_name)
    verify = ssl.create_default_context(cafile=str(cert[0]))
    async with httpx.AsyncClient(transport=PinnedTransport(verify=verify), timeout=3) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"https://other.broker-test.fr:{port}/hook", content=b"{}")
    assert heads == []
