"""One live gateway (HTTP + gRPC over simulator engines) for every property-based suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.fuzz.gateway import LiveGateway, live_gateway


@pytest.fixture(scope="package")
def gateway() -> Iterator[LiveGateway]:
    with live_gateway() as live:
        yield live
