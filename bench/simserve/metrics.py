"""vLLM-style engine gauges on /metrics, computed from the engine's own stats.

Third-party routers and autoscalers scrape a vLLM server's `/metrics` for these series, so
`modelyard sim serve` exposes the same names, types and meaning, read from
`Engine.stats()` at scrape time (nothing is cached between scrapes):

    vllm:num_requests_running         gauge    requests in the running batch
    vllm:num_requests_waiting         gauge    requests queued for admission
    vllm:kv_cache_usage_perc          gauge    KV blocks in use / capacity, a FRACTION in
                                               [0, 1] (vLLM's name says perc; its value is 0-1)
    vllm:prefix_cache_queries_total   counter  prompt tokens looked up in the prefix cache
    vllm:prefix_cache_hits_total      counter  of those, tokens found cached

Every sample carries `model_name` (the served model's public id) and `engine="0"`, the
labels vLLM's `PrometheusStatLogger` puts on them. The gauge names are constants here for
the readers of these pages too (the benchmark front, `bench.front`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from cluster.engine import EngineStats

LABELS = ("model_name", "engine")
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"


class EngineStatsCollector(Collector):
    """A Prometheus collector over `stats()` of one engine serving `model_name`."""

    def __init__(self, stats: Callable[[], EngineStats], model_name: str) -> None:
        self._stats = stats
        self._labels = [model_name, "0"]

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        gauge, counter = GaugeMetricFamily, CounterMetricFamily
        rows: list[tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, float]] = [
            (gauge, RUNNING, "Number of requests in model execution batches.", s.running),
            (gauge, WAITING, "Number of requests waiting to be processed.", s.waiting),
            (gauge, KV_USAGE, "KV-cache usage. 1 means 100 percent usage.", s.kv_usage),
            (
                counter,
                "vllm:prefix_cache_queries",
                "Prefix cache queries, in terms of number of queried tokens.",
                s.prefix_cache_queries,
            ),
            (
                counter,
                "vllm:prefix_cache_hits",
                "Prefix cache hits, in terms of number of cached tokens.",
                s.prefix_cache_hits,
            ),
        ]
        for kind, name, doc, value in rows:
            family = kind(name, doc, labels=LABELS)
            family.add_metric(self._labels, value)
            yield family
