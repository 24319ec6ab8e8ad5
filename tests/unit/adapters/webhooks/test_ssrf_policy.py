"""SSRF guard (RELIABILITY.md §5, T5.a–c, G12): hostile URLs are refused before any connection.

Nothing here resolves a real name (a fake resolver answers) or connects anywhere but loopback: the inner
transport of the delivery tests refuses, and records, any destination that is not 127.0.0.1/::1."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import pytest

from adapters.webhooks.base import DeliveryPolicy, Outcome
from adapters.webhooks.delivery import deliver
from adapters.webhooks.signing import generate_secret
from adapters.webhooks.ssrf import UnsafeUrl, ip_problem, parse_url, resolve
from adapters.webhooks.transport import PinnedTransport, make_client

PUBLIC_V4 = "93.184.216.34"

FAKE_DNS: dict[str, list[str]] = {
    "hooks.example.com": [PUBLIC_V4],
    "v6.example.com": ["2606:4700:4700::1111"],
    "localtest.me": ["127.0.0.1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "private.attacker.com": ["10.0.0.5"],
    "mixed.attacker.com": [PUBLIC_V4, "127.0.0.1"],
    "meta.attacker.com": ["169.254.169.254"],
    "v6loop.attacker.com": ["::1"],
    "mapped.attacker.com": ["::ffff:127.0.0.1"],
    "nat64.attacker.com": ["64:ff9b::a00:1"],
    "cgnat.attacker.com": ["100.64.0.1"],
    "scoped.attacker.com": ["fe80::1%eth0"],
    "zero.attacker.com": ["0.0.0.0"],
    "kubernetes.default.svc": ["10.96.0.1"],
    "ula.attacker.com": ["fd00:ec2::254"],
    "sixtofour.attacker.com": ["2002:7f00:1::1"],
    "empty.attacker.com": [],
}


class FakeResolver:
    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = FAKE_DNS if table is None else table
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError(f"NXDOMAIN {host}")
        return self.table[host]


# {p} is the sentinel's port: where a bypass would land.
HOSTILE = [
    "http://127.0.0.1:{p}/",
    "https://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "https://localhost:{p}/",
    "https://LOCALHOST:{p}/",
    "https://localhost.:{p}/",
    "https://foo.localhost:{p}/",
    "http://127.1:{p}/",
    "https://127.1:{p}/",
    "http://2130706433:{p}/",
    "https://2130706433:{p}/",
    "http://0x7f000001:{p}/",
    "https://0x7f.1:{p}/",
    "https://0177.0.0.1:{p}/",
    "https://017700000001:{p}/",
    "https://127.000.000.001:{p}/",
    "https://%31%32%37.0.0.1:{p}/",
    "http://[::1]:{p}/",
    "https://[::1]:{p}/",
    "https://[0:0:0:0:0:0:0:1]:{p}/",
    "https://[::ffff:127.0.0.1]:{p}/",
    "https://[::ffff:7f00:1]:{p}/",
    "https://[::127.0.0.1]:{p}/",
    "https://[64:ff9b::7f00:1]:{p}/",
    "https://[64:ff9b:1::7f00:1]:{p}/",
    "https://[2002:7f00:1::1]:{p}/",
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/",
    "https://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/latest/meta-data/",
    "https://[::ffff:169.254.169.254]/latest/meta-data/",
    "https://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://100.100.100.200/latest/meta-data/",
    "https://100.64.0.1/",
    "https://0.0.0.0:{p}/",
    "https://[::]:{p}/",
    "https://10.0.0.1/",
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "https://198.18.0.1/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
    "https://[fe80::1]:{p}/",
    "https://[fc00::1]/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata/computeMetadata/v1/",
    "https://intranet/",
    "http://user@127.0.0.1:{p}/",
    "https://example.com@127.0.0.1:{p}/",
    "https://user:pass@hooks.example.com/",
    "https://127.0.0.1\\@hooks.example.com/",
    "https://hooks.example.com\t@127.0.0.1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{p}/_SET%20x",
    "ftp://127.0.0.1:{p}/",
    "javascript:alert(1)",
    "http://hooks.example.com/",
    "https://hooks.example.com:6379/",
    "https://hooks.example.com:22/",
    "https://localtest.me:{p}/",
    "https://127.0.0.1.nip.io:{p}/",
    "https://private.attacker.com/",
    "https://mixed.attacker.com/",
    "https://meta.attacker.com/",
    "https://v6loop.attacker.com:{p}/",
    "https://mapped.attacker.com:{p}/",
    "https://nat64.attacker.com/",
    "https://cgnat.attacker.com/",
    "https://scoped.attacker.com/",
    "https://zero.attacker.com:{p}/",
    "https://kubernetes.default.svc/",
    "https://ula.attacker.com/",
    "https://sixtofour.attacker.com:{p}/",
    "https://empty.attacker.com/",
    "https://nxdomain.attacker.com/",
]
assert len(HOSTILE) >= 40


def _ports(p: int) -> frozenset[int]:
    # Let the sentinel's port through the port allow-list, so only the address checks stand in the way.
    return frozenset({443, 8443, p})


@pytest.mark.parametrize("template", HOSTILE)
async def test_hostile_url_refused(template: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(UnsafeUrl):
        await resolve(template.format(p=4444), resolver=resolver, allowed_ports=_ports(4444))


@pytest.mark.parametrize("template", [u for u in HOSTILE if "://127.0.0.1:" not in u and "://[::1]:" not in u])
async def test_hostile_url_refused_even_with_loopback_allowed(template: str) -> None:
    with pytest.raises(UnsafeUrl):
        await resolve(template.format(p=4444), allow_loopback=True, resolver=FakeResolver(), allowed_ports=_ports(4444))


@pytest.mark.parametrize(
    ("url", "ip"),
    [
        ("https://hooks.example.com/webhooks", PUBLIC_V4),
        ("https://hooks.example.com:8443/x?y=1", PUBLIC_V4),
        ("https://v6.example.com/", "2606:4700:4700::1111"),
        ("https://1.1.1.1/", "1.1.1.1"),
        ("https://[2606:4700:4700::1111]/", "2606:4700:4700::1111"),
        ("https://[64:ff9b::101:101]/", "64:ff9b::101:101"),  # NAT64 of a public address
    ],
)
async def test_public_urls_pass_and_are_pinned(url: str, ip: str) -> None:
    target = await resolve(url, resolver=FakeResolver())
    assert target.ip == ip


async def test_loopback_flag_allows_exactly_two_literals() -> None:
    for url in ("http://127.0.0.1:8000/h", "https://127.0.0.1:9/h", "http://[::1]:8000/h"):
        target = await resolve(url, allow_loopback=True, resolver=FakeResolver({}))
        assert target.ip in ("127.0.0.1", "::1")
    for url in ("http://127.0.0.2:8000/", "http://localhost:8000/", "http://[::ffff:127.0.0.1]:8000/"):
        with pytest.raises(UnsafeUrl):
            await resolve(url, allow_loopback=True, resolver=FakeResolver({}))


def test_registration_check_needs_no_resolver() -> None:
    parse_url("https://hooks.example.com/x")
    with pytest.raises(UnsafeUrl):
        parse_url("https://10.0.0.1/x")
    assert ip_problem(__import__("ipaddress").ip_address("8.8.8.8")) is None


class LoopbackOnly(httpx.AsyncBaseTransport):
    """Real connections, but only to loopback; any other destination is recorded and refused (never dialled)."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport(retries=0)
        self.refused: list[str] = []
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host not in ("127.0.0.1", "::1"):
            self.refused.append(str(request.url))
            raise httpx.ConnectError("test guard: non-loopback destination")
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_sentinel_sees_zero_connections_for_all_hostile_urls(sentinel) -> None:  # type: ignore[no-untyped-def]
    guard = LoopbackOnly()
    policy = DeliveryPolicy(allowed_ports=_ports(sentinel.port), connect_timeout_s=1, read_timeout_s=1)
    resolver = FakeResolver()
    secret = generate_secret()
    async with make_client(policy, resolver=resolver, inner=guard) as client:
        for template in HOSTILE:
            attempt = await deliver(
                client,
                template.format(p=sentinel.port),
                [secret],
                "msg_ssrf",
                b"{}",
                now=datetime.now(UTC),
                policy=policy,
                rng=random.Random(1),
            )
            assert attempt.status_code is None
            assert attempt.error is not None
            assert attempt.error.startswith("url_refused"), (template, attempt.error)
            assert attempt.outcome is Outcome.RETRY
    await asyncio.sleep(0.05)
    assert sentinel.accepts == 0
    assert guard.requests == [] and guard.refused == []


async def test_dns_rebinding_resolves_once_and_pins(sentinel) -> None:  # type: ignore[no-untyped-def]
    """T5.b: first answer public, later answers loopback. One lookup per attempt; the request goes to the pinned
    public address with the original Host and SNI; the next attempt sees the private answer and is refused."""
    answers = [[PUBLIC_V4], ["127.0.0.1"], ["127.0.0.1"]]
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return answers[min(len(calls) - 1, len(answers) - 1)]

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    policy = DeliveryPolicy(allowed_ports=_ports(sentinel.port))
    url = f"https://rebind.attacker.com:{sentinel.port}/hook"
    async with make_client(policy, resolver=rebinding, inner=httpx.MockTransport(handler)) as client:
        first = await deliver(client, url, [generate_secret()], "msg_rb", b"{}", now=datetime.now(UTC), policy=policy)
        assert calls == ["rebind.attacker.com"]
        assert first.outcome is Outcome.DELIVERED
        assert len(seen) == 1
        assert seen[0].url.host == PUBLIC_V4
        assert seen[0].headers["host"] == f"rebind.attacker.com:{sentinel.port}"
        assert seen[0].extensions["sni_hostname"] == "rebind.attacker.com"
        second = await deliver(
            client, url, [generate_secret()], "msg_rb", b"{}", now=datetime.now(UTC), policy=policy, attempt=2
        )
        assert calls == ["rebind.attacker.com"] * 2
        assert second.error is not None and second.error.startswith("url_refused")
        assert len(seen) == 1
    assert sentinel.accepts == 0


async def test_pinned_transport_rewrites_to_ip_keeps_host() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    transport = PinnedTransport(resolver=FakeResolver(), inner=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.post("https://hooks.example.com/a?b=1", content=b"x")
        await client.post("https://v6.example.com:8443/", content=b"x")
    assert str(seen[0].url) == f"https://{PUBLIC_V4}/a?b=1"
    assert seen[0].headers["host"] == "hooks.example.com"
    assert seen[1].url.host == "2606:4700:4700::1111" and seen[1].url.port == 8443
    assert seen[1].headers["host"] == "v6.example.com:8443"
    assert seen[1].extensions["sni_hostname"] == "v6.example.com"


async def test_redirect_to_loopback_is_not_followed(receiver, sentinel) -> None:  # type: ignore[no-untyped-def]
    """T5.c: a (loopback, test-flag) receiver answers 302 to the sentinel: not followed, counted as a failure."""
    from webhook_receiver import Reply

    receiver.script = [Reply(status=302, headers={"location": f"http://127.0.0.1:{sentinel.port}/"}, body=b"")]
    policy = DeliveryPolicy(allow_loopback=True, connect_timeout_s=2, read_timeout_s=2)
    async with make_client(policy) as client:
        attempt = await deliver(
            client, receiver.url, [generate_secret()], "msg_redir", b"{}", now=datetime.now(UTC), policy=policy
        )
    assert attempt.status_code == 302
    assert attempt.error == "redirect_not_followed"
    assert attempt.outcome is Outcome.RETRY
    assert len(receiver.received) == 1
    await asyncio.sleep(0.05)
    assert sentinel.accepts == 0
