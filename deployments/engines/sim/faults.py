"""Fault injection for the simulator (tests only; off unless `sim.stall_marker` is set).

`StallFault`: a request whose prompt contains the marker trips it, and from then on the
engine's step loop waits on `hold()` for good — every request on the replica stops making
progress while the process, its event loop and its health endpoint stay alive, as with a
GPU kernel that never returns. Nothing resets it: the replica must be replaced
(`deployments.watchdog` finds it; Serve replaces it).
"""

from __future__ import annotations

import asyncio


class StallFault:
    def __init__(self, marker: str | None) -> None:
        self._marker = marker
        self._never = asyncio.Event()  # never set
        self.tripped = False

    def inspect(self, prompt: str) -> None:
        """Trip if `prompt` carries the marker."""
        if self._marker is not None and self._marker in prompt:
            self.tripped = True

    async def hold(self) -> None:
        """Return at once unless tripped; tripped, never return (until cancelled)."""
        if self.tripped:
            await self._never.wait()
