"""The gateway's /metrics covers every replica of a model, live.

A small app beside the shared one (`routing_apps.deployed_app`): one gateway and two
replicas of a simulated model. After some requests, one scrape of the gateway's /metrics
lists `modelyard_replica_*` for both replicas (their names as Serve knows them) and
`modelyard_desired_replicas` / `modelyard_replicas` for the model, as Serve's controller
states them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deployments.launcher import LocalCluster
from tests.integration.live import HTTP_TIMEOUT_S, QWEN
from tests.integration.routing_apps import app_config, apps_url, deployed_app, wait_for

pytestmark = pytest.mark.integration

APP = "fleet"
CONFIG = app_config([{"id": QWEN, "replicas": 2, "reserve_gpus": False, "sim": {"speedup": 200.0}}])
#: Replicas report every `routing.stats_period_s` (1 s); a few periods is plenty.
REPORT_TIMEOUT_S = 30.0

Series = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture(scope="module")
def base_url(live_cluster: LocalCluster) -> str:
    return apps_url(live_cluster)


@pytest.fixture(scope="module")
def fleet_app(base_url: str) -> Iterator[None]:
    with deployed_app(APP, CONFIG):
        yield


def scrape(base_url: str) -> Series:
    reply = requests.get(f"{base_url}/{APP}/metrics", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    out: Series = defaultdict(dict)
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return out


def replicas_of(series: Series, name: str) -> set[str]:
    return {dict(labels)["replica"] for labels in series.get(name, {}) if ("model", QWEN) in labels}


def test_metrics_list_every_replica_and_the_desired_count(fleet_app: None, base_url: str) -> None:
    served: set[str] = set()
    for i in range(8):
        reply = requests.post(
            f"{base_url}/{APP}/api/v1/chat/completions",
            json={
                "model": QWEN,
                "messages": [{"role": "user", "content": f"prompt {i} " + "word " * (20 * i)}],
                "max_tokens": 4,
            },
            timeout=HTTP_TIMEOUT_S,
        )
        assert reply.status_code == 200, reply.text
        served.add(reply.json()["id"])
    assert len(served) == 8

    def reported() -> Series | None:
        """Both replicas listed, and their reports already count the requests above."""
        series = scrape(base_url)
        names = replicas_of(series, "modelyard_replica_requests_waiting")
        queried = series.get("modelyard_replica_prefix_cache_queries_total", {})
        ttft = series.get("modelyard_replica_ttft_seconds", {})
        return series if len(names) == 2 and sum(queried.values()) > 0 and ttft else None

    series = wait_for(reported, REPORT_TIMEOUT_S, "both replicas' reports on /metrics")
    replicas = replicas_of(series, "modelyard_replica_requests_waiting")
    assert all(f"::{APP}#" in name for name in replicas), replicas  # Serve's full ids
    for name in (
        "modelyard_replica_requests_running",
        "modelyard_replica_kv_cache_usage",
        "modelyard_replica_prefix_cache_queries_total",
        "modelyard_replica_prefix_cache_hits_total",
    ):
        assert replicas_of(series, name) == replicas, name
    for labels, value in series["modelyard_replica_kv_cache_usage"].items():
        assert 0.0 <= value <= 1.0, labels
    # A replica has a recent TTFT once it served a request (absent before).
    assert replicas_of(series, "modelyard_replica_ttft_seconds") <= replicas
    assert all(v > 0 for v in series["modelyard_replica_ttft_seconds"].values())

    desired = series["modelyard_desired_replicas"]
    assert desired[(("model", QWEN),)] == 2
    states = series["modelyard_replicas"]
    assert states[(("model", QWEN), ("state", "RUNNING"))] == 2
    assert states[(("model", QWEN), ("state", "STARTING"))] == 0
