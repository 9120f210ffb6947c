"""Sustained load, the CI version: `python -m bench.soak` for 60 s (the 10-minute run's
figures and plot are in docs/RELIABILITY.md).

The real app (local.yaml's simulated models and the gateway on Ray Serve) under Locust at a
fixed 8 requests per second over streamed and non-streamed chat and completions requests.
Asserted from the run's `summary.json`: no request failed, the achieved rate is within 5 %
of the target, and the RSS of the gateway replica and of every model replica grew less
than 10 % after the warm-up (the first 20 % of the run). The command itself applies the
same verdict (exit status 0).
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404
import sys
from pathlib import Path

import pytest

from cluster.config.loader import default_config_path

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DURATION_S = 60
RATE = 8.0
RUN_TIMEOUT_S = 420


def test_sixty_second_soak_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    argv = [
        sys.executable, "-m", "bench.soak", "--duration-s", str(DURATION_S),
        "--rate", str(RATE), "--sample-s", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(  # nosec B603
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    print(done.stdout[-6000:])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["errors"] == 0, summary["error_kinds"]
    assert summary["requests"] >= 0.95 * RATE * DURATION_S
    assert abs(summary["achieved_rate"] - RATE) <= 0.05 * RATE, summary["achieved_rate"]
    sampled = {m["deployment"] for m in summary["memory"]}
    sim_models = sum(1 for line in default_config_path().read_text().splitlines()
                     if line.strip() == "engine: sim")  # fmt: skip
    assert "gateway" in sampled and len(sampled) == 1 + sim_models, sampled
    for process in summary["memory"]:
        assert process["growth"] < 0.10, process
    assert set(summary["by_kind"]) == {"chat", "chat-stream", "completion", "completion-stream"}
    assert summary["ttft_s"]["p50"] > 0
    assert (tmp_path / "soak.png").stat().st_size > 10_000
    assert done.returncode == 0, done.stdout[-3000:]
