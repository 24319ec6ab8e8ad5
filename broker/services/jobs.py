"""The job queue, in one place: its name, every job's name and id, the encoding (msgpack, ids only),
and the after-commit buffer through which a service schedules the jobs that follow its writes
(`schedule`); the edge that commits flushes it (`take_after_commit`, then `JobQueue.signal`). Queueing
never fails a request: a job that could not be queued is found again by the worker's sweeps,
because the database, not Redis, says what is left to do."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from arq.constants import expires_extra_ms, job_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.repositories import OUTBOX_WRITTEN

log = logging.getLogger("broker.jobs")

QUEUE = "broker:queue"
# The worker's job names (`workers.settings` registers a function under each).
MATCH_REQUEST = "match_request"
REBALANCE_CRISIS_CALL = "rebalance_crisis_call"
DELIVER = "deliver_webhooks"
NOTIFY = "notify"
#: A list the relay blocks on (BLPOP): one element in it means "events were committed, relay now".
RELAY_WAKE_KEY = "broker:relay:wake"
SIGNAL_TIMEOUT_S = 0.5
#: How long the key of a job taken off the queue by `settle_batch` stays (for a worker that had
#: already taken the job).
DONE_JOB_KEEP_MS = 60_000
#: ``session.info`` key of the unit of work's after-commit buffer (`schedule`).
_SCHEDULED = "broker.scheduled_jobs"


class Job(NamedTuple):
    function: str
    args: tuple[Any, ...]
    job_id: str


def match_job_id(request_id: str) -> str:
    """The id of a request's matching job (one queued at a time per request)."""
    return f"match:{request_id}"


def match_job(request_id: str) -> Job:
    return Job(MATCH_REQUEST, (request_id,), match_job_id(request_id))


def rebalance_job(call_id: str, *, commitment_id: str) -> Job:
    """The rebalance that a commitment's decline asks for (one job per decline: each may free units)."""
    return Job(REBALANCE_CRISIS_CALL, (call_id,), f"rebalance:{call_id}:{commitment_id}")


def notify_job(outbox_id: str) -> Job:
    """One e-mail per notified event; its id is what keeps a second relay pass from queueing it twice."""
    return Job(NOTIFY, (outbox_id,), f"notify:{outbox_id}")


def delivery_jobs(delivery_ids: Sequence[str], *, now: datetime, batch: int) -> list[Job]:
    """The deliveries a relay pass found due at ``now``, ``batch`` per job; the ids are new for
    every pass (a delivery queued again, its lease run out, gets a job of its own)."""
    run = f"deliveries:{int(now.timestamp() * 1000)}:{secrets.token_hex(3)}"
    return [Job(DELIVER, (list(delivery_ids[k:k + batch]),), f"{run}:{k // batch}")
            for k in range(0, len(delivery_ids), batch)]


def schedule(session: AsyncSession, job: Job) -> None:
    """Queue ``job`` once ``session``'s transaction has committed (never before: the job must find
    what the transaction wrote). The edge that commits the session flushes the buffer
    (`take_after_commit`); a worker's session has no such edge, so only the API's services schedule."""
    session.info.setdefault(_SCHEDULED, []).append(job)


def discard_scheduled(session: AsyncSession) -> None:
    """After a rollback the edge does not redo: what was scheduled follows nothing."""
    session.info.pop(_SCHEDULED, None)


def take_after_commit(session: AsyncSession) -> tuple[list[Job], bool]:
    """Empty ``session``'s after-commit buffer: the jobs scheduled, and whether the transaction wrote
    events (the relay is then woken: `JobQueue.signal`)."""
    return session.info.pop(_SCHEDULED, []), bool(session.info.pop(OUTBOX_WRITTEN, False))


def serialize(obj: Any) -> bytes:
    return msgspec.msgpack.encode(obj)


def deserialize(data: bytes) -> Any:
    return msgspec.msgpack.decode(data)


#: What a committed request hands to the workers, atomically (`JobQueue.signal`): for each job, its
#: key (KEYS[i], SET NX with ARGV[1] ms to live) and its place on the queue (KEYS[n+1], ZADD NX
#: with score ARGV[2]); then, when ARGV[3] is "1", one wake-up for the relay (KEYS[n+2], a list
#: kept at one element). ARGV[4..] are each job's id and payload.
_SIGNAL = """
local n = #KEYS - 2
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[3 + 2 * i], 'PX', ARGV[1], 'NX')
  redis.call('ZADD', KEYS[n + 1], 'NX', ARGV[2], ARGV[2 + 2 * i])
end
if ARGV[3] == '1' then
  redis.call('LPUSH', KEYS[n + 2], '1')
  redis.call('LTRIM', KEYS[n + 2], 0, 0)
end
return n
"""


class JobQueue:
    """Enqueues jobs on arq's queue through the process's Redis connection pool, in one round trip
    (arq's own ``enqueue_job`` takes three: WATCH, EXISTS, MULTI/EXEC)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._warned_at = 0.0
        # One command (EVALSHA; redis-py loads the script again after a Redis restart) where the
        # MULTI/EXEC pipeline was six commands and six replies for every POST /v1/requests.
        self._signal = redis.register_script(_SIGNAL)

    async def signal(self, jobs: Sequence[Job], *, wake_relay: bool) -> bool:
        """After a commit, in one round trip: queue each of ``jobs`` unless a job with its id is
        queued or running (its key exists: SET NX; unlike arq, a finished job's kept result does not
        stop a new run: these jobs are idempotent) and, with ``wake_relay``, wake the relay (LPUSH
        + LTRIM: the list never holds more than one wake-up) so that the events just committed go
        now rather than at its next 1 s tick. Never raises: when Redis is down or slow the sweeps
        and the cron relay do it later."""
        if not jobs and not wake_relay:
            return True
        now = timestamp_ms()
        keys = [job_key_prefix + job.job_id for job in jobs] + [QUEUE, RELAY_WAKE_KEY]
        args: list[Any] = [expires_extra_ms, now, "1" if wake_relay else "0"]
        for job in jobs:
            args += [job.job_id, serialize_job(job.function, job.args, {}, None, now, serializer=serialize)]
        try:
            async with asyncio.timeout(SIGNAL_TIMEOUT_S):
                await self._signal(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            now_s = time.monotonic()
            if now_s - self._warned_at > 30:
                log.warning("could not queue %s job(s) or wake the relay (%s); the sweeps will", len(jobs),
                            type(exc).__name__)
                self._warned_at = now_s
            return False
        return True


async def settle_batch(redis: Redis, done_job_ids: Sequence[str], *, wake_relay: bool) -> bool:
    """After a batch did the work of other queued jobs (a matching batch matched their requests), in
    one round trip: take those jobs off the queue, so that the worker does not start each only to
    find nothing left (arq's start, run and finish of a job are about ten Redis commands; under load
    that was a fifth of the worker's CPU), and wake the relay for the events just committed. A job
    a worker has already taken still finds its data: its key expires in a minute rather than at
    once. Never raises: left queued, a job ends at once (`workers.jobs.matching`)."""
    if not done_job_ids and not wake_relay:
        return True
    try:
        async with asyncio.timeout(SIGNAL_TIMEOUT_S), redis.pipeline(transaction=False) as pipe:
            if done_job_ids:
                pipe.zrem(QUEUE, *done_job_ids)
                for job_id in done_job_ids:
                    pipe.pexpire(job_key_prefix + job_id, DONE_JOB_KEEP_MS)
            if wake_relay:
                pipe.lpush(RELAY_WAKE_KEY, b"1")
                pipe.ltrim(RELAY_WAKE_KEY, 0, 0)
            await pipe.execute()
    except (RedisError, OSError, TimeoutError) as exc:
        global _settle_warned_at
        if (now := time.monotonic()) - _settle_warned_at > 30:
            log.warning("could not unqueue %s done job(s) or wake the relay (%s)", len(done_job_ids),
                        type(exc).__name__)
            _settle_warned_at = now
        return False
    return True


_settle_warned_at = 0.0
