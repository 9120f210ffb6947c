"""Constants and helpers shared by the integration tests (imported by conftest and tests)."""

from __future__ import annotations

import time
from typing import Any

import yaml

from bench.processes import free_port
from cluster.config.loader import default_config_path

#: Simulated seconds per wall second: answers of a few dozen tokens take milliseconds.
SPEEDUP = 200.0
START_TIMEOUT_S = 180.0
HTTP_TIMEOUT_S = 30.0

DEVSTRAL = "mistralai/devstral-small"
MINIMAX = "minimax/minimax-m1"
QWEN = "qwen/qwen3-coder-flash"
MISTRAL = "casperhansen/mistral-small-24b-instruct-2501-awq"
MISTRAL_ALIAS = "casperhansen-mistral-small-24b-instruct-2501-awq"
MODEL_IDS = [DEVSTRAL, MINIMAX, QWEN, MISTRAL]
ALL_NAMES = [*MODEL_IDS, MISTRAL_ALIAS]


def local_config_data(
    port: int, *, grpc_port: int | None = None, speedup: float = SPEEDUP
) -> dict[str, Any]:
    """local.yaml with the gateway on `port` (gRPC on `grpc_port`, else a free port, never
    local.yaml's fixed one) and every simulator sped up."""
    data: dict[str, Any] = yaml.safe_load(default_config_path().read_text("utf-8"))
    data["gateway"] = {
        **data.get("gateway", {}),
        "host": "127.0.0.1",
        "port": port,
        "grpc_port": grpc_port or free_port(),
    }
    # The simulated models only: local.yaml's real-vLLM model is covered by tests/vllm.
    data["models"] = [m for m in data["models"] if m.get("engine", "sim") == "sim"]
    for model in data["models"]:
        model["sim"] = {**model.get("sim", {}), "speedup": speedup}
    return data


def wait_app_running(app_name: str, timeout_s: float) -> None:
    """Poll Serve until `app_name` is RUNNING (raises TimeoutError)."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = serve.status().applications.get(app_name)
        if app is not None and str(app.status.value) == "RUNNING":
            return
        time.sleep(0.25)
    raise TimeoutError(f"app {app_name!r} not RUNNING after {timeout_s:.0f}s")
