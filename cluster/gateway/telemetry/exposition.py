"""Merge Prometheus text expositions from several sources into one valid page.

The gateway's /metrics appends the engines' own metrics (vLLM's `vllm:*`, one text per
model replica asked). Concatenating texts would repeat `# HELP`/`# TYPE` for a family that
two replicas both report, which Prometheus rejects; so each text is parsed, samples of the
same family are gathered under one header (first HELP/TYPE wins), and the result is
rendered once. Series stay distinct because every engine labels its samples (`replica`,
`model_name`). A text that does not parse is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge_expositions(texts: Iterable[str]) -> tuple[str, int]:
    """(one exposition with every family once, number of texts that did not parse)."""
    merged: dict[str, Metric] = {}
    bad = 0
    for text in texts:
        if not text.strip():
            continue
        try:
            families = list(text_string_to_metric_families(text))
        except ValueError:
            bad += 1
            continue
        for family in families:
            into = merged.get(family.name)
            if into is None:
                merged[family.name] = family
            elif into.type == family.type:
                into.samples.extend(family.samples)
    if not merged:
        return "", bad
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(merged.values())))
    return generate_latest(registry).decode("utf-8"), bad
