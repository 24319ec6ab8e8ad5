"""Composition root of the workers: ``worker_settings(settings)`` builds arq's settings with msgpack
serialisation, small uniform timeouts, and a startup that builds the engine and ports into ctx."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from arq import cron, func
from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine
from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.chorus.factory import make_chorus
from adapters.geocoding import load_communes
from adapters.notifications.base import Notifier
from adapters.webhooks.base import DeliveryPolicy
from adapters.webhooks.delivery import HttpWebhookSender
from adapters.webhooks.transport import make_client
from broker.db.session import Database
from broker.services.jobs import (
    DELIVER,
    MATCH_REQUEST,
    NOTIFY,
    QUEUE,
    REBALANCE_CRISIS_CALL,
    deserialize,
    serialize,
)
from broker.services.matching import CandidateCache
from broker.services.notifications import notifier_for
from broker.services.webhooks import SecretBox, delivery_timings
from broker.services.worker_health import HEARTBEAT_S, WORKER_STATE_KEY, heartbeat
from broker.settings import NotificationSettings, Settings
from workers.context import WorkerContext
from workers.enqueue import Enqueuer
from workers.jobs.crisis import rebalance_crisis_call, sweep_crisis, watch_crisis_lags
from workers.jobs.invoices import chorus_invoices, watch_payments
from workers.jobs.lifecycle import close_windows, watch_deadlines
from workers.jobs.maintenance import purge_idempotency
from workers.jobs.matching import MatchBatches, match_request, sweep_matches
from workers.jobs.notifications import notify
from workers.jobs.webhooks import deliver_webhooks, relay_outbox, relay_waker

log = logging.getLogger("broker.worker")
P = ParamSpec("P")
R = TypeVar("R")


def job(coroutine: Callable[Concatenate[WorkerContext, P], Awaitable[R]]) -> WorkerCoroutine:
    """A job as arq registers it. arq hands every job the dict that ``on_startup`` filled plus its
    own keys, which is what `WorkerContext` describes; mypy takes no TypedDict for arq's ``dict``."""
    return cast(WorkerCoroutine, coroutine)


def redis_settings(settings: Settings) -> RedisSettings:
    if settings.redis.url is None:
        raise RuntimeError("BROKER_REDIS_URL is not set (`broker up` starts an embedded Redis and sets it)")
    rs = RedisSettings.from_dsn(settings.redis.url)
    rs.conn_retries = 60  # ride out a Redis restart instead of dying (1 s apart)
    rs.conn_retry_delay = 1
    return rs


def notifier(settings: NotificationSettings) -> Notifier:
    """The log notifier unless ``BROKER_SMTP_HOST`` is set."""
    return notifier_for(settings)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    total = settings.webhooks_timeout_s
    return DeliveryPolicy(allow_loopback=settings.webhooks_allow_loopback, connect_timeout_s=min(5.0, total),
                          read_timeout_s=min(15.0, total), total_timeout_s=total)


async def _heartbeat(redis: Redis) -> None:
    """Tell readiness this worker runs (see broker.services.worker_health): now, then every few seconds."""
    while True:
        try:
            await redis.set(WORKER_STATE_KEY, heartbeat(time.time()))
        except RedisError as exc:  # Redis restarting: arq's own connection rides it out, so do we
            log.warning("worker heartbeat not written: %s", exc)
        await asyncio.sleep(HEARTBEAT_S)


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker``."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        policy = delivery_policy(settings)
        http = make_client(policy)
        built: WorkerContext = {
            "redis": ctx["redis"],
            "settings": settings,
            "db": Database(settings.db),
            "lease": delivery_timings(settings.webhooks_timeout_s)[1],
            "http": http,
            "sender": HttpWebhookSender(http, policy=policy),
            "box": SecretBox(settings.secret_key),
            "enqueue": Enqueuer(ctx["redis"]),
            "notifier": notifier(settings.notifications),
            "candidates": CandidateCache(),
            "match_batches": MatchBatches(),
            "chorus": make_chorus(settings.chorus),
            "geocoder": load_communes(),
        }
        built["relay_waker"] = asyncio.create_task(relay_waker(built))
        ctx.update(built)
        ctx["heartbeat"] = asyncio.create_task(_heartbeat(ctx["redis"]))
        log.info("worker ready")

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        for name in ("relay_waker", "heartbeat"):
            if (task := ctx.get(name)) is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if (http := ctx.get("http")) is not None:
            await http.aclose()
        if (chorus := ctx.get("chorus")) is not None:
            await chorus.aclose()
        if (db := ctx.get("db")) is not None:
            await db.dispose()

    return {
        # Ids only, small uniform timeouts; a delivery makes one attempt per job (its retries are
        # scheduled in the database, not by arq), so max_tries only covers a worker killed mid-job.
        "functions": [
            func(job(deliver_webhooks), name=DELIVER, timeout=delivery_timings(settings.webhooks_timeout_s)[0],
                 max_tries=3),
            func(job(notify), name=NOTIFY, timeout=30, max_tries=5),
            func(job(match_request), name=MATCH_REQUEST, timeout=30, max_tries=5),
            func(job(rebalance_crisis_call), name=REBALANCE_CRISIS_CALL, timeout=60, max_tries=5),
        ],
        "cron_jobs": [
            cron(job(relay_outbox), second=set(range(60)), unique=True, timeout=30, run_at_startup=True),
            # Both jobs are idempotent sweeps guarded by conditional UPDATEs: two workers running
            # one at the same time change each row once.
            cron(job(close_windows), second=set(range(0, 60, 10)), unique=True, timeout=30, run_at_startup=True),
            cron(job(sweep_matches), second=set(range(2, 60, 5)), unique=True, timeout=30, run_at_startup=True),
            # Expires unanswered proposals and rebalances flagged calls (also what a lost job left).
            cron(job(sweep_crisis), second=set(range(7, 60, 10)), unique=True, timeout=60, run_at_startup=True),
            cron(job(watch_crisis_lags), second=37, unique=True, timeout=60, run_at_startup=False),
            cron(job(watch_deadlines), second=5, unique=True, timeout=30, run_at_startup=True),
            cron(job(chorus_invoices), second=set(range(3, 60, 5)), unique=True, timeout=120, run_at_startup=True),
            cron(job(watch_payments), second=47, unique=True, timeout=60, run_at_startup=True),
            cron(job(purge_idempotency), minute=17, second=0, run_at_startup=False, unique=True, timeout=60),
        ],
        "redis_settings": redis_settings(settings),
        "queue_name": QUEUE,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "job_timeout": 30,
        # Deliveries wait on receivers (up to BROKER_WEBHOOKS_TIMEOUT_S each): room for many at once,
        # and a short poll so a queued job starts within 50 ms (arq starts at most max_jobs jobs per
        # poll, so the pair also bounds throughput: ~max_jobs / poll_delay jobs per second).
        "max_jobs": 50,
        "poll_delay": 0.05,
        "max_tries": 5,
        "keep_result": 60,
        "handle_signals": True,
        "health_check_interval": 30,
    }


class WorkerSettings:
    """For ``arq workers.settings.WorkerSettings``: the settings come from ``BROKER_*`` at start."""

    @classmethod
    def build(cls, settings: Settings) -> dict[str, Any]:
        return worker_settings(settings)
