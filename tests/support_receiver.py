"""A webhook receiver on 127.0.0.1 for the relay, fault and bench tests: records every delivery (raw
bytes and headers), answers from a script (a status, or hang until the sender gives up), and counts
distinct ``webhook-id``s, the receiver's deduplication key."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class HookReceiver:
    #: replies consumed one per request; when empty, ``default`` answers. An int is a status; the
    #: string "hang" never answers (the sender times out).
    script: list[int | str] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0  # seconds before each answer (a slow receiver)
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((body, dict(request.headers)))
        self.arrived.set()
        reply = self.script.pop(0) if self.script else self.default
        if self.delay:
            await asyncio.sleep(self.delay)
        if reply == "hang":
            await asyncio.sleep(3600)
        assert isinstance(reply, int)
        return web.Response(status=reply, text="ok" if reply < 300 else "boom")

    async def start(self) -> HookReceiver:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def ids(self) -> collections.Counter[str]:
        """How many times each webhook-id arrived."""
        return collections.Counter(h["webhook-id"] for _, h in self.received)
