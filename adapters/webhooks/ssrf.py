"""SSRF guard for tenant-supplied webhook URLs (WH-9, RELIABILITY.md §5, R5.1/R5.2).

Policy, in order:

1. Parse with httpx's own URL parser (the one the request will use), refuse control characters, backslashes,
   userinfo, fragments-with-tricks, and any scheme but ``https``.
2. The host is either an IP literal in canonical form or a DNS name of at least two labels whose last label is
   alphabetic; every numeric shortcut (``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``) is refused before any
   lookup, as are internal names (``localhost``, ``*.internal``, ``*.local``, ``metadata``…).
3. The name is resolved **once** with an injectable resolver; every address returned must be public, after
   unwrapping IPv4-mapped / IPv4-compatible / NAT64 (64:ff9b::/96) forms; 6to4, Teredo and local-use NAT64
   prefixes are refused whole. The first address is returned: the caller connects to it and nothing else.

``allow_loopback=True`` (BROKER_WEBHOOKS_ALLOW_LOOPBACK) additionally lets through exactly ``http(s)://127.0.0.1``
and ``http(s)://[::1]`` (any port), nothing else on loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence

import httpx
import msgspec

from broker.errors import Rejected

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``await resolver(host, port)`` → the IP address strings the name resolves to."""

DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_URL_LENGTH = 2048
LOOPBACK_LITERALS = frozenset({ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")})

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_CANONICAL_V4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_BLOCKED_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "kubernetes",
        "kubernetes.default",
    }
)
_BLOCKED_SUFFIXES = (
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".intranet",
    ".lan",
    ".home",
    ".corp",
    ".home.arpa",
    ".arpa",
    ".test",
    ".invalid",
    ".example",
    ".onion",
)

# Ranges refused outright (beyond what ``is_global`` says), whatever they embed.
_BLOCKED_NETS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "100::/64",
        "2001::/32",
        "2001:db8::/32",
        "2002::/16",
        "64:ff9b:1::/48",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPAT = ipaddress.ip_network("::/96")


class UnsafeUrl(Rejected):
    """The URL may not be called: the reason is in ``detail``; ``pointer`` is set by callers that know the field."""

    code = "webhook-url-unsafe"
    title = "Webhook URL refused"


class PinnedTarget(msgspec.Struct, frozen=True, kw_only=True):
    """Where to connect: ``ip`` (pinned) and ``port``; ``host`` is what goes in the Host header and SNI."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str
    host_header: str

    @property
    def pinned_url(self) -> httpx.URL:
        return httpx.URL(self.url).copy_with(host=self.ip, port=self.port)


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried by an IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96) address, else None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def ip_problem(ip: IPAddress) -> str | None:
    """Why connecting to ``ip`` is refused (loopback, private, metadata…), or None when it is a public unicast.

    IPv4-mapped and NAT64 addresses are judged by the IPv4 address they carry; IPv4-compatible (::/96),
    6to4 (2002::/16), Teredo (2001::/32) and local-use NAT64 (64:ff9b:1::/48) are refused whole."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return "scoped IPv6 addresses are refused"
    candidate: IPAddress = _embedded_v4(ip) or ip
    if candidate is ip and isinstance(ip, ipaddress.IPv6Address) and ip in _V4_COMPAT:
        return f"{ip} is an IPv4-compatible or unspecified address"
    for net in _BLOCKED_NETS:
        if candidate.version == net.version and candidate in net:
            return f"{ip} is in the non-public range {net}"
    if not candidate.is_global or candidate.is_multicast or candidate.is_reserved:
        return f"{ip} is not a public unicast address"
    return None


def _parse_literal(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal in canonical form; None when it is a name.

    Raises for the numeric shortcuts that resolvers accept but ``ipaddress`` does not (127.1, 2130706433, 0x7f.1)."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UnsafeUrl(f"malformed IPv6 host {host!r}") from exc
    if _CANONICAL_V4.fullmatch(host):
        return ipaddress.IPv4Address(host)
    last = host.rsplit(".", 1)[-1]
    if not last or last[0].isdigit() or host.startswith("0x") or ".0x" in host:
        raise UnsafeUrl(f"numeric or non-canonical host {host!r} is refused")
    return None


def _name_problem(host: str) -> str | None:
    labels = host.split(".")
    if len(labels) < 2:
        return f"single-label host {host!r} is refused"
    if not all(_LABEL.fullmatch(label) for label in labels) or not _TLD.fullmatch(labels[-1]):
        return f"host {host!r} is not a public DNS name"
    if host in _BLOCKED_NAMES or host.endswith(_BLOCKED_SUFFIXES):
        return f"internal host name {host!r} is refused"
    return None


def _decoded_host(parsed: httpx.URL) -> str:
    """``host`` decodes the IDNA A-labels (``xn--…``): an invalid one raises (``idna.IDNAError``)."""
    try:
        return parsed.host
    except (UnicodeError, ValueError) as exc:
        raise UnsafeUrl(f"le nom d’hôte n’est pas un nom IDNA valide\u202f: {exc}") from exc


def parse_url(
    url: str, *, allow_loopback: bool = False, allowed_ports: frozenset[int] = frozenset({443, 8443})
) -> tuple[httpx.URL, IPAddress | None]:
    """Syntax checks without any lookup (use at registration, R5.2): the parsed URL and its IP literal, if any."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl("a webhook URL is a string of at most 2048 characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise UnsafeUrl("control characters, spaces and backslashes are refused in webhook URLs")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UnsafeUrl(f"unparseable URL: {exc}") from exc
    if parsed.port is not None and not 0 < parsed.port <= 65535:  # httpx parses it; connect() would raise
        raise UnsafeUrl(f"le port {parsed.port} n’existe pas\u202f: un port va de 1 à 65\u202f535")
    if parsed.scheme not in ("https", "http"):
        raise UnsafeUrl(f"scheme {parsed.scheme!r} is refused: webhook URLs are https://")
    if parsed.userinfo:
        raise UnsafeUrl("credentials (user@) in a webhook URL are refused")
    host = _decoded_host(parsed)
    if not host or "%" in host or host.endswith("."):
        raise UnsafeUrl(f"host {host!r} is refused")
    ascii_host = parsed.raw_host.decode("ascii").lower().strip("[]")
    literal = _parse_literal(ascii_host)
    if literal is not None and allow_loopback and literal in LOOPBACK_LITERALS:
        if str(literal) != ascii_host:
            raise UnsafeUrl("only 127.0.0.1 and [::1] are allowed on loopback")
        return parsed, literal
    if parsed.scheme != "https":
        raise UnsafeUrl(
            "only https:// webhook URLs are allowed"
            + ("" if allow_loopback else " (http://127.0.0.1 needs BROKER_WEBHOOKS_ALLOW_LOOPBACK)")
        )
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS["https"]
    if port not in allowed_ports:
        raise UnsafeUrl(f"port {port} is refused (allowed: {sorted(allowed_ports)})")
    if literal is not None:
        problem = ip_problem(literal)
        if problem:
            raise UnsafeUrl(problem)
        return parsed, literal
    problem = _name_problem(ascii_host)
    if problem:
        raise UnsafeUrl(problem)
    return parsed, None


async def system_resolver(host: str, port: int) -> list[str]:
    """The default resolver: the running loop's ``getaddrinfo`` (TCP), addresses only."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


async def resolve(
    url: str,
    *,
    allow_loopback: bool = False,
    resolver: Resolver | None = None,
    allowed_ports: frozenset[int] = frozenset({443, 8443}),
) -> PinnedTarget:
    """Check ``url``, resolve its host once and return the pinned, vetted address. Raises ``UnsafeUrl``."""
    parsed, literal = parse_url(url, allow_loopback=allow_loopback, allowed_ports=allowed_ports)
    ascii_host = parsed.raw_host.decode("ascii").lower()
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
    if literal is None:
        try:
            answers = list(await (resolver or system_resolver)(ascii_host, port))
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrl(f"{ascii_host} does not resolve: {exc}") from exc
        if not answers:
            raise UnsafeUrl(f"{ascii_host} resolves to no address")
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError as exc:  # a scoped "fe80::1%eth0" lands here too
                raise UnsafeUrl(f"{ascii_host} resolves to an unusable address {answer!r}") from exc
        for address in addresses:  # every answer must pass, not just the one we pick
            problem = ip_problem(address)
            if problem:
                raise UnsafeUrl(f"{ascii_host} resolves to a refused address: {problem}")
        literal = addresses[0]
    default = DEFAULT_PORTS[parsed.scheme]
    host_for_header = f"[{ascii_host.strip('[]')}]" if ":" in ascii_host else ascii_host
    host_header = host_for_header if port == default else f"{host_for_header}:{port}"
    return PinnedTarget(
        url=str(parsed),
        scheme=parsed.scheme,
        host=ascii_host.strip("[]"),
        port=port,
        ip=str(literal),
        host_header=host_header,
    )
