"""A PNG of live runs side by side: token hit rate (with the one-infinite-cache bound) and
TTFT p50/p99 per run, plus optional reference rows (e.g. the in-process replay) drawn
hatched so live and in-process numbers are never confused.

    python -m bench.live_plot results.json out.png [--reference NAME=HIT,P50,P99 ...]

matplotlib is imported inside the function with the Agg backend (no display needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.live import LiveResult


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    token_hit_rate: float
    ttft_p50_s: float
    ttft_p99_s: float


def plot_live(
    results: Sequence[LiveResult],
    path: Path,
    *,
    references: Sequence[Reference] = (),
    title: str | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = [
        (r.settings.label, r.token_hit_rate, r.ttft_p50_s, r.ttft_p99_s, False) for r in results
    ]
    rows += [(x.name, x.token_hit_rate, x.ttft_p50_s, x.ttft_p99_s, True) for x in references]
    names = [r[0] for r in rows]
    xs = list(range(len(rows)))
    hatch = ["//" if r[4] else "" for r in rows]
    colors = ["#1f77b4" if "modelyard" in r[0] else "#9e9e9e" for r in rows]
    fig, (ax_hit, ax_ttft) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)

    bound = results[0].infinite_cache_hit_rate if results else 0.0
    for x, (_, hit, _, _, _), color, h in zip(xs, rows, colors, hatch, strict=True):
        ax_hit.bar(x, hit, color=color, hatch=h, edgecolor="black" if h else color)
        ax_hit.text(x, hit, f"{hit:.3f}", ha="center", va="bottom", fontsize=9)
    ax_hit.axhline(bound, color="#d62728", linestyle="--", linewidth=1.2)
    ax_hit.text(len(rows) - 0.5, bound, f"one infinite cache {bound:.3f}", ha="right",
                va="bottom", color="#d62728", fontsize=9)  # fmt: skip
    ax_hit.set_xticks(xs, names, rotation=20, ha="right")
    ax_hit.set_ylabel("token hit rate (cached / prompt tokens)")
    ax_hit.set_ylim(0, max([bound, *(r[1] for r in rows)]) * 1.25)
    ax_hit.set_title("prefix-cache hit rate (hatched: in-process reference)")

    width = 0.38
    for x, (_, _, p50, p99, _), h in zip(xs, rows, hatch, strict=True):
        ax_ttft.bar(x - width / 2, p50, width, color="#2ca02c", hatch=h, edgecolor="black")
        ax_ttft.bar(x + width / 2, p99, width, color="#9467bd", hatch=h, edgecolor="black")
        ax_ttft.text(x - width / 2, p50, f"{p50:.1f}", ha="center", va="bottom", fontsize=8)
        ax_ttft.text(x + width / 2, p99, f"{p99:.1f}", ha="center", va="bottom", fontsize=8)
    ax_ttft.legend(
        handles=[Patch(color="#2ca02c", label="p50"), Patch(color="#9467bd", label="p99")]
    )
    ax_ttft.set_xticks(xs, names, rotation=20, ha="right")
    ax_ttft.set_ylabel("time to first token (simulated s)")
    ax_ttft.set_title("TTFT")

    if title is None and results:
        s = results[0].settings
        title = (
            f"live: {s.trace}, first {s.requests} requests, speedup {s.speedup:g}, "
            f"{s.block_tokens}-token blocks as text, {s.model} (simulated)"
        )
    fig.suptitle(title or "", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reference(text: str) -> Reference:
    name, _, numbers = text.partition("=")
    hit, p50, p99 = (float(v) for v in numbers.split(","))
    return Reference(name, hit, p50, p99)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.live_plot", description=__doc__)
    p.add_argument("results", type=Path, help="JSON list of live results (thirdparty --out)")
    p.add_argument("out", type=Path)
    p.add_argument("--reference", action="append", type=_reference, default=[])
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    rows = json.loads(args.results.read_text("utf-8"))
    results = [LiveResult.model_validate(row) for row in rows]
    plot_live(results, args.out, references=args.reference, title=args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
