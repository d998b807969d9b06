"""Rate limits on ops and on open connections, per principal and per IP.

Token buckets kept in this process: each edge replica limits what passes through it,
which bounds a client's total at replicas * rate. Buckets of keys that went quiet are
dropped, so memory follows the active clients, not every client ever seen.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from edge.auth import Caller
from glassbox.errors import RateLimitedError


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class Limiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_connections_per_principal: int,
        max_connections_per_ip: int,
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_per_principal = max_connections_per_principal
        self.max_per_ip = max_connections_per_ip
        self._buckets: dict[str, _Bucket] = {}
        self._connections: Counter[str] = Counter()
        self._last_sweep = time.monotonic()

    def spend(self, caller: Caller, cost: float = 1.0) -> None:
        """Take `cost` from the caller's principal and IP buckets, or RateLimitedError."""
        now = time.monotonic()
        keys = (f"p:{caller.principal}", f"ip:{caller.ip}")
        buckets = [self._refilled(key, now) for key in keys]
        if any(b.tokens < cost for b in buckets):
            raise RateLimitedError(f"more than {self.rate:g} ops/s from {caller.principal}")
        for bucket in buckets:
            bucket.tokens -= cost
        if now - self._last_sweep > 60:
            self._sweep(now)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        return bucket

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate if self.rate else 0
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < full_after}
        self._last_sweep = now

    @contextmanager
    def connection(self, caller: Caller) -> Iterator[None]:
        """Hold one connection slot for the caller while the block runs."""
        principal, ip = f"p:{caller.principal}", f"ip:{caller.ip}"
        if self._connections[principal] >= self.max_per_principal:
            raise RateLimitedError(f"{caller.principal} has too many open connections")
        if self._connections[ip] >= self.max_per_ip:
            raise RateLimitedError(f"too many open connections from {caller.ip}")
        self._connections[principal] += 1
        self._connections[ip] += 1
        try:
            yield
        finally:
            self._connections[principal] -= 1
            self._connections[ip] -= 1
            self._connections += Counter()  # drop zero counts
