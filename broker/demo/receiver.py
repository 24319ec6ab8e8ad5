"""A tiny webhook receiver on 127.0.0.1 standing in for a collectivité's ERP: it checks every
Standard Webhooks signature itself (HMAC-SHA256 over ``id.timestamp.body`` with the ``whsec_``
secret), independently of the broker's signing code, and counts what arrived."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass, field

MAX_BODY = 1024 * 1024


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """True when one of the ``v1,`` signatures in ``webhook-signature`` matches ``secret``."""
    raw = secret.removeprefix("whsec_")
    key = base64.b64decode(raw + "=" * (-len(raw) % 4))
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


@dataclass
class Receiver:
    """Collects deliveries per path; ``secrets`` maps a path to the endpoint's secret once it is known."""

    secrets: dict[str, str] = field(default_factory=dict)
    verified: Counter[str] = field(default_factory=Counter)  # event type -> count
    rejected: int = 0
    ids: set[str] = field(default_factory=set)
    duplicates: int = 0
    _pending: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _connections: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close kept-alive connections, letting their handlers end on their own."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def learn(self, path: str, secret: str) -> None:
        """The endpoint's secret, answered once at registration; deliveries that came before are checked now."""
        self.secrets[path] = secret
        pending, self._pending = self._pending, []
        for p, headers, body in pending:
            self._check(p, headers, body)

    def _check(self, path: str, headers: dict[str, str], body: bytes) -> None:
        secret = self.secrets.get(path)
        if secret is None:
            self._pending.append((path, headers, body))
            return
        if not signature_ok(secret, headers, body):
            self.rejected += 1
            return
        msg_id = headers.get("webhook-id", "")
        if msg_id in self.ids:
            self.duplicates += 1
            return
        self.ids.add(msg_id)
        try:
            self.verified[str(json.loads(body)["type"])] += 1
        except (ValueError, KeyError, TypeError):
            self.rejected += 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split()
                path = parts[1] if len(parts) > 1 else "/"
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length > MAX_BODY:
                    writer.write(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    await writer.drain()
                    return
                body = await reader.readexactly(length) if length else b""
                self._check(path, headers, body)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            return
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
