"""docs/examples/grpc_client.py runs as documented against a live in-process server."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tests.unit.gateway.grpc.harness import API_KEY, DEVSTRAL, QWEN, start_harness, stop_harness

EXAMPLE = Path(__file__).resolve().parents[4] / "docs" / "examples" / "grpc_client.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grpc_client_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_tour() -> None:
    harness, engines = await start_harness(speedup=1.0)  # real time: 4000 tokens take seconds
    try:
        seen = await load_example().main(harness.server.target, API_KEY, QWEN)
    finally:
        await stop_harness(harness, engines)
    assert seen["models"] == [QWEN, DEVSTRAL]
    assert seen["cached_1"] == 0
    assert isinstance(seen["cached_2"], int) and seen["cached_2"] > 0
    assert isinstance(seen["tool_arguments"], dict)
    assert {"city", "unit"} <= set(seen["tool_arguments"])
    assert seen["invalid_param"] == "n"
    assert seen["deadline"] == "exceeded"
