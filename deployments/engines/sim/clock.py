"""Clocks for the simulator: real time scaled by `speedup`, or virtual time.

Times are in SIMULATED seconds. `RealClock(speedup)` runs `speedup` simulated seconds per
wall second (`sleep(d)` waits `d / speedup` wall seconds). `VirtualClock` advances only when
someone sleeps on it, and then at once: a discrete-event replay or a test runs as fast as
the host allows and is reproducible.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Simulated seconds since the clock's origin."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass."""
        ...


class RealClock:
    def __init__(self, speedup: float = 1.0) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be > 0")
        self.speedup = speedup
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.speedup

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speedup)


class VirtualClock:
    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance at once, then yield to the event loop so other tasks can run."""
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
