"""Truly concurrent clients for race tests (imported by name: ``tests/browser`` has a conftest of
its own, so ``from conftest import …`` would be ambiguous when the whole suite runs)."""

from __future__ import annotations

from typing import Any

from broker.app import create_app
from broker.settings import Settings


class ConcurrentClients:
    """``n`` apps (each with its own engines and pools) behind httpx clients that run in the test's
    own event loop, so ``asyncio.gather`` really overlaps requests (AsyncTestClient serialises them)."""

    def __init__(self, settings: Settings, n: int = 2) -> None:
        self.apps = [create_app(settings) for _ in range(n)]
        self.clients: list[Any] = []

    async def __aenter__(self) -> list[Any]:
        import httpx

        self.clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://broker")
                        for app in self.apps]
        return self.clients

    async def __aexit__(self, *_exc: object) -> None:
        for client in self.clients:
            await client.aclose()
        for app in self.apps:
            await app.state.runtime.close()
