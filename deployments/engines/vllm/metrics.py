"""vLLM's Prometheus metrics (`vllm:*`) of this process, as exposition text.

vLLM's `PrometheusStatLogger` registers its metrics in `prometheus_client`'s default
registry of the process that runs `AsyncLLM` (here: the replica). `engine_metrics_text`
collects only the `vllm:` families from that registry and adds a `replica` label to every
sample, so texts from several replicas can be concatenated into one /metrics page without
clashing series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

PREFIX = "vllm:"


class _VLLMOnly(Collector):
    def __init__(self, source: CollectorRegistry, replica_id: str) -> None:
        self._source = source
        self._replica_id = replica_id

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            if not family.name.startswith(PREFIX):
                continue
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                labels = {**sample.labels, "replica": self._replica_id}
                labelled.samples.append(sample._replace(labels=labels))
            yield labelled


def engine_metrics_text(replica_id: str, source: CollectorRegistry | None = None) -> str:
    """The `vllm:*` metrics of this process, each sample labelled `replica=<replica_id>`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_VLLMOnly(source or REGISTRY, replica_id))
    return generate_latest(registry).decode("utf-8")
