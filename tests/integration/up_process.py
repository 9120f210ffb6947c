"""`modelyard up` in a subprocess for tests: its output read line by line, killed if left.

Started in its own session (so a test can signal the whole group) with Ray's usage stats
off and no inherited `RAY_ADDRESS` (it must start its own local cluster).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

from tests.integration.live import MISTRAL

ROOT = Path(__file__).resolve().parents[2]


def one_model_config(path: Path, name: str) -> Path:
    """A cluster file serving one fast simulated model on a small local Ray cluster."""
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "ray": {"num_cpus": 4, "virtual_gpus": 2},
                "models": [{"id": MISTRAL, "engine": "sim", "sim": {"speedup": 200}}],
            }
        )
    )
    return path


def _pump(stream: Iterable[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


class UpProcess:
    def __init__(self, args: list[str], *, env_defaults: dict[str, str] | None = None) -> None:
        """Start `modelyard up ARGS`; `env_defaults` fill variables the caller's lacks."""
        env = {**(env_defaults or {}), **os.environ}
        env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
        env.pop("RAY_ADDRESS", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cluster.cli.main", "up", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=_pump, args=(self.process.stdout, self._lines), daemon=True).start()
        self.seen: list[str] = []

    def read_until(self, needle: str, timeout_s: float) -> bool:
        """Read output until a line contains `needle` (True), or it ends or time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.seen.append(line)
            if needle in line:
                return True
        return False

    def tail(self, count: int = 40) -> str:
        return "\n".join(self.seen[-count:])

    def kill(self) -> None:
        """Kill the whole process group if it is still running."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
