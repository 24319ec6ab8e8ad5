"""What every job receives in ``ctx``: what the worker's start-up builds (`workers.settings`) and
the keys arq adds (its Redis pool; per job its id, try, enqueue time and score)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NotRequired, TypedDict

import httpx
from arq.connections import ArqRedis

from adapters.chorus.base import ChorusPro
from adapters.geocoding.base import Geocoder
from adapters.notifications.base import Notifier
from adapters.webhooks.base import WebhookSender
from broker.db.session import Database
from broker.services.matching import CandidateCache
from broker.services.webhooks import SecretBox
from broker.settings import Settings
from workers.enqueue import Enqueuer

if TYPE_CHECKING:  # the jobs' modules import this one
    from workers.jobs.matching import MatchBatches


class WorkerContext(TypedDict):
    # arq's: the pool of the worker's Redis connections, then the keys of one job run (a cron job
    # has them too; the relay's waker, started with the worker, has none).
    redis: ArqRedis
    job_id: NotRequired[str]
    job_try: NotRequired[int]
    enqueue_time: NotRequired[datetime]
    score: NotRequired[int | None]
    # Built once at start-up and shared by every job of the process.
    settings: Settings
    db: Database
    lease: timedelta  # how long a queued delivery belongs to its job (`webhooks.delivery_timings`)
    http: httpx.AsyncClient  # the pinned egress client of webhook deliveries (closed at shutdown)
    sender: WebhookSender  # one attempt of one delivery, through ``http``
    box: SecretBox
    enqueue: Enqueuer
    notifier: Notifier
    candidates: CandidateCache
    match_batches: MatchBatches
    chorus: ChorusPro  # where invoices are deposited (the fake unless BROKER_CHORUS_MODE=piste)
    geocoder: Geocoder  # the communes, for the addresses of invoice documents
    relay_waker: NotRequired[asyncio.Task[None]]  # set once the rest is there: it runs the relay
