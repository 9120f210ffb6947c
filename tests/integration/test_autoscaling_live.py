"""The autoscaler live, through `modelyard up` (make up's app) with a test cluster file:

- a burst of requests scales a simulated model from 1 to at least 3 replicas, and after
  the burst it goes back to its minimum (one replica at a time);
- with scale to zero on (min_replicas 0), a model idle for a few seconds goes to zero
  replicas, and a request sent then is answered once a replica has woken up, not refused.

Replica counts are read from the gateway's `GET /debug/routing` (the request router's
running replicas). The gateway's `/metrics` shows the policy's decisions as
`modelyard_desired_replicas` (0 for the idle model, though its file says `replicas: 1`;
at least 3 during the burst) and lists every replica in `modelyard_replica_*`; scraping
it does not wake the model at zero, and neither does `GET /health`, which answers 200 for
the model at zero without probing it. The cluster file shortens every window and delay so
the whole test takes about two minutes; every wait is bounded and the process group is
killed at the end.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.live import MISTRAL, QWEN, free_port
from tests.integration.up_process import UpProcess

pytestmark = pytest.mark.integration

READY_TIMEOUT_S = 180.0
SCALE_TIMEOUT_S = 120.0
#: /metrics reads Serve's target counts at most every 5 s (deployments.fleet).
METRICS_TIMEOUT_S = 20.0
READY_LINE = "Press Ctrl-C to stop."

FAST = {
    "stable_window_s": 6.0,
    "panic_window_s": 2.0,
    "startup_s": 5.0,
    "scale_down_delay_s": 8.0,
    "scale_down_interval_s": 2.0,
    "metrics_interval_s": 0.5,
}


def cluster_file(path: Path, port: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "autoscale-test",
                "gateway": {"host": "127.0.0.1", "port": port},
                "ray": {"num_cpus": 8, "virtual_gpus": 8},
                "routing": {"debug_endpoint": True},
                "models": [
                    {
                        "id": MISTRAL,
                        "engine": "sim",
                        "replicas": 1,
                        "autoscaling": {
                            **FAST,
                            "min_replicas": 1,
                            "max_replicas": 4,
                            "target_ongoing_per_replica": 4.0,
                        },
                    },
                    {
                        "id": QWEN,
                        "engine": "sim",
                        "replicas": 1,
                        "sim": {"speedup": 50.0},
                        "autoscaling": {
                            **FAST,
                            "min_replicas": 0,
                            "max_replicas": 2,
                            "scale_to_zero_idle_s": 4.0,
                        },
                    },
                ],
            }
        )
    )
    return path


def chat(base: str, model: str, max_tokens: int, timeout: float = 120.0) -> requests.Response:
    return requests.post(
        f"{base}/api/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": "Tell me a long story."}],
            "max_tokens": max_tokens,
        },
        timeout=timeout,
    )


def replicas(base: str, model: str) -> int | None:
    reply = requests.get(f"{base}/debug/routing", timeout=10)
    assert reply.status_code == 200, reply.text
    snapshot: dict[str, Any] | None = reply.json().get(model)
    return None if snapshot is None else len(snapshot["replicas"])


def scrape(base: str) -> dict[str, dict[str, list[float]]]:
    """/metrics: sample name -> model -> values (one per replica or state)."""
    reply = requests.get(f"{base}/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    out: dict[str, dict[str, list[float]]] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            model = sample.labels.get("model", "")
            out.setdefault(sample.name, {}).setdefault(model, []).append(sample.value)
    return out


def desired(base: str, model: str) -> int | None:
    values = scrape(base).get("modelyard_desired_replicas", {}).get(model)
    return None if not values else int(values[0])


def exported_replicas(base: str, model: str) -> int:
    return len(scrape(base).get("modelyard_replica_requests_running", {}).get(model, []))


def wait_for(predicate: Any, timeout_s: float, what: str) -> list[int | None]:
    seen: list[int | None] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value, ok = predicate()
        seen.append(value)
        if ok:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s; replica counts seen {seen[-40:]}")


def test_burst_scales_out_and_back_and_zero_wakes_up(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    up = UpProcess(["--config", str(cluster_file(tmp_path / "autoscale.yaml", port))])
    stop = threading.Event()
    failures: list[str] = []

    def client() -> None:
        while not stop.is_set():
            try:
                reply = chat(base, MISTRAL, 300)
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text[:200]}")
            except requests.RequestException as err:
                failures.append(repr(err))

    try:
        assert up.read_until(READY_LINE, READY_TIMEOUT_S), "\n".join(up.seen[-40:])
        # Build both request routers (so /debug/routing shows them), one replica each.
        assert chat(base, MISTRAL, 4).status_code == 200
        assert chat(base, QWEN, 4).status_code == 200
        assert replicas(base, MISTRAL) == 1

        # Scale to zero: QWEN is idle; after scale_to_zero_idle_s it has no replica.
        wait_for(lambda: (n := replicas(base, QWEN), n == 0), SCALE_TIMEOUT_S, "QWEN at zero")
        wait_for(lambda: (d := desired(base, QWEN), d == 0), METRICS_TIMEOUT_S, "QWEN desired 0")
        # Health checks (a load balancer's, a monitor's) neither fail nor wake it: it is
        # still at zero after the burst below.
        for _ in range(3):
            health = requests.get(f"{base}/health", timeout=30)
            assert health.status_code == 200, health.text
            assert health.json()["models"][QWEN] is True

        # A burst: 24 clients keep ~24 requests ongoing (target 4 per replica).
        threads = [threading.Thread(target=client, daemon=True) for _ in range(24)]
        for thread in threads:
            thread.start()
        try:
            up_seen = wait_for(
                lambda: (n := replicas(base, MISTRAL), (n or 0) >= 3),
                SCALE_TIMEOUT_S,
                "MISTRAL scaled out to >= 3 replicas",
            )
            wait_for(
                lambda: (d := desired(base, MISTRAL), (d or 0) >= 3),
                METRICS_TIMEOUT_S,
                "MISTRAL desired >= 3 on /metrics",
            )
            wait_for(
                lambda: (n := exported_replicas(base, MISTRAL), n >= 3),
                METRICS_TIMEOUT_S,
                "MISTRAL's replicas on /metrics",
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=150)
        assert not failures, failures[:5]
        assert max(n or 0 for n in up_seen) <= 4  # max_replicas

        # A request to the model at zero replicas waits for the wake-up and is answered.
        assert replicas(base, QWEN) == 0
        started = time.monotonic()
        woken = chat(base, QWEN, 8, timeout=SCALE_TIMEOUT_S)
        assert woken.status_code == 200, woken.text
        assert woken.json()["usage"]["completion_tokens"] > 0
        assert replicas(base, QWEN) == 1
        print(f"woken after {time.monotonic() - started:.1f} s")

        # After the burst: back to the minimum, one replica at a time.
        down_seen = wait_for(
            lambda: (n := replicas(base, MISTRAL), n == 1), SCALE_TIMEOUT_S, "MISTRAL back to 1"
        )
        counts = [n for n in down_seen if n is not None]
        assert all(b >= a - 1 for a, b in itertools.pairwise(counts)), counts
        # It was modelyard's policy that decided (Serve's controller logs each decision).
        sessions = [line.split(": ", 1)[1] for line in up.seen if line.startswith("Ray session")]
        assert len(sessions) == 1, up.seen[-20:]
        logs = "".join(
            p.read_text("utf-8", errors="replace")
            for p in Path(sessions[0]).glob("logs/serve/controller_*.log")
        )
        assert "Instantiating class-callable autoscaling policy 'ModelyardServePolicy'" in logs
        assert "(scale up" in logs and "(scale down" in logs and "(scale to zero" in logs

        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(timeout=60) == 0
    finally:
        stop.set()
        up.kill()
