"""Medians over seeds of `modelyard bench autoscale --json` outputs, as a Markdown table.

    python -m bench.autoscale.summary FILE.json [FILE.json ...] [--bar] [--frontier PNG]

One row per policy (in the order of the first file): the median of every seed's value,
the range in brackets when the seeds differ. With `--bar`, a line under the table says,
seed by seed, whether modelyard meets the issue's bar against the best baseline (the
highest attainment; among equals, the fewest replica-hours; the yardsticks `fixed:N` and
`clairvoyant:H` are not baselines): attainment >= the best's with replica-hours <= 0.8 x
its, or attainment >= the best's + 5 points with replica-hours <= its; and at most one
change of direction per 10 minutes. `--frontier PNG` draws attainment against
replica-hours (`bench.autoscale.plot.plot_frontier`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

YARDSTICKS = ("fixed:", "clairvoyant:")


def _cell(values: Sequence[float], fmt: str) -> str:
    mid = format(statistics.median(values), fmt)
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return mid if lo == hi else f"{mid} [{lo}\N{EN DASH}{hi}]"


def best_baseline(policies: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The baseline with the highest attainment (the fewest replica-hours among equals)."""
    baselines = [
        p for p in policies if p["policy"] != "modelyard" and not p["policy"].startswith(YARDSTICKS)
    ]
    if not baselines:
        return None
    return min(baselines, key=lambda p: (-round(p["attainment"], 9), p["replica_hours"]))


def meets_bar(mine: dict[str, Any], best: dict[str, Any]) -> bool:
    """The issue's bar for modelyard (`mine`) against the best baseline of one run."""
    a, b = float(mine["attainment"]), float(best["attainment"])
    h, g = float(mine["replica_hours"]), float(best["replica_hours"])
    steady = float(mine["direction_changes_per_10min"]) <= 1.0
    return steady and ((a >= b and h <= 0.8 * g) or (a >= b + 0.05 and h <= g))


def bar_line(runs: Sequence[dict[str, Any]]) -> str:
    verdicts = []
    for run in runs:
        mine = next((p for p in run["policies"] if p["policy"] == "modelyard"), None)
        best = best_baseline(run["policies"])
        if mine is None or best is None:
            continue
        verdicts.append(
            f"{best['policy']} {100 * best['attainment']:.2f} % / "
            f"{best['replica_hours']:.2f} replica-h: "
            f"{'met' if meets_bar(mine, best) else 'NOT met'}"
        )
    return "Bar against the best baseline, per seed: " + "; ".join(verdicts) + "."


def table(runs: Sequence[dict[str, Any]], bar: bool) -> str:
    names = [p["policy"] for p in runs[0]["policies"]]
    by = [{p["policy"]: p for p in run["policies"]} for run in runs]
    head = (
        "| policy | SLO attainment % | replica-hours | timed out "
        "| changes of direction (per 10 min) |"
    )
    rule = "|---|---|---|---|---|"
    lines = [head, rule]
    for name in names:
        rows = [b[name] for b in by if name in b]
        cells = [
            name,
            _cell([100 * r["attainment"] for r in rows], ".2f"),
            _cell([r["replica_hours"] for r in rows], ".2f"),
            _cell([r["timed_out"] for r in rows], ".0f"),
            f"{_cell([r['direction_changes'] for r in rows], '.0f')} "
            f"({_cell([r['direction_changes_per_10min'] for r in rows], '.2f')})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if bar:
        lines += ["", bar_line(runs)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.autoscale.summary")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--bar", action="store_true", help="say whether modelyard meets the bar")
    p.add_argument("--frontier", type=Path, default=None, help="write the frontier PNG")
    args = p.parse_args(argv)
    runs = [json.loads(f.read_text()) for f in args.files]
    print(table(runs, args.bar))
    if args.frontier is not None:
        from bench.autoscale.plot import plot_frontier

        first = runs[0]
        title = (
            f"{Path(first['arrivals']).name} x{first['scale']:g}, warm-up "
            f"{first['warmup_s']:g} s, start {first['initial_replicas']} replicas, "
            f"{len(runs)} seed(s)"
        )
        plot_frontier(runs, args.frontier, title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
