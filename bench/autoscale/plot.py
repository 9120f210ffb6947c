"""A PNG of an autoscaling replay: the load (in replicas of work) against each policy's
replicas (ready + starting) over time, one panel per policy.

matplotlib is imported inside the function with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path

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
