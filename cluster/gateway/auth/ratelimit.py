"""Per-key request and token rates over a sliding 60-second window (one gateway process).

    over rpm:  requests admitted in the last 60 s >= rpm
    over tpm:  tokens recorded in the last 60 s   >= tpm
    Retry-After = seconds until the oldest counted entry leaves the window (at least 1)

Requests count when admitted; tokens when the request is recorded (they are known only
then), so a burst can overshoot `tpm` by the requests already in flight. Each gateway
replica counts its own traffic: with R replicas behind a balancer a key gets up to R x its
rate (budgets, unlike rates, are enforced in the database across replicas).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cluster.errors import RateLimited
from cluster.gateway.auth.protocol import KeyLimits

WINDOW_S = 60.0


@dataclass(slots=True)
class _Window:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    token_sum: int = 0

    def trim(self, now: float) -> None:
        start = now - WINDOW_S
        while self.requests and self.requests[0] <= start:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= start:
            self.token_sum -= self.tokens.popleft()[1]


def _retry_after(oldest: float, now: float) -> int:
    return max(1, math.ceil(oldest + WINDOW_S - now))


class RateLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def admit(self, key_id: str, limits: KeyLimits) -> None:
        """Count one request, or raise `RateLimited` (module docstring)."""
        if limits.rpm is None and limits.tpm is None:
            return
        now = self._clock()
        window = self._windows.setdefault(key_id, _Window())
        window.trim(now)
        if limits.rpm is not None and len(window.requests) >= limits.rpm:
            raise RateLimited(
                f"Rate limit reached for key {key_id}: {limits.rpm} requests per minute.",
                retry_after_s=_retry_after(window.requests[0], now),
            )
        if limits.tpm is not None and window.token_sum >= limits.tpm:
            raise RateLimited(
                f"Rate limit reached for key {key_id}: {limits.tpm} tokens per minute.",
                code="tokens_per_minute_exceeded",
                retry_after_s=_retry_after(window.tokens[0][0], now),
            )
        window.requests.append(now)

    def add_tokens(self, key_id: str, tokens: int) -> None:
        window = self._windows.get(key_id)
        if window is None or tokens <= 0:
            return
        window.tokens.append((self._clock(), tokens))
        window.token_sum += tokens
