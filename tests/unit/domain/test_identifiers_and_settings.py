"""SIRET/INSEE rules and settings loading — no database, no Redis."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.identifiers import is_insee_code, is_postcode, luhn_ok, siret_problem
from broker.settings import Settings, SettingsError, load_settings


@pytest.mark.parametrize(
    "siret",
    ["21750001600019", "13002603200016", "73282932000074", "35600000000048", "35600000052135"],
)
def test_real_sirets_pass(siret):
    assert siret_problem(siret) is None


@pytest.mark.parametrize(
    ("siret", "why"),
    [("2175000160001", "14 digits"), ("21750001600018", "Luhn"), ("12345678901234", "SIREN"),
     ("2175000160001A", "14 digits"), ("", "14 digits")],
)
def test_bad_sirets_say_why(siret, why):
    assert why in (siret_problem(siret) or "")


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_a_siret_passes_only_if_siren_and_siret_pass_luhn(siret):
    if not siret.startswith("356000000"):
        assert (siret_problem(siret) is None) == (luhn_ok(siret[:9]) and luhn_ok(siret))


@given(st.text(alphabet="0123456789", min_size=13, max_size=13), st.integers(0, 12))
def test_one_changed_digit_breaks_luhn(digits, position):
    for check in "0123456789":
        candidate = digits + check
        if luhn_ok(candidate):
            changed = candidate[:position] + str((int(candidate[position]) + 1) % 10) + candidate[position + 1:]
            assert not luhn_ok(changed)
            break


def test_insee_and_postcode_shapes():
    assert is_insee_code("35238") and is_insee_code("2A004") and is_insee_code("97411")
    assert not is_insee_code("3523") and not is_insee_code("2C004") and not is_insee_code("352380")
    assert is_postcode("01400") and not is_postcode("1400")


def test_defaults_just_work():
    settings = load_settings({})
    assert settings == Settings()
    assert settings.db.url.startswith("sqlite+aiosqlite:///")
    assert settings.redis.url is None and settings.api.port == 8000


def test_environment_values_are_converted():
    settings = load_settings({"BROKER_PORT": "9001", "BROKER_DATABASE_ECHO": "1", "BROKER_REDIS_URL": "redis://x:1/2",
                              "UNRELATED": "ignored", "BROKER_RATE_LIMIT_PER_MINUTE": "60"})
    assert settings.api.port == 9001 and settings.db.echo is True
    assert settings.redis.url == "redis://x:1/2" and settings.api.rate_limit_per_minute == 60


def test_bad_values_are_a_clear_error():
    with pytest.raises(SettingsError, match="port"):
        load_settings({"BROKER_PORT": "eighty"})


def test_nothing_reads_the_environment_or_connects_at_import():
    code = (
        "import os, socket\n"
        "os.environ.clear()\n"
        "def no(*a, **k): raise AssertionError('connected at import')\n"
        "socket.socket.connect = no\n"
        "import broker.app, broker.cli, broker.supervisor, workers.settings, workers.jobs.maintenance\n"
        "import broker.services.access, broker.services.organisations, adapters.geocoding\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
