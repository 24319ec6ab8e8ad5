"""Enqueue many arq jobs in one Redis round trip, with arq's own semantics: a job whose id is already
queued, running or holding a result is skipped (``enqueue_job(...) is None``, R1.3). The relay uses
it for every due delivery and notification of a tick instead of three round trips per job."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from broker.services.jobs import QUEUE, serialize

# KEYS[1] = the queue; ARGV = job key prefix, result key prefix, expiry (ms), then (id, payload) pairs.
_ENQUEUE_MANY = """
local queue, jp, rp, ttl, score = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = 0
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('EXISTS', jp .. id, rp .. id) == 0 then
    redis.call('PSETEX', jp .. id, ttl, ARGV[i + 1])
    redis.call('ZADD', queue, score, id)
    n = n + 1
  end
end
return n
"""
BATCH = 500

Job = tuple[str, tuple[Any, ...], str]  # function name, arguments (ids only), job id


class Enqueuer:
    """Holds the registered script of one Redis client (EVALSHA, reloaded after a Redis restart)."""

    def __init__(self, redis: Any, queue: str = QUEUE) -> None:
        self._script = redis.register_script(_ENQUEUE_MANY)
        self._queue = queue

    async def enqueue_many(self, jobs: Sequence[Job]) -> int:
        """Queue ``jobs`` to run now; returns how many were new. Raises on a Redis error."""
        queued = 0
        for start in range(0, len(jobs), BATCH):
            now = timestamp_ms()
            argv: list[Any] = [job_key_prefix, result_key_prefix, expires_extra_ms, now]
            for function, args, job_id in jobs[start : start + BATCH]:
                argv += [job_id, serialize_job(function, args, {}, None, now, serializer=serialize)]
            queued += int(await self._script(keys=[self._queue], args=argv))
        return queued
