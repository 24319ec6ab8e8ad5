"""The job queue as the API and the services see it: its name, its encoding (msgpack, ids only) and
`JobQueue.enqueue`, which never fails a request: a job that could not be queued is found again by
the worker's sweeps, because the database, not Redis, says what is left to do."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from arq.constants import expires_extra_ms, job_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("broker.jobs")

QUEUE = "broker:queue"
MATCH_REQUEST = "match_request"
REBALANCE_CRISIS_CALL = "rebalance_crisis_call"


def serialize(obj: Any) -> bytes:
    return msgspec.msgpack.encode(obj)


def deserialize(data: bytes) -> Any:
    return msgspec.msgpack.decode(data)


class JobQueue:
    """Enqueues jobs on arq's queue through the process's Redis connection pool, in one round trip
    (arq's own ``enqueue_job`` takes three: WATCH, EXISTS, MULTI/EXEC)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._warned_at = 0.0

    async def enqueue(self, function: str, *args: Any, job_id: str) -> bool:
        """Queue ``function(*args)`` under ``job_id`` unless a job with that id is queued or running
        (its key exists: SET NX); True when queued now or already. False when Redis is unreachable
        (logged at most every 30 s; the worker's sweep picks the work up). Unlike arq, a finished
        job's kept result does not stop a new run: the jobs enqueued this way are idempotent."""
        now = timestamp_ms()
        payload = serialize_job(function, args, {}, None, now, serializer=serialize)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(job_key_prefix + job_id, payload, px=expires_extra_ms, nx=True)
                pipe.zadd(QUEUE, {job_id: now}, nx=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            now_s = time.monotonic()
            if now_s - self._warned_at > 30:
                log.warning("could not enqueue %s (%s); the worker's sweep will run it", function, type(exc).__name__)
                self._warned_at = now_s
            return False
        return True
