"""PNGs of autoscaling replays: the load (in replicas of work) against each policy's
replicas (ready + starting) over time, one panel per policy (`plot_replay`); attainment
against replica-hours with the yardsticks' lines and the bar's region (`plot_frontier`).

matplotlib is imported inside the function with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.autoscale.replay import ReplayResult
from bench.autoscale.report import PolicyReport


def plot_replay(
    demand: list[tuple[float, float]],
    results: list[tuple[ReplayResult, PolicyReport]],
    path: Path,
    title: str,
    warmup_s: float,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(results)
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(11, 2.3 * rows + 0.6),
        sharex=True,
        squeeze=False,
        constrained_layout=True,
    )
    dt = [t / 60 for t, _ in demand]
    dv = [v for _, v in demand]
    top = max([*dv, *(c for r, _ in results for _, _, c, _ in r.timeline), 1.0]) * 1.1
    for ax, (result, report) in zip(axes[:, 0], results, strict=True):
        ax.fill_between(dt, dv, color="#cccccc", label="load (replicas of work, 60 s)")
        tt = [t / 60 for t, _, _, _ in result.timeline]
        ax.step(
            tt,
            [c for _, _, c, _ in result.timeline],
            where="post",
            color="#1f77b4",
            label="replicas (ready + starting)",
        )
        ax.step(
            tt,
            [r for _, r, _, _ in result.timeline],
            where="post",
            color="#2ca02c",
            linestyle=":",
            label="ready",
        )
        ax.axvspan(0, warmup_s / 60, color="#f5f5f5", zorder=0)
        ax.set_ylim(0, top)
        ax.set_ylabel("replicas")
        ax.set_title(
            f"{report.policy}: SLO {100 * report.attainment:.1f} %, "
            f"{report.replica_hours:.2f} replica-h, {report.direction_changes} direction changes",
            fontsize=10,
            loc="left",
        )
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("minutes (shaded: warm-up, not counted)")
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_frontier(
    runs: list[dict[str, Any]],
    path: Path,
    title: str,
) -> None:
    """Attainment against replica-hours, medians over `runs` (the `--json` outputs of one
    trace and setting, one per seed): the yardsticks `fixed:N` and `clairvoyant:H` as two
    lines (what a fixed fleet, and foresight, buy for their replica-hours), every policy as
    a point, and the region of the issue's bar against the best baseline
    (`bench.autoscale.summary`: its attainment or more with at most 0.8 x its
    replica-hours). Policies far below the yardsticks are left out of the frame."""
    import statistics

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.autoscale.summary import YARDSTICKS, best_baseline

    names = [p["policy"] for p in runs[0]["policies"]]

    def median(name: str, key: str) -> float:
        values = [float(p[key]) for r in runs for p in r["policies"] if p["policy"] == name]
        return statistics.median(values)

    points = {n: (median(n, "replica_hours"), 100 * median(n, "attainment")) for n in names}
    best = best_baseline(
        [{"policy": n, "attainment": y / 100, "replica_hours": x} for n, (x, y) in points.items()]
    )
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    floor = min(y for n, (_, y) in points.items() if n.startswith(YARDSTICKS) or n == "modelyard")
    for prefix, style in (("fixed:", "o-"), ("clairvoyant:", "s--")):
        line = sorted((x, y, n) for n, (x, y) in points.items() if n.startswith(prefix))
        if not line:
            continue
        ax.plot(
            [x for x, _, _ in line],
            [y for _, y, _ in line],
            style,
            color="#888888",
            label=f"{prefix}N" if prefix == "fixed:" else f"{prefix}H",
        )
        for x, y, n in line:
            ax.annotate(
                n.removeprefix(prefix),
                (x, y),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color="#555555",
            )
    for n, (x, y) in points.items():
        if n.startswith(YARDSTICKS) or y < floor - 0.5:
            continue
        ax.plot([x], [y], "D" if n == "modelyard" else "^", markersize=8, label=n)
    if best is not None:
        bx, by = points[best["policy"]]
        ax.fill_between(
            [0, 0.8 * bx],
            [by, by],
            [100.05, 100.05],
            color="#2ca02c",
            alpha=0.15,
            label=f"bar vs {best['policy']}",
        )
    ax.set_ylim(max(floor - 0.5, 0), 100.05)
    ax.set_xlim(left=0)
    ax.set_xlabel("replica-hours (median over seeds)")
    ax.set_ylabel("SLO attainment % (median over seeds)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
