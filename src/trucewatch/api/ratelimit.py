"""A per-principal rate limit on the API: one token bucket per principal, in this process.

Each principal (the store's principal id, else its name) may make ``burst`` requests at
once and ``per_minute`` a minute on average; a request without a principal (a sign-in,
the public's view, a refused token) counts against its client's address. A request past
the limit is answered 429 in the one error shape (:mod:`trucewatch.api.errors`) with
``Retry-After``: the whole seconds until the bucket holds a request again.
``GET /api/v1/health`` is never limited (monitoring probes it).

The buckets live in this process's memory: several server processes each keep their
own, and a restart forgets them. ``trucewatch serve --rate-limit 0`` turns it off;
:func:`trucewatch.api.create_app` has it off unless given one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from trucewatch.errors import ConfigError


@dataclass(frozen=True)
class RateLimit:
    """``per_minute`` requests a minute on average, ``burst`` at once."""

    per_minute: float = 1200.0
    burst: int = 240

    def __post_init__(self) -> None:
        if not (self.per_minute > 0 and math.isfinite(self.per_minute)):
            raise ConfigError(f"rate limit of {self.per_minute} requests a minute",
                              fix="give a positive number of requests a minute, or 0 "
                                  "to turn the limit off")
        if self.burst < 1:
            raise ConfigError(f"rate-limit burst of {self.burst}",
                              fix="allow a burst of at least 1 request")


class RateLimiter:
    """Token buckets keyed by principal (or client), refilled at ``per_minute / 60`` a
    second up to ``burst``. ``clock`` is monotonic seconds (a test passes its own)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.clock = clock
        self.rate = limit.per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0.0 when allowed, else the seconds
        until it would be."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_keys:
                    self._forget(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget(self, now: float) -> None:
        """Drop the buckets that have refilled (they hold nothing a new one would not)."""
        full = [k for k, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.rate >= self.limit.burst]
        for k in full:
            del self._buckets[k]


def retry_after(wait_s: float) -> str:
    """The ``Retry-After`` value for a wait: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
