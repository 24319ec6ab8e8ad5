"""An httpx transport that vets every request's URL and connects only to the pinned address (R5.1).

For each request: ``ssrf.resolve`` checks the URL and resolves the name **once**; the request URL is rewritten
to the pinned IP, the ``Host`` header keeps the original name and, for https, the ``sni_hostname`` extension
makes TLS send and verify the original name. httpcore then connects to the IP literal: no second lookup, so
DNS rebinding between check and connect is impossible. Redirects are a client setting (``make_client`` turns
them off); this transport never follows anything by itself.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from ssl import SSLContext

import httpx

from adapters.webhooks.base import DeliveryPolicy
from adapters.webhooks.ssrf import PinnedTarget, Resolver, resolve

USER_AGENT = "fabrication-broker-webhooks/1"
_MAX_POOLS = 64
# Requests in flight per receiver (host, address, port). httpcore looks at every connection and
# every queued request of a pool each time it places one, so hundreds of concurrent requests to one
# receiver cost quadratically; beyond this many they wait here, in an asyncio semaphore, inside the
# caller's timeout.
PER_RECEIVER = 8
POOL_LIMITS = httpx.Limits(max_connections=PER_RECEIVER, max_keepalive_connections=PER_RECEIVER)


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it frees the receiver's slot."""

    def __init__(self, stream: httpx.AsyncByteStream, slot: asyncio.Semaphore) -> None:
        self._stream = stream
        self._slot: asyncio.Semaphore | None = slot

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._slot is not None:
                self._slot.release()
                self._slot = None


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolve-validate-pin, then hand the rewritten request to an inner transport.

    ``inner`` is for tests (an ``httpx.MockTransport`` sees the rewritten request). Without it, one pooled
    ``AsyncHTTPTransport`` per (host, ip, port) is kept, so a kept-alive TLS connection made for one name is
    never reused for another name on the same address."""

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        resolver: Resolver | None = None,
        allowed_ports: frozenset[int] = frozenset({443, 8443}),
        inner: httpx.AsyncBaseTransport | None = None,
        verify: SSLContext | bool = True,
    ) -> None:
        self._allow_loopback = allow_loopback
        self._resolver = resolver
        self._allowed_ports = allowed_ports
        self._inner = inner
        self._verify = verify
        self._pools: OrderedDict[tuple[str, str, int], httpx.AsyncHTTPTransport] = OrderedDict()
        self._slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}
        self.resolved: list[PinnedTarget] = []  # the last few targets, for logs and tests

    async def _pool(self, target: PinnedTarget) -> httpx.AsyncBaseTransport:
        if self._inner is not None:
            return self._inner
        key = (target.host, target.ip, target.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(verify=self._verify, retries=0, trust_env=False, limits=POOL_LIMITS)
            self._pools[key] = pool
            while len(self._pools) > _MAX_POOLS:
                old_key, old = self._pools.popitem(last=False)
                self._slots.pop(old_key, None)
                await old.aclose()
        else:
            self._pools.move_to_end(key)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = await resolve(
            str(request.url),
            allow_loopback=self._allow_loopback,
            resolver=self._resolver,
            allowed_ports=self._allowed_ports,
        )
        self.resolved = [*self.resolved[-15:], target]
        headers = httpx.Headers(request.headers)
        headers["host"] = target.host_header
        extensions = dict(request.extensions)
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        pinned = httpx.Request(
            request.method,
            target.pinned_url,
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        pool = await self._pool(target)
        if self._inner is not None:
            return await pool.handle_async_request(pinned)
        key = (target.host, target.ip, target.port)
        slot = self._slots.setdefault(key, asyncio.Semaphore(PER_RECEIVER))
        await slot.acquire()
        try:
            response = await pool.handle_async_request(pinned)
        except BaseException:
            slot.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(status_code=response.status_code, headers=response.headers,
                              stream=_ReleasingStream(response.stream, slot), extensions=response.extensions)

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.aclose()
        if self._inner is not None:
            await self._inner.aclose()


def make_client(
    policy: DeliveryPolicy | None = None,
    *,
    resolver: Resolver | None = None,
    inner: httpx.AsyncBaseTransport | None = None,
    verify: SSLContext | bool = True,
) -> httpx.AsyncClient:
    """The one egress client for tenant-supplied URLs: pinned transport, no redirects, no env proxies, timeouts."""
    policy = policy or DeliveryPolicy()
    transport = PinnedTransport(
        allow_loopback=policy.allow_loopback,
        resolver=resolver,
        allowed_ports=policy.allowed_ports,
        inner=inner,
        verify=verify,
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(
            connect=policy.connect_timeout_s,
            read=policy.read_timeout_s,
            write=policy.read_timeout_s,
            pool=policy.connect_timeout_s,
        ),
        headers={"user-agent": USER_AGENT},
    )
