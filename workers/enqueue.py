"""Enqueue many arq jobs in one Redis round trip, with arq's own semantics: a job whose id is already
queued, running or holding a result is skipped (``enqueue_job(...) is None``, R1.3). The relay uses
it for every due delivery and notification of a tick instead of three round trips per job.

A relay tick's delivery jobs are queued with a marker key, in the same atomic script: a delivery
the database holds as queued at that tick, whose marker Redis does not have, was never queued (the
relay died between its commit and the enqueue) and is queued again at once (``absent``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.asyncio import Redis

from broker.services.jobs import QUEUE, Job, serialize

# KEYS[1] = the queue; ARGV = job key prefix, result key prefix, expiry (ms), score, marker key ("" for
# none), marker expiry (ms), then (id, payload) pairs.
_ENQUEUE_MANY = """
local queue, jp, rp, ttl, score = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if ARGV[5] ~= '' then
  redis.call('PSETEX', ARGV[5], ARGV[6], '1')
end
local n = 0
for i = 7, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('EXISTS', jp .. id, rp .. id) == 0 then
    redis.call('PSETEX', jp .. id, ttl, ARGV[i + 1])
    redis.call('ZADD', queue, score, id)
    n = n + 1
  end
end
return n
"""
# ARGV = keys: those that do not exist.
_ABSENT = """
local out = {}
for i = 1, #ARGV do
  if redis.call('EXISTS', ARGV[i]) == 0 then
    out[#out + 1] = ARGV[i]
  end
end
return out
"""
#: Set once with NX: its absence means this Redis started empty (first start, or a restart that lost
#: its data), so every job the database believes queued may be gone.
EPOCH_KEY = "broker:relay:epoch"


class Enqueuer:
    """Holds the registered scripts of one Redis client (EVALSHA, reloaded after a Redis restart)."""

    def __init__(self, redis: Redis, queue: str = QUEUE) -> None:
        self._redis = redis
        self._script = redis.register_script(_ENQUEUE_MANY)
        self._absent = redis.register_script(_ABSENT)
        self._queue = queue

    async def lost_data(self) -> bool:
        """True the first time it is asked after Redis started empty (one SET NX per relay tick)."""
        return bool(await self._redis.set(EPOCH_KEY, uuid.uuid4().hex, nx=True))

    async def absent(self, keys: Sequence[str]) -> set[str]:
        """The keys (markers) that Redis does not hold."""
        if not keys:
            return set()
        found = await self._absent(keys=[], args=list(keys))
        return {k.decode() if isinstance(k, bytes) else str(k) for k in found}

    async def enqueue_many(self, jobs: Sequence[Job], *, marker: str = "", marker_ttl_ms: int = 0) -> int:
        """Queue ``jobs`` to run now, atomically with ``marker`` if given; returns how many were new.
        Raises on a Redis error (then none of them was queued)."""
        now = timestamp_ms()
        argv: list[Any] = [job_key_prefix, result_key_prefix, expires_extra_ms, now, marker, marker_ttl_ms]
        for function, args, job_id in jobs:
            argv += [job_id, serialize_job(function, args, {}, None, now, serializer=serialize)]
        return int(await self._script(keys=[self._queue], args=argv))
