"""`modelyard up` as a user runs it: start, become ready, answer, Ctrl-C (or SIGTERM), exit 0,
leave nothing.

A one-model cluster file keeps this quick; it runs beside the package's shared cluster (its
own Ray, own port). Every wait is bounded; on failure the whole process group is killed.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from bench.processes import free_port
from tests.integration.live import HTTP_TIMEOUT_S, MISTRAL
from tests.integration.up_process import UpProcess, one_model_config

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 150.0
STOP_TIMEOUT_S = 60.0
READY_LINE = "Press Ctrl-C to stop."


def _processes_of_session(session_dir: str) -> list[int]:
    """Pids whose command line names the Ray session directory (raylet, gcs, workers)."""
    name = Path(session_dir).name
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if name.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_serves_then_stops_on_signal(tmp_path: Path, stop_signal: signal.Signals) -> None:
    port = free_port()
    config = one_model_config(tmp_path / "one-model.yaml", "cli-test")
    up = UpProcess(["--config", str(config), "--port", str(port)])
    process, seen, read_until = up.process, up.seen, up.read_until

    try:
        assert read_until(READY_LINE, READY_TIMEOUT_S), "\n".join(seen[-40:])
        output = "\n".join(seen)
        assert f"modelyard is ready at http://127.0.0.1:{port}/api/v1" in output
        assert MISTRAL in output
        assert "engine: sim [SIMULATED]   replicas: 1   1 GPU/replica (TP1)   ready in" in output
        assert f"curl -s http://127.0.0.1:{port}/api/v1/chat/completions" in output
        assert f'base_url="http://127.0.0.1:{port}/api/v1"' in output
        sessions = [line.split(": ", 1)[1] for line in seen if line.startswith("Ray session")]
        assert len(sessions) == 1
        assert _processes_of_session(sessions[0])  # raylet, gcs, workers name it

        reply = requests.post(
            f"http://127.0.0.1:{port}/api/v1/chat/completions",
            json={
                "model": MISTRAL,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4,
            },
            timeout=HTTP_TIMEOUT_S,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["completion_tokens"] > 0

        process.send_signal(stop_signal)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
        read_until("stopped in", 5.0)
        assert any(line.startswith("stopped in") for line in seen), "\n".join(seen[-20:])
    finally:
        up.kill()

    # Nothing left behind: the port is closed and no process of its Ray session survives.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
    deadline = time.monotonic() + 20
    while _processes_of_session(sessions[0]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_of_session(sessions[0]) == []
