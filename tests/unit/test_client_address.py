"""Issue 18: behind a reverse proxy, the failed-authentication limits count per real client
(`broker/api/client_address.py`), and a client cannot choose its address by sending the header."""

from __future__ import annotations

import pytest

from broker.api.client_address import client_address, trusted_networks
from broker.settings import SettingsError, load_settings

PROXIES = trusted_networks("10.0.0.0/8, 127.0.0.1")


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("203.0.113.7", ["198.51.100.1"], ()) == "203.0.113.7"
    assert client_address(None, [], ()) == "unknown"


def test_a_trusted_proxy_gives_the_right_most_untrusted_hop() -> None:
    assert client_address("10.0.0.2", ["198.51.100.9"], PROXIES) == "198.51.100.9"
    # the client wrote a fake first hop; the proxies appended the real one and themselves
    assert client_address("10.0.0.2", ["1.2.3.4, 198.51.100.9, 10.0.0.5"], PROXIES) == "198.51.100.9"
    assert client_address("127.0.0.1", ["1.2.3.4", "198.51.100.9"], PROXIES) == "198.51.100.9"  # two headers


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    assert client_address("203.0.113.7", ["198.51.100.9"], PROXIES) == "203.0.113.7"


def test_garbage_in_the_header_keeps_the_last_trusted_address() -> None:
    assert client_address("10.0.0.2", ["nonsense"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["10.0.0.9"], PROXIES) == "10.0.0.9"  # all hops trusted


def test_a_bad_setting_is_refused_at_start() -> None:
    assert load_settings({"BROKER_TRUSTED_PROXIES": "10.0.0.0/8,::1"}).api.trusted_proxies == "10.0.0.0/8,::1"
    with pytest.raises(SettingsError, match="BROKER_TRUSTED_PROXIES"):
        load_settings({"BROKER_TRUSTED_PROXIES": "10.0.0.0/33"})
