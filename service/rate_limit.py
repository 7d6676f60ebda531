"""Per-key request limits: a fixed one-minute window counted in Redis, so every API replica shares it."""

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import redis

WINDOW_S = 60


@dataclass(frozen=True)
class WindowCount:
    limit: int
    count: int
    reset_s: int  # seconds until the window ends and the count starts again

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # Short timeouts: a slow Redis must not stall every request (callers let requests through on errors).
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _now() -> float:
    return time.time()


def count_request(*, url: str, key_id: str, limit: int) -> WindowCount:
    """Counts one request of `key_id` in the current window; raises redis.RedisError when Redis is down."""
    now = _now()
    window = int(now // WINDOW_S)
    name = f"gft:ratelimit:{key_id}:{window}"
    pipe = _client(url).pipeline(transaction=True)
    pipe.incr(name)
    pipe.expire(name, 2 * WINDOW_S)
    count, _ = pipe.execute()
    return WindowCount(limit=limit, count=int(count), reset_s=max(1, math.ceil((window + 1) * WINDOW_S - now)))
