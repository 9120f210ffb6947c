"""Fixtures of the gRPC tests (the harness itself is in `harness.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.gateway.grpc.harness import Harness, start_harness, stop_harness


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h, engines = await start_harness()
    yield h
    await stop_harness(h, engines)


@pytest.fixture
async def slow_harness() -> AsyncIterator[Harness]:
    """Slower than real time: a long generation takes minutes, so a deadline expires mid-stream."""
    h, engines = await start_harness(speedup=0.1)
    yield h
    await stop_harness(h, engines)
