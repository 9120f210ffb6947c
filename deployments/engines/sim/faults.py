"""Fault injection for the simulator (tests only; off unless `sim.stall_marker` is set).

`StallFault`: a request whose prompt contains the marker arms it; once that request has
produced its first tokens (so the gateway counts it as started and does not retry it
elsewhere), the engine's step loop waits on `hold()` for good. Every request on the
replica then stops making progress while the process, its event loop and the engine's own
health check stay alive, as with a GPU kernel that never returns. Nothing resets it: the
replica must be replaced (`deployments.watchdog` finds it; Serve replaces it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


class StallFault:
    def __init__(self, marker: str | None) -> None:
        self._marker = marker
        self._armed: set[str] = set()
        self._never = asyncio.Event()  # never set
        self.tripped = False

    def inspect(self, request_id: str, prompt: str) -> None:
        """Arm on a request whose prompt carries the marker."""
        if self._marker is not None and self._marker in prompt:
            self._armed.add(request_id)

    def after_step(self, emitted: Mapping[str, int]) -> None:
        """Trip once an armed request has produced tokens."""
        if any(emitted.get(request_id) for request_id in self._armed):
            self.tripped = True

    async def hold(self) -> None:
        """Return at once unless tripped; tripped, never return (until cancelled)."""
        if self.tripped:
            await self._never.wait()
