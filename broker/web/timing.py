"""``Server-Timing: app;dur=…`` on every page: the time from the request's arrival to the start of
the answer, so that a browser (and the browser tests) can see how long the server took."""

from __future__ import annotations

import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send


def server_timing(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                timing = (b"server-timing", f"app;dur={elapsed:.1f}".encode())
                message["headers"] = [*message.get("headers", []), timing]
            await send(message)

        await app(scope, receive, timed_send)

    return middleware
