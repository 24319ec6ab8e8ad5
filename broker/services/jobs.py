"""The job queue as the API and the services see it: its name, its encoding (msgpack, ids only) and
`JobQueue.enqueue`, which never fails a request: a job that could not be queued is found again by
the worker's sweeps, because the database, not Redis, says what is left to do."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from arq.connections import ArqRedis
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
    """Enqueues jobs on arq's queue through the process's Redis connection pool."""

    def __init__(self, redis: Redis) -> None:
        self._arq = ArqRedis(
            redis.connection_pool, job_serializer=serialize, job_deserializer=deserialize, default_queue_name=QUEUE
        )
        self._warned_at = 0.0

    async def enqueue(self, function: str, *args: Any, job_id: str) -> bool:
        """True when queued or already queued under ``job_id``; False when Redis is unreachable
        (logged at most every 30 s; the sweep picks the work up)."""
        try:
            await self._arq.enqueue_job(function, *args, _job_id=job_id)
        except (RedisError, OSError) as exc:
            now = time.monotonic()
            if now - self._warned_at > 30:
                log.warning("could not enqueue %s (%s); the worker's sweep will run it", function, type(exc).__name__)
                self._warned_at = now
            return False
        return True
