"""A PNG of a bench run: token hit rate (with both bounds) and TTFT p50/p99 per policy.

matplotlib is imported inside the function with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path

from bench.report import BenchResult


def plot_results(result: BenchResult, path: Path, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.policy for r in result.results]
    xs = list(range(len(names)))
    colors = ["#1f77b4" if n in ("modelyard", "prefix-only") else "#9e9e9e" for n in names]
    fig, (ax_hit, ax_ttft) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)

    hits = [r.token_hit_rate for r in result.results]
    ax_hit.bar(xs, hits, color=colors)
    fleet = result.settings.replicas * result.settings.kv_blocks
    references = [
        (result.infinite_cache_hit_rate, "#d62728", "--", "one infinite cache"),
        (
            result.pooled_belady_hit_rate,
            "#2ca02c",
            "-.",
            f"one {fleet}-block cache, optimal eviction",
        ),
        (result.pooled_lru_hit_rate, "#ff7f0e", ":", f"one {fleet}-block cache, LRU eviction"),
    ]
    for value, color, style, label in references:
        ax_hit.axhline(
            value, color=color, linestyle=style, linewidth=1.2, label=f"{label}: {value:.3f}"
        )
    ax_hit.legend(loc="upper right", fontsize=8, framealpha=0.95)
    for x, h in zip(xs, hits, strict=True):
        ax_hit.text(x, h, f"{h:.3f}", ha="center", va="bottom", fontsize=9)
    ax_hit.set_xticks(xs, names, rotation=15)
    ax_hit.set_ylabel("token hit rate (cached / prompt tokens)")
    ax_hit.set_ylim(0, max([*hits, result.infinite_cache_hit_rate]) * 1.45)
    ax_hit.set_title("prefix-cache hit rate")

    width = 0.38
    p50 = [r.ttft_p50_s for r in result.results]
    p99 = [r.ttft_p99_s for r in result.results]
    ax_ttft.bar([x - width / 2 for x in xs], p50, width, label="p50", color="#2ca02c")
    ax_ttft.bar([x + width / 2 for x in xs], p99, width, label="p99", color="#9467bd")
    for x, a, b in zip(xs, p50, p99, strict=True):
        ax_ttft.text(x - width / 2, a, f"{a:.2f}", ha="center", va="bottom", fontsize=8)
        ax_ttft.text(x + width / 2, b, f"{b:.1f}", ha="center", va="bottom", fontsize=8)
    ax_ttft.set_xticks(xs, names, rotation=15)
    ax_ttft.set_ylabel("time to first token (simulated s)")
    ax_ttft.set_title("TTFT")
    ax_ttft.legend()

    s = result.settings
    fig.suptitle(
        title
        or f"{s.trace}, {s.requests} requests, {s.replicas} replicas x {s.kv_blocks} blocks "
        f"of {s.block_tokens} tokens, speedup {s.speedup:g} ({s.model}, {s.gpu}, simulated)",
        fontsize=11,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
