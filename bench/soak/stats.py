"""The soak's figures from its raw data: request records (`bench.soak.load`) and RSS
samples (`bench.soak.memory`). Pure functions; times are seconds since the load started.

- achieved rate = requests started in [0, duration) / duration;
- latency percentiles by nearest rank: p = sorted[ceil(q * n) - 1];
- RSS growth of one process after warm-up = (final - baseline) / baseline, where baseline is
  the median of its first three samples at or after the warm-up's end (`warmup_share` of
  the run) and final the median of its last three; `peak_growth` uses its largest sample
  after the warm-up instead of final. A process with no sample after the warm-up (a replica
  that died during it) has no growth figure.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.soak.memory import RssSample

QUANTILES = (0.5, 0.9, 0.99)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max of `values` (empty: nothing)."""
    if not values:
        return {}
    out = {f"p{round(q * 100)}": percentile(values, q) for q in QUANTILES}
    out["max"] = max(values)
    return out


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    deployment: str
    pid: int
    baseline_bytes: int
    final_bytes: int
    peak_bytes: int

    @property
    def growth(self) -> float:
        return (self.final_bytes - self.baseline_bytes) / self.baseline_bytes

    @property
    def peak_growth(self) -> float:
        return (self.peak_bytes - self.baseline_bytes) / self.baseline_bytes


def memory_after_warmup(samples: Iterable[RssSample], warmup_end_s: float) -> list[ProcessMemory]:
    series: dict[tuple[str, int], list[RssSample]] = {}
    for sample in samples:
        series.setdefault((sample.deployment, sample.pid), []).append(sample)
    out = []
    for (deployment, pid), taken in sorted(series.items()):
        after = sorted((s for s in taken if s.t >= warmup_end_s), key=lambda s: s.t)
        if not after:
            continue
        rss = [s.rss_bytes for s in after]
        baseline = int(statistics.median(rss[:3]))
        final = int(statistics.median(rss[-3:]))
        out.append(ProcessMemory(deployment, pid, baseline, final, max(rss)))
    return out


@dataclass
class SoakSummary:
    duration_s: float
    target_rate: float
    requests: int
    errors: int
    achieved_rate: float
    by_kind: dict[str, int]
    error_kinds: dict[str, int]
    total_s: dict[str, float]
    ttft_s: dict[str, float]
    total_streamed_s: dict[str, float]
    total_unary_s: dict[str, float]
    memory: list[ProcessMemory] = field(default_factory=list)

    @property
    def max_growth(self) -> float:
        return max((m.growth for m in self.memory), default=0.0)

    def as_json(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "target_rate": self.target_rate,
            "requests": self.requests,
            "errors": self.errors,
            "achieved_rate": self.achieved_rate,
            "by_kind": self.by_kind,
            "error_kinds": self.error_kinds,
            "total_s": self.total_s,
            "ttft_s": self.ttft_s,
            "total_streamed_s": self.total_streamed_s,
            "total_unary_s": self.total_unary_s,
            "max_rss_growth": self.max_growth,
            "memory": [
                {
                    "deployment": m.deployment,
                    "pid": m.pid,
                    "baseline_bytes": m.baseline_bytes,
                    "final_bytes": m.final_bytes,
                    "peak_bytes": m.peak_bytes,
                    "growth": m.growth,
                    "peak_growth": m.peak_growth,
                }
                for m in self.memory
            ],
        }


def summarize(
    records: Sequence[dict[str, Any]],
    samples: Iterable[RssSample],
    *,
    started: float,
    duration_s: float,
    target_rate: float,
    warmup_share: float,
) -> SoakSummary:
    """`records` as written by the load generator (epoch `t`), `started` the load's start
    (epoch seconds)."""
    inside = [r for r in records if 0 <= r["t"] - started < duration_s]
    ok = [r for r in records if r["ok"]]
    errors = [r for r in records if not r["ok"]]
    streamed = [r["total_s"] for r in ok if r["kind"].endswith("-stream")]
    unary = [r["total_s"] for r in ok if not r["kind"].endswith("-stream")]
    return SoakSummary(
        duration_s=duration_s,
        target_rate=target_rate,
        requests=len(records),
        errors=len(errors),
        achieved_rate=len(inside) / duration_s,
        by_kind=dict(sorted(Counter(r["kind"] for r in records).items())),
        error_kinds=dict(Counter(str(r["error"]) for r in errors).most_common()),
        total_s=spread([r["total_s"] for r in ok]),
        ttft_s=spread(
            [r["ttft_s"] for r in ok if r["kind"].endswith("-stream") and r["ttft_s"] is not None]
        ),
        total_streamed_s=spread(streamed),
        total_unary_s=spread(unary),
        memory=memory_after_warmup(samples, warmup_share * duration_s),
    )


@dataclass(frozen=True, slots=True)
class Bucket:
    start_s: float
    rate: float
    errors: int
    total_p50_s: float | None
    total_p95_s: float | None
    ttft_p50_s: float | None


def timeline(
    records: Sequence[dict[str, Any]], *, started: float, duration_s: float, bucket_s: float
) -> list[Bucket]:
    """Per `bucket_s` window (by request start): starts per second, errors, latencies."""
    count = max(1, math.ceil(duration_s / bucket_s))
    grouped: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for record in records:
        index = int((record["t"] - started) // bucket_s)
        if 0 <= index < count:
            grouped[index].append(record)
    out = []
    for index, group in enumerate(grouped):
        totals = [r["total_s"] for r in group if r["ok"]]
        ttfts = [
            r["ttft_s"]
            for r in group
            if r["ok"] and r["kind"].endswith("-stream") and r["ttft_s"] is not None
        ]
        out.append(
            Bucket(
                start_s=index * bucket_s,
                rate=len(group) / bucket_s,
                errors=sum(1 for r in group if not r["ok"]),
                total_p50_s=percentile(totals, 0.5) if totals else None,
                total_p95_s=percentile(totals, 0.95) if totals else None,
                ttft_p50_s=percentile(ttfts, 0.5) if ttfts else None,
            )
        )
    return out
