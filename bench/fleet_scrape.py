"""What the fleet series cost a gateway's /metrics scrape, in process.

    python -m bench.fleet_scrape [--models 4] [--replicas 16] [--runs 5] [--scrapes 200]

Per scrape: every replica's routing-stats report (the dict a router holds) turned into
`ReplicaStats` (`deployments.fleet.replica_stats_from`), the snapshot set on the gateway's
registry, and the whole registry rendered (`GatewayMetrics.render`, request series
included). Prints the median over `runs` of the mean time per scrape, with and without the
fleet, so the difference is what the fleet adds. Serve's controller call (cached 5 s,
bounded 2 s) is not included.
"""

from __future__ import annotations

import argparse
import statistics
import time

from cluster.gateway.telemetry import GatewayMetrics
from cluster.gateway.telemetry.fleet import FleetSnapshot, ModelReplicas
from deployments.fleet import replica_stats_from


def reports(models: int, replicas: int) -> dict[str, dict[str, dict[str, object]]]:
    return {
        f"vendor/model-{m}": {
            f"SERVE_REPLICA::modelyard#model-{m}#{r:08x}": {
                "running": 12,
                "waiting": 3,
                "queue_len": 15,
                "kv_usage": 0.62,
                "kv_blocks_total": 40_000,
                "block_size": 16,
                "prefix_cache_queries": 12_345_678,
                "prefix_cache_hits": 4_567_890,
                "prefix_caching": True,
                "recent_ttft_s": 0.41,
                "kv_events": "tcp://10.0.0.1:40000",
            }
            for r in range(replicas)
        }
        for m in range(models)
    }


def scrape_s(metrics: GatewayMetrics, fleet: dict[str, dict[str, dict[str, object]]]) -> float:
    started = time.perf_counter()
    if fleet:
        snapshot = FleetSnapshot(
            replicas=tuple(
                replica_stats_from(model, name, stats)
                for model, by_name in fleet.items()
                for name, stats in sorted(by_name.items())
            ),
            models=tuple(
                ModelReplicas(model=m, desired=len(r), states={"RUNNING": len(r)})
                for m, r in fleet.items()
            ),
        )
        metrics.fleet.update(snapshot)
    metrics.render()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=16, help="per model")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=200, help="per run")
    args = parser.parse_args()
    fleet = reports(args.models, args.replicas)
    results: dict[str, list[float]] = {"without fleet": [], "with fleet": []}
    for _ in range(args.runs):
        for label, data in (("without fleet", {}), ("with fleet", fleet)):
            metrics = GatewayMetrics()
            for m in fleet:  # request series of every model, as a busy gateway has
                metrics.requests.labels(m, "chat", "200").inc()
                metrics.ttft.labels(m).observe(0.3)
                metrics.duration.labels(m, "chat").observe(2.0)
            times = [scrape_s(metrics, data) for _ in range(args.scrapes)]
            results[label].append(statistics.fmean(times))
    total = args.models * args.replicas
    print(f"{args.models} models x {args.replicas} replicas = {total} replicas")
    for label, means in results.items():
        ms = statistics.median(means) * 1000
        print(f"  {label}: {ms:.2f} ms per scrape (median of {args.runs} runs)")


if __name__ == "__main__":
    main()
