"""What one API process holds for its lifetime: settings, database, Redis, rate limiter, ports."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.geocoding.base import Geocoder
from broker.api.pagination import CursorCodec
from broker.db.session import Database
from broker.settings import Settings

log = logging.getLogger("broker.api")


@dataclass
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int


class RateLimiter:
    """Fixed one-minute window per API key, counted atomically in Redis (INCR) and so shared by
    every API process. When Redis is unreachable the limiter fails open and says so in the log."""

    def __init__(self, redis: Redis, limit_per_minute: int) -> None:
        self.redis = redis
        self.limit = limit_per_minute
        self._warned_at = 0.0

    async def hit(self, key_id: str) -> RateDecision | None:
        now = time.time()
        window = int(now // 60)
        bucket = f"broker:rl:{key_id}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(bucket)
                pipe.expire(bucket, 120)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            if now - self._warned_at > 30:
                log.warning("rate limiter: Redis unavailable, failing open (%s)", type(exc).__name__)
                self._warned_at = now
            return None
        reset = 60 - int(now % 60)
        return RateDecision(
            allowed=count <= self.limit, limit=self.limit, remaining=max(0, self.limit - count), reset_s=reset
        )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: Redis
    geocoder: Geocoder
    cursors: CursorCodec
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.redis, self.settings.api.rate_limit_per_minute)

    async def close(self) -> None:
        await self.db.dispose()
        await self.redis.aclose()
