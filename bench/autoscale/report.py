"""Per-policy numbers of one replay, as a table and as JSON.

Everything is counted after the replay's warm-up (`ReplayConfig.warmup_s`).

- attainment: share of all requests that met both SLOs (TTFT and time per output token);
  timed-out requests count as misses;
- replica-hours: replica time from launch to stop, starting replicas included;
- timed out: requests that got no first token within the timeout;
- actions: policy decisions that changed the replica count; direction changes: actions
  whose direction (up/down) differs from the previous action's; per 10 min of replay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.autoscale.fleet import Request
from bench.autoscale.replay import ReplayConfig, ReplayResult


@dataclass(frozen=True, slots=True)
class PolicyReport:
    policy: str
    requests: int
    attainment: float
    ttft_ok: float
    tpot_ok: float
    ttft_p50_s: float
    ttft_p99_s: float
    replica_hours: float
    timed_out: int
    actions: int
    direction_changes: int
    direction_changes_per_10min: float
    peak_replicas: int

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def met_slo(r: Request, cfg: ReplayConfig) -> bool:
    """Both objectives met (a timed-out request meets neither)."""
    if r.timed_out or r.first is None or r.done is None:
        return False
    tpot = (r.done - r.first) / (r.output - 1) if r.output > 1 else 0.0
    return r.first - r.arrival <= cfg.ttft_slo_s and tpot <= cfg.tpot_slo_s


def summarize(result: ReplayResult, cfg: ReplayConfig) -> PolicyReport:
    reqs = [r for r in result.requests if r.arrival >= cfg.warmup_s]
    ttft_ok = tpot_ok = both = timed_out = 0
    ttfts: list[float] = []
    for r in reqs:
        if r.timed_out or r.first is None or r.done is None:
            timed_out += 1
            continue
        ttft = r.first - r.arrival
        ttfts.append(ttft)
        tpot = (r.done - r.first) / (r.output - 1) if r.output > 1 else 0.0
        a = ttft <= cfg.ttft_slo_s
        b = tpot <= cfg.tpot_slo_s
        ttft_ok += a
        tpot_ok += b
        both += a and b
    changes = 0
    last_dir = 0
    for at, before, after in result.actions:
        if at < cfg.warmup_s:
            continue
        direction = 1 if after > before else -1
        if last_dir and direction != last_dir:
            changes += 1
        last_dir = direction
    span_10min = max(result.duration_s - cfg.warmup_s, 1.0) / 600.0
    n = max(len(reqs), 1)
    return PolicyReport(
        policy=result.policy,
        requests=len(reqs),
        attainment=both / n,
        ttft_ok=ttft_ok / n,
        tpot_ok=tpot_ok / n,
        ttft_p50_s=_quantile(ttfts, 0.5),
        ttft_p99_s=_quantile(ttfts, 0.99),
        replica_hours=result.replica_seconds / 3600.0,
        timed_out=timed_out,
        actions=sum(1 for at, _, _ in result.actions if at >= cfg.warmup_s),
        direction_changes=changes,
        direction_changes_per_10min=changes / span_10min,
        peak_replicas=max((c for t, _, c, _ in result.timeline if t >= cfg.warmup_s), default=0),
    )


def render(reports: list[PolicyReport]) -> str:
    head = (
        f"{'policy':<15} {'SLO %':>6} {'TTFT ok':>7} {'TPOT ok':>7} {'TTFT p50':>8} "
        f"{'TTFT p99':>8} {'rep-h':>6} {'timeout':>7} {'actions':>7} {'dir chg':>7} "
        f"{'/10min':>6} {'peak':>4}"
    )
    lines = [head]
    for r in reports:
        lines.append(
            f"{r.policy:<15} {100 * r.attainment:>6.1f} {100 * r.ttft_ok:>7.1f} "
            f"{100 * r.tpot_ok:>7.1f} {r.ttft_p50_s:>8.2f} {r.ttft_p99_s:>8.2f} "
            f"{r.replica_hours:>6.2f} {r.timed_out:>7} {r.actions:>7} {r.direction_changes:>7} "
            f"{r.direction_changes_per_10min:>6.2f} {r.peak_replicas:>4}"
        )
    return "\n".join(lines)


def per_minute(
    result: ReplayResult,
    cfg: ReplayConfig,
    load: list[tuple[float, float]],
    first: int,
    last: int,
) -> str:
    """Minutes `first`..`last` of one replay (warm-up included): the peak load (replicas
    of work), the requests that arrived, how many of them missed the SLO, and the fewest
    ready / most requested (ready + starting) replicas of the minute."""
    lines = [f"{result.policy}: minute  load  arrived  missed  ready  replicas"]
    for m in range(first, last + 1):
        lo, hi = 60.0 * m, 60.0 * (m + 1)
        arrived = [r for r in result.requests if lo <= r.arrival < hi]
        missed = sum(1 for r in arrived if not met_slo(r, cfg))
        peak = max((v for t, v in load if lo <= t < hi), default=0.0)
        samples = [(ready, cap) for t, ready, cap, _ in result.timeline if lo <= t < hi]
        ready = min((r for r, _ in samples), default=0)
        cap = max((c for _, c in samples), default=0)
        lines.append(
            f"{'':>{len(result.policy) + 2}}{m:>6} {peak:>5.1f} {len(arrived):>8} "
            f"{missed:>7} {ready:>6} {cap:>9}"
        )
    return "\n".join(lines)
