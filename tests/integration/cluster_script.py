"""Run a multi-node Ray script (`ray.cluster_utils.Cluster`) in a subprocess and read its
report: the last JSON line it prints. A subprocess, so that its nodes, Serve and temporary
directory are gone when it ends, whatever the test does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_cluster_script(module: str, *, prefix: str, timeout_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=prefix, dir="/tmp") as tmp:
        env = {
            **os.environ,
            "RAY_TMPDIR": tmp,
            "RAY_USAGE_STATS_ENABLED": "0",
            # cluster_utils nodes listen on 127.0.0.1; without this, Ray rewrites a loopback
            # address to the host's external IP when the driver connects (services.py).
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    last = [line for line in done.stdout.splitlines() if line.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    return result
