"""The soak's PNG: request rate, latency and RSS over time (three panels, shared time axis)."""

from __future__ import annotations

from pathlib import Path

from bench.soak.memory import RssSample
from bench.soak.stats import Bucket

MIB = 1024 * 1024


def plot_soak(
    buckets: list[Bucket],
    samples: list[RssSample],
    *,
    target_rate: float,
    warmup_end_s: float,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate_ax, latency_ax, rss_ax) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    times = [b.start_s for b in buckets]
    rate_ax.plot(times, [b.rate for b in buckets], label="requests started / s")
    rate_ax.axhline(target_rate, color="grey", linestyle="--", label="target")
    errors = [b.start_s for b in buckets if b.errors]
    if errors:
        rate_ax.plot(errors, [0] * len(errors), "rx", label="window with errors")
    rate_ax.set_ylabel("req/s")
    rate_ax.set_ylim(bottom=0)
    rate_ax.legend(loc="lower right")

    for label, values in (
        ("total p50", [b.total_p50_s for b in buckets]),
        ("total p95", [b.total_p95_s for b in buckets]),
        ("TTFT p50 (streamed)", [b.ttft_p50_s for b in buckets]),
    ):
        shown = [(t, v * 1000) for t, v in zip(times, values, strict=True) if v is not None]
        latency_ax.plot([t for t, _ in shown], [v for _, v in shown], label=label)
    latency_ax.set_ylabel("latency (ms)")
    latency_ax.set_ylim(bottom=0)
    latency_ax.legend(loc="upper right")

    series: dict[tuple[str, int], list[RssSample]] = {}
    for sample in samples:
        series.setdefault((sample.deployment, sample.pid), []).append(sample)
    for (deployment, pid), taken in sorted(series.items()):
        rss_ax.plot(
            [s.t for s in taken], [s.rss_bytes / MIB for s in taken], label=f"{deployment} ({pid})"
        )
    rss_ax.set_ylabel("RSS (MiB)")
    rss_ax.set_xlabel("seconds since the load started")
    rss_ax.legend(loc="lower right", fontsize="small")
    for ax in (rate_ax, latency_ax, rss_ax):
        ax.axvline(warmup_end_s, color="orange", linestyle=":")
        ax.grid(alpha=0.3)
    rate_ax.set_title("modelyard soak: fixed request rate (Locust), warm-up end dotted")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
