"""HandleBackend.health: a model scaled to zero is not probed (a probe would wake it).

The handle is a stand-in that counts health probes; with no request router in this
process (as for a model at zero replicas), `fleet.serving()` is empty.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from deployments.handle_backend import HandleBackend

QWEN = "qwen/qwen3-coder-flash"
MISTRAL = "mistralai/mistral-small-24b-awq"


class _Probe:
    def __init__(self, healthy: bool) -> None:
        self.healthy = healthy
        self.calls = 0

    async def _answer(self) -> bool:
        await asyncio.sleep(0)
        return self.healthy

    def remote(self) -> Any:
        self.calls += 1
        return self._answer()


class CountingHandle:
    def __init__(self, healthy: bool = True) -> None:
        self.health = _Probe(healthy)

    def options(self, **_: Any) -> CountingHandle:
        return self


@pytest.mark.parametrize(
    ("scales_to_zero", "qwen_healthy", "expected", "qwen_probes"),
    [
        # may scale to zero, no replica: healthy without a probe, even if a probe would fail
        (frozenset({QWEN}), False, {QWEN: True, MISTRAL: True}, 0),
        # min_replicas >= 1: always probed, its answer counts
        (frozenset(), False, {QWEN: False, MISTRAL: True}, 1),
        (frozenset(), True, {QWEN: True, MISTRAL: True}, 1),
    ],
)
async def test_health_skips_models_at_zero(
    scales_to_zero: frozenset[str],
    qwen_healthy: bool,
    expected: dict[str, bool],
    qwen_probes: int,
) -> None:
    qwen, mistral = CountingHandle(qwen_healthy), CountingHandle()
    backend = HandleBackend({QWEN: qwen, MISTRAL: mistral}, scales_to_zero=scales_to_zero)
    assert await backend.health() == expected
    assert qwen.health.calls == qwen_probes
    assert mistral.health.calls == 1
