"""Configuration: one frozen Struct built from ``BROKER_*`` variables and passed down explicitly."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Literal

import msgspec


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the state lives."""

    url: str = "sqlite+aiosqlite:///./var/broker.db"
    # PostgreSQL connections kept open per process, and how many more it may open under a burst.
    # The pool should cover the requests a process serves at once: a connection opened past it is
    # closed when it comes back, and opening one costs more than a request (a server process, the
    # session's set-up, every statement prepared again). Measured on POST /v1/requests under 32
    # clients: with 20 + 10 the API opened ~10 connections a second and PostgreSQL spent 0.80 ms of
    # CPU per request; with 32 + 8, none and 0.55 ms. An API and a worker at 40 each stay within
    # PostgreSQL's default max_connections (100).
    pool_size: int = 32
    max_overflow: int = 8
    echo: bool = False
    # PostgreSQL's application_name of this process's connections (pg_stat_activity); e.g. to tell
    # the API from the workers, or a fault test's processes from everything else.
    application_name: str | None = None
    # PostgreSQL's plan_cache_mode of this process's sessions: "auto" (PostgreSQL's default: a
    # prepared statement reuses one generic plan when it is no dearer) or "force_custom_plan" (planned
    # for its values at every execution). See broker.db.postgres.POSTGRESQL_SESSION for the figures.
    plan_cache_mode: Literal["auto", "force_custom_plan", "force_generic_plan"] = "auto"


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The queue and the shared rate-limit store. ``url=None`` means: start an embedded Redis."""

    url: str | None = None


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    """HTTP server and request limits."""

    host: str = "127.0.0.1"
    port: int = 8000
    processes: int = 1
    max_body_bytes: int = 256 * 1024
    rate_limit_per_minute: int = 1200
    # Failed authentications per minute, per client address and per presented key prefix (then 429).
    auth_failures_per_minute: int = 60
    page_default: int = 50
    page_max: int = 200
    public_url: str = "http://127.0.0.1:8000"
    # Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For is believed for
    # the client's address (the failed-authentication limits); none by default: the TCP peer counts.
    trusted_proxies: str = ""


class MatchingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How many workshops a request invites, the score weights (see docs/matching.md), and where
    matching runs: in the worker (default; the request is answered with ``match_state=pending``)
    or inline in the creating request (``BROKER_MATCHING_INLINE=1``: the answer carries the
    invitations; no worker needed)."""

    invitations: int = 8
    inline: bool = False
    weight_distance: float = 0.4
    weight_slack: float = 0.2
    weight_on_time: float = 0.2
    weight_fairness: float = 0.2


class CrisisSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Crisis calls: how long a proposed commitment waits for its maker, and when a workshop lags
    (its reported rate misses the commitment by more than ``lag_margin``, or it has not reported for
    ``silence_hours``)."""

    commitment_expiry_hours: float = 2.0
    lag_margin: float = 0.2
    silence_hours: float = 24.0


class NotificationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """E-mails to people (new invitation, new quote, webhook endpoint disabled), sent to the
    organisation's ``contact_email``. Logged only (one line, no body) unless ``BROKER_SMTP_HOST``
    is set; then ``BROKER_SMTP_SENDER`` is required."""

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_sender: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_tls: bool = False  # implicit TLS (SMTPS, usually port 465)

    def __repr__(self) -> str:  # never the password
        return f"NotificationSettings(smtp_host={self.smtp_host!r}, smtp_port={self.smtp_port})"


class ChorusSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Chorus Pro, where invoices to public buyers are deposited. ``mode="fake"`` (the default, and
    the tests'): an in-process stand-in that walks each deposited invoice through Chorus Pro's
    statuses, one every ``fake_step_s`` seconds, and rejects the invoices addressed to one of the
    ``fake_closed_services`` (comma-separated service codes: « service inconnu ou inactif »).
    ``mode="piste"``: the real API through PISTE (OAuth client credentials ``client_id`` /
    ``client_secret``, and the Chorus Pro technical account ``login`` / ``password``), on the sandbox
    URLs unless ``api_url`` / ``oauth_url`` say otherwise. ``syntax``: what is deposited."""

    mode: Literal["fake", "piste"] = "fake"
    syntax: Literal["factur-x", "ubl"] = "factur-x"
    api_url: str = "https://sandbox-api.piste.gouv.fr"
    oauth_url: str = "https://sandbox-oauth.piste.gouv.fr/api/oauth/token"
    client_id: str | None = None
    client_secret: str | None = None
    login: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    # How often the worker asks Chorus Pro for the status of each invoice it follows.
    poll_s: float = 900.0
    fake_step_s: float = 60.0
    fake_closed_services: str = ""

    def __repr__(self) -> str:  # never the secrets
        return f"ChorusSettings(mode={self.mode!r}, api_url={self.api_url!r})"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the broker reads from its environment, and nothing else."""

    db: DatabaseSettings = DatabaseSettings()
    matching: MatchingSettings = MatchingSettings()
    crisis: CrisisSettings = CrisisSettings()
    redis: RedisSettings = RedisSettings()
    api: ApiSettings = ApiSettings()
    notifications: NotificationSettings = NotificationSettings()
    chorus: ChorusSettings = ChorusSettings()
    data_dir: str = "./var"
    # Signs pagination cursors and, later, encrypts webhook secrets. `broker up` generates one
    # into data_dir when it is not given; tests pass their own.
    secret_key: str = ""
    bootstrap_admin_key: str | None = None
    log_level: str = "INFO"
    idempotency_ttl_hours: int = 24
    # Allow http://127.0.0.1:<port> webhook endpoints (tests, the demo, local integrations). Off by default.
    webhooks_allow_loopback: bool = False
    # Total time one delivery attempt may take (connect ≤ 5 s and read ≤ 15 s within it); the
    # delivery job's timeout and the lease after which a lost job is replaced derive from it.
    webhooks_timeout_s: float = 30.0
    # The worker's CPU priority (nice) on a machine it shares with the API: under a burst the
    # requests people wait for come first, and matching and webhooks (asynchronous anyway) catch up
    # after. 0 leaves it equal; separate machines or containers make it moot.
    worker_nice: int = 10
    # Awards whose total reaches this amount (euros HT) produce a DECP record (données essentielles,
    # article R.2196-1 of the code de la commande publique and arrêté du 22 décembre 2022), to publish
    # within two months of notification. 40 000 € HT in the law today; a setting so that it can follow.
    decp_threshold_eur_ht: int = 40_000


# environment variable -> (group or None, field)
_ENV: Mapping[str, tuple[str | None, str]] = {
    "BROKER_DATABASE_URL": ("db", "url"),
    "BROKER_DATABASE_POOL_SIZE": ("db", "pool_size"),
    "BROKER_DATABASE_MAX_OVERFLOW": ("db", "max_overflow"),
    "BROKER_DATABASE_ECHO": ("db", "echo"),
    "BROKER_DATABASE_APPLICATION_NAME": ("db", "application_name"),
    "BROKER_DATABASE_PLAN_CACHE_MODE": ("db", "plan_cache_mode"),
    "BROKER_REDIS_URL": ("redis", "url"),
    "BROKER_HOST": ("api", "host"),
    "BROKER_PORT": ("api", "port"),
    "BROKER_API_PROCESSES": ("api", "processes"),
    "BROKER_MAX_BODY_BYTES": ("api", "max_body_bytes"),
    "BROKER_RATE_LIMIT_PER_MINUTE": ("api", "rate_limit_per_minute"),
    "BROKER_AUTH_FAILURES_PER_MINUTE": ("api", "auth_failures_per_minute"),
    "BROKER_PUBLIC_URL": ("api", "public_url"),
    "BROKER_TRUSTED_PROXIES": ("api", "trusted_proxies"),
    "BROKER_MATCHING_INVITATIONS": ("matching", "invitations"),
    "BROKER_MATCHING_INLINE": ("matching", "inline"),
    "BROKER_MATCHING_WEIGHT_DISTANCE": ("matching", "weight_distance"),
    "BROKER_MATCHING_WEIGHT_SLACK": ("matching", "weight_slack"),
    "BROKER_MATCHING_WEIGHT_ON_TIME": ("matching", "weight_on_time"),
    "BROKER_MATCHING_WEIGHT_FAIRNESS": ("matching", "weight_fairness"),
    "BROKER_CRISIS_COMMITMENT_EXPIRY_HOURS": ("crisis", "commitment_expiry_hours"),
    "BROKER_CRISIS_LAG_MARGIN": ("crisis", "lag_margin"),
    "BROKER_CRISIS_SILENCE_HOURS": ("crisis", "silence_hours"),
    "BROKER_DATA_DIR": (None, "data_dir"),
    "BROKER_SECRET_KEY": (None, "secret_key"),
    "BROKER_BOOTSTRAP_ADMIN_KEY": (None, "bootstrap_admin_key"),
    "BROKER_LOG_LEVEL": (None, "log_level"),
    "BROKER_WORKER_NICE": (None, "worker_nice"),
    "BROKER_IDEMPOTENCY_TTL_HOURS": (None, "idempotency_ttl_hours"),
    "BROKER_WEBHOOKS_ALLOW_LOOPBACK": (None, "webhooks_allow_loopback"),
    "BROKER_WEBHOOKS_TIMEOUT_S": (None, "webhooks_timeout_s"),
    "BROKER_DECP_THRESHOLD_EUR_HT": (None, "decp_threshold_eur_ht"),
    "BROKER_CHORUS_MODE": ("chorus", "mode"),
    "BROKER_CHORUS_SYNTAX": ("chorus", "syntax"),
    "BROKER_CHORUS_API_URL": ("chorus", "api_url"),
    "BROKER_CHORUS_OAUTH_URL": ("chorus", "oauth_url"),
    "BROKER_CHORUS_CLIENT_ID": ("chorus", "client_id"),
    "BROKER_CHORUS_CLIENT_SECRET": ("chorus", "client_secret"),
    "BROKER_CHORUS_LOGIN": ("chorus", "login"),
    "BROKER_CHORUS_PASSWORD": ("chorus", "password"),
    "BROKER_CHORUS_TIMEOUT_S": ("chorus", "timeout_s"),
    "BROKER_CHORUS_POLL_S": ("chorus", "poll_s"),
    "BROKER_CHORUS_FAKE_STEP_S": ("chorus", "fake_step_s"),
    "BROKER_CHORUS_FAKE_CLOSED_SERVICES": ("chorus", "fake_closed_services"),
    "BROKER_SMTP_HOST": ("notifications", "smtp_host"),
    "BROKER_SMTP_PORT": ("notifications", "smtp_port"),
    "BROKER_SMTP_SENDER": ("notifications", "smtp_sender"),
    "BROKER_SMTP_USERNAME": ("notifications", "smtp_username"),
    "BROKER_SMTP_PASSWORD": ("notifications", "smtp_password"),
    "BROKER_SMTP_STARTTLS": ("notifications", "smtp_starttls"),
    "BROKER_SMTP_TLS": ("notifications", "smtp_tls"),
}


class SettingsError(ValueError):
    """A ``BROKER_*`` variable has a value of the wrong type or shape."""


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``BROKER_*`` variables; unknown variables are ignored.

    Values are strings and are converted leniently (``"8000"`` -> 8000, ``"1"`` -> True).
    """
    raw: dict[str, dict[str, str] | str] = {}
    for name, (group, field) in _ENV.items():
        if name not in environ or environ[name] == "":
            continue
        if group is None:
            raw[field] = environ[name]
        else:
            section = raw.setdefault(group, {})
            assert isinstance(section, dict)
            section[field] = environ[name]
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid BROKER_* setting: {exc}") from exc
    for part in settings.api.trusted_proxies.split(","):
        try:
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
        except ValueError as exc:
            raise SettingsError(f"invalid BROKER_TRUSTED_PROXIES entry {part.strip()!r}: {exc}") from exc
    return settings
