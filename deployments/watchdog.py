"""`ProgressWatchdog`: does one replica's engine still make progress?

Pure (no Ray): the model replica (`deployments.model_deployment.ModelReplica`) tells it when
a request starts (`began`), when the engine produced output for any request (`progressed`)
and when a request ends (`ended`); Serve's health check asks `stalled_for(now)`.

    quiet(now)   = now - last_mark                    while requests are in flight, else 0
    last_mark    = time of the latest output or request the engine ended, or when work
                   began (the in-flight count went from 0 to 1)
    stalled      = quiet(now) > stall_after_s         (then it stays stalled: `tripped`)

A new request arriving while others are in flight does not move `last_mark`: an engine
whose loop is stuck still accepts requests, and that must not hide the stall. Nor does a
request cancelled by its caller (`ended(progressed=False)`): clients giving up on a stuck
engine must not hide it either. Once stalled,
the replica stays unhealthy until Serve replaces it (`trip` is sticky).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressWatchdog:
    def __init__(self, stall_after_s: float, *, clock: Callable[[], float] = time.monotonic):
        if stall_after_s <= 0:
            raise ValueError("stall_after_s must be positive")
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._in_flight = 0
        self._last_mark = clock()
        self.tripped_after_s: float | None = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def tripped(self) -> bool:
        return self.tripped_after_s is not None

    def began(self) -> None:
        if self._in_flight == 0:
            self._last_mark = self._clock()
        self._in_flight += 1

    def progressed(self) -> None:
        self._last_mark = self._clock()

    def ended(self, *, progressed: bool = True) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        if progressed:
            self._last_mark = self._clock()

    def quiet_s(self) -> float:
        """Seconds without output while requests are in flight (0 when idle)."""
        if self._in_flight == 0:
            return 0.0
        return max(0.0, self._clock() - self._last_mark)

    def check(self) -> float | None:
        """None while healthy; else the seconds the engine has been quiet (and trip)."""
        if self.tripped_after_s is None:
            quiet = self.quiet_s()
            if quiet > self.stall_after_s:
                self.tripped_after_s = quiet
        return self.tripped_after_s
