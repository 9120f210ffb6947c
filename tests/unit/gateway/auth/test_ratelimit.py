"""`RateLimiter`: requests and tokens per sliding minute, per key, with Retry-After."""

from __future__ import annotations

import pytest

from cluster.errors import RateLimited
from cluster.gateway.auth.protocol import KeyLimits
from cluster.gateway.auth.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# (limits, steps: ("req", expect_ok) | ("tokens", n) | ("wait", s) | ("retry", seconds))
CASES = [
    ("rpm-2", KeyLimits(rpm=2), [("req", True), ("req", True), ("req", False), ("retry", 60)]),
    (
        "rpm-window-slides",
        KeyLimits(rpm=1),
        [("req", True), ("wait", 30), ("req", False), ("retry", 30), ("wait", 30), ("req", True)],
    ),
    (
        "tpm",
        KeyLimits(tpm=100),
        [("req", True), ("tokens", 100), ("req", False), ("wait", 61), ("req", True)],
    ),
    ("no-limits", KeyLimits(), [("req", True)] * 50),
]


@pytest.mark.parametrize(("limits", "steps"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rates(limits: KeyLimits, steps: list[tuple[str, object]]) -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    last: RateLimited | None = None
    for kind, value in steps:
        if kind == "req":
            try:
                limiter.admit("k", limits)
                ok = True
            except RateLimited as err:
                ok, last = False, err
            assert ok is value
        elif kind == "tokens":
            limiter.add_tokens("k", int(str(value)))
        elif kind == "wait":
            clock.now += float(str(value))
        else:
            assert last is not None and last.retry_after_s == value
            assert last.http_status == 429


def test_keys_are_counted_apart() -> None:
    limiter = RateLimiter(Clock())
    limiter.admit("a", KeyLimits(rpm=1))
    limiter.admit("b", KeyLimits(rpm=1))
    with pytest.raises(RateLimited):
        limiter.admit("a", KeyLimits(rpm=1))
