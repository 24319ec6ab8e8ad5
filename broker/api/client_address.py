"""The address of the client a request comes from, for the limits on failed authentications.

Behind a reverse proxy every request arrives from the proxy's address, so the limits would count
everyone together. ``BROKER_TRUSTED_PROXIES`` lists the proxies (addresses or networks) whose
``X-Forwarded-For`` header is believed: the client is then the right-most address of that header
that is not itself a trusted proxy (the left part of the header is whatever the client sent, so it
is never believed on its own). Without trusted proxies the header is ignored."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``BROKER_TRUSTED_PROXIES``: comma-separated addresses or CIDR networks (ValueError on a bad one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], networks: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` (the TCP peer), unless it is a trusted proxy; then the right-most
    ``X-Forwarded-For`` entry that is not a trusted proxy (an entry that is not an address ends the walk:
    the peer is kept)."""
    address = peer or "unknown"
    if not networks or not _trusted(address, networks):
        return address
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address
        if not _trusted(hop, networks):
            return hop
        address = hop
    return address
