"""Merging engine metric texts: one HELP/TYPE per family, every series kept, junk skipped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cluster.gateway.telemetry.exposition import merge_expositions


def replica_text(replica: str, hits: float, running: float) -> str:
    registry = CollectorRegistry()
    labels = ["model_name", "replica"]
    Counter("vllm:prefix_cache_hits", "hits", labels, registry=registry).labels("m", replica).inc(
        hits
    )
    Gauge("vllm:num_requests_running", "running", labels, registry=registry).labels(
        "m", replica
    ).set(running)
    Histogram("vllm:e2e_request_latency_seconds", "e2e", labels, registry=registry).labels(
        "m", replica
    ).observe(0.2)
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("replica", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_two_replicas_merge_into_one_family_each() -> None:
    merged, bad = merge_expositions([replica_text("r0", 3, 1), replica_text("r1", 5, 0)])
    assert bad == 0
    helps = [line for line in merged.splitlines() if line.startswith("# HELP")]
    assert len(helps) == len(set(helps))
    got = samples(merged)
    assert got[("vllm:prefix_cache_hits_total", "r0")] == 3
    assert got[("vllm:prefix_cache_hits_total", "r1")] == 5
    assert got[("vllm:num_requests_running", "r0")] == 1
    assert got[("vllm:e2e_request_latency_seconds_count", "r1")] == 1


def test_one_text_round_trips_and_empty_or_bad_texts_are_skipped() -> None:
    text = replica_text("r0", 2, 2)
    merged, bad = merge_expositions(["", text, "this is { not prometheus"])
    assert bad == 1 and samples(merged) == samples(text)
    assert merge_expositions([]) == ("", 0)
