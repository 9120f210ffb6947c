"""The soak's output: a Markdown table of a `SoakSummary` and the progress line."""

from __future__ import annotations

from bench.soak.stats import SoakSummary

MIB = 1024 * 1024


def _ms(spread: dict[str, float]) -> str:
    if not spread:
        return "-"
    return " / ".join(f"{spread[k] * 1000:.0f}" for k in ("p50", "p90", "p99", "max"))


def table(summary: SoakSummary, *, max_growth: float) -> str:
    s = summary
    kinds = ", ".join(f"{kind} {count}" for kind, count in s.by_kind.items())
    errors = (
        "0"
        if not s.errors
        else f"{s.errors} ({', '.join(f'{k}: {n}' for k, n in s.error_kinds.items())})"
    )
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| duration | {s.duration_s:.0f} s |",
        f"| target rate | {s.target_rate:.2f} req/s |",
        f"| achieved rate | {s.achieved_rate:.2f} req/s |",
        f"| requests | {s.requests} ({kinds}) |",
        f"| errors | {errors} |",
        f"| total latency p50 / p90 / p99 / max, all (ms) | {_ms(s.total_s)} |",
        f"| total latency, streamed (ms) | {_ms(s.total_streamed_s)} |",
        f"| total latency, not streamed (ms) | {_ms(s.total_unary_s)} |",
        f"| TTFT, streamed (ms) | {_ms(s.ttft_s)} |",
    ]
    rows += ["", "| process | RSS after warm-up | RSS at end | peak | growth | peak growth |"]
    rows.append("|---|---|---|---|---|---|")
    for m in s.memory:
        verdict = "" if m.growth < max_growth else " (over the limit)"
        rows.append(
            f"| {m.deployment} (pid {m.pid}) | {m.baseline_bytes / MIB:.1f} MiB | "
            f"{m.final_bytes / MIB:.1f} MiB | {m.peak_bytes / MIB:.1f} MiB | "
            f"{m.growth * 100:+.2f} %{verdict} | {m.peak_growth * 100:+.2f} % |"
        )
    return "\n".join(rows)


def progress_line(
    elapsed_s: float, duration_s: float, done: int, errors: int, rate: float, gateway_mib: float
) -> str:
    return (
        f"[{elapsed_s:5.0f}/{duration_s:.0f} s] {done} requests, {errors} errors, "
        f"last window {rate:.2f} req/s, gateway RSS {gateway_mib:.1f} MiB"
    )
