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
from broker.domain.access import Principal
from broker.services.jobs import JobQueue
from broker.services.matching import CandidateCache
from broker.settings import Settings

log = logging.getLogger("broker.api")


@dataclass
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    keys_generation: bytes | None
    #: Failed authentications from the client's address in this window (read in the same round trip).
    address_failures: int = 0


KEYS_GENERATION = "broker:api-keys:generation"

#: Count a request in its key's window (KEYS[1], expiring after ARGV[1] s), read the key-cache
#: generation (KEYS[2]; "0" before the first revocation) and the failed authentications of the
#: client's address (KEYS[3]), atomically.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('GET', KEYS[2]) or '0', tonumber(redis.call('GET', KEYS[3]) or '0')}
"""

#: Count a failed authentication against the client's address (KEYS[1]) and the presented key
#: prefix (KEYS[2]), both expiring after ARGV[1] s.
_FAIL = """
local by_address = redis.call('INCR', KEYS[1])
if by_address == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local by_prefix = redis.call('INCR', KEYS[2])
if by_prefix == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {by_address, by_prefix}
"""


class RateLimiter:
    """Fixed one-minute windows counted atomically in Redis (INCR), so shared by every API process.

    - Requests are counted per key: the bucket is named by the SHA-256 of the whole token, which only
      the key's holder can present. A forged secret behind a victim's public prefix lands in a
      bucket of its own and never spends the victim's budget (issue 18, F2).
    - Failed authentications are counted per client address and per presented prefix, in separate
      buckets (``failed``) that a valid key never reads: they turn further failures into 429, and
      an address over its limit is refused before its unverified tokens reach the database.

    The request's one round trip also reads the API-key generation that invalidates the key cache
    and the address's failure count. When Redis is unreachable the limiter fails open and logs it."""

    def __init__(self, redis: Redis, limit_per_minute: int, failures_per_minute: int = 60) -> None:
        self.redis = redis
        self.limit = limit_per_minute
        self.failures_limit = failures_per_minute
        self._warned_at = 0.0
        # One command (EVALSHA; redis-py loads the script again after a Redis restart), where
        # MULTI/INCR/EXPIRE/GET/EXEC were five commands and five replies for every request.
        self._hit = redis.register_script(_HIT)
        self._fail = redis.register_script(_FAIL)

    def _unavailable(self, now: float, exc: Exception) -> None:
        if now - self._warned_at > 30:
            log.warning("rate limiter: Redis unavailable, failing open (%s)", type(exc).__name__)
            self._warned_at = now

    async def hit(self, token_hash: str, address: str) -> RateDecision | None:
        now = time.time()
        window = int(now // 60)
        bucket = f"broker:rl:{token_hash[:32]}:{window}"
        failures = f"broker:rl-fail:addr:{address}:{window}"
        try:
            count, generation, address_failures = await self._hit(
                keys=[bucket, KEYS_GENERATION, failures], args=[120]
            )
        except (RedisError, OSError) as exc:
            self._unavailable(now, exc)
            return None
        reset = 60 - int(now % 60)
        return RateDecision(
            allowed=count <= self.limit,
            limit=self.limit,
            remaining=max(0, self.limit - count),
            reset_s=reset,
            keys_generation=generation,
            address_failures=int(address_failures),
        )

    async def failed(self, address: str, key_prefix: str) -> int | None:
        """Count a failed authentication; the seconds to wait when the address or the prefix is
        over its limit, else None (also when Redis is unreachable)."""
        now = time.time()
        window = int(now // 60)
        try:
            by_address, by_prefix = await self._fail(
                keys=[f"broker:rl-fail:addr:{address}:{window}", f"broker:rl-fail:prefix:{key_prefix}:{window}"],
                args=[120],
            )
        except (RedisError, OSError) as exc:
            self._unavailable(now, exc)
            return None
        if max(int(by_address), int(by_prefix)) > self.failures_limit:
            return 60 - int(now % 60)
        return None


class KeyCache:
    """Principals of recently seen keys, by SHA-256 of the token, so most requests skip the key
    lookup. Valid only while the Redis key generation is unchanged: every revocation bumps it after
    its commit and before its answer, so a revoked key is refused on the next request. Without
    Redis the cache is not used. Entries also expire after ``ttl_s``."""

    def __init__(self, ttl_s: float = 30.0, size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._generation: bytes | None = None
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, token_hash: str, generation: bytes | None) -> Principal | None:
        if generation is None:
            return None
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
            return None
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token_hash: str, generation: bytes | None, principal: Principal) -> None:
        if generation is None or generation != self._generation:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + self.ttl_s, principal)


async def bump_keys_generation(redis: Redis) -> None:
    """Invalidate every process's key cache (called after a revocation commits)."""
    try:
        await redis.incr(KEYS_GENERATION)
    except (RedisError, OSError) as exc:
        # Caches are bypassed while Redis is unreachable, and entries live 30 s at most.
        log.error("could not invalidate the API-key caches: %s", type(exc).__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: Redis
    geocoder: Geocoder
    cursors: CursorCodec
    limiter: RateLimiter = field(init=False)
    keys: KeyCache = field(init=False)
    candidates: CandidateCache = field(init=False)
    jobs: JobQueue = field(init=False)

    def __post_init__(self) -> None:
        self.candidates = CandidateCache()
        self.jobs = JobQueue(self.redis)
        self.limiter = RateLimiter(
            self.redis, self.settings.api.rate_limit_per_minute, self.settings.api.auth_failures_per_minute
        )
        self.keys = KeyCache()

    async def close(self) -> None:
        await self.db.dispose()
        await self.redis.aclose()
