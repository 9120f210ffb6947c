"""Per-request records of a live replay, and the trace they imply.

    write_records(run, path)              one JSON line per request the replay sent:
                                          index, ttft_s, prompt/cached/completion tokens, error
    derive_trace(trace, records, out)     the trace's lines with `output_length` replaced by
                                          the completion tokens the server actually produced

The simulator decides its own output length (a pseudo-random 24-160 tokens, capped by
`max_tokens`), so a live replay of a simulated cluster decodes fewer tokens than the trace
asks for. Replaying the derived trace in-process compares the two modes on the same work.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from bench.live import LiveRun


def write_records(run: LiveRun, path: Path, *, sim_speedup: float = 1.0) -> None:
    lines = []
    for record in run.records:
        out = record.outcome
        usage = out.usage if out is not None else None
        first = out.first_token if out is not None else None
        row = {
            "index": record.index,
            "ttft_s": None if first is None else (first - record.scheduled) * sim_speedup,
            "send_lag_s": (record.sent - record.scheduled) * sim_speedup if record.sent else None,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "cached_tokens": usage.cached_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "error": out.error if out is not None else "unfinished",
        }
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def derive_trace(trace: Path, records: Path, out: Path) -> int:
    """Write `out`: the trace's lines up to the last recorded index, with the produced
    output lengths (lines without a completed record keep theirs). Returns the count."""
    produced: dict[int, int] = {}
    count = 0
    for line in records.read_text("utf-8").splitlines():
        row = json.loads(line)
        count = max(count, int(row["index"]) + 1)
        if row.get("completion_tokens"):
            produced[int(row["index"])] = int(row["completion_tokens"])
    kept: list[str] = []
    with trace.open(encoding="utf-8") as handle:
        index = 0
        for line in handle:
            if not line.strip():
                continue
            if index >= count:
                break
            row = json.loads(line)
            row["output_length"] = produced.get(index, row["output_length"])
            kept.append(json.dumps(row))
            index += 1
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return len(kept)


def ttft_summary(records: Path, *, scale: float = 1.0) -> dict[str, float]:
    """TTFT percentiles (from the scheduled send, and after the actual send) and the send
    lag's, in simulated seconds, over the completed requests of a records file (times
    multiplied by `scale`, for records written in wall seconds)."""
    import numpy as np

    rows = [json.loads(line) for line in records.read_text("utf-8").splitlines() if line]
    done = [r for r in rows if r.get("error") is None and r.get("ttft_s") is not None]
    ttft = scale * np.array([r["ttft_s"] for r in done], dtype=float)
    lag = scale * np.array([r.get("send_lag_s") or 0.0 for r in done], dtype=float)
    after = ttft - lag
    out: dict[str, float] = {"completed": float(len(done))}
    for name, values in (("ttft", ttft), ("ttft_after_send", after), ("send_lag", lag)):
        for q in (50, 99):
            out[f"{name}_p{q}_s"] = float(np.percentile(values, q)) if values.size else 0.0
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m bench.live_record",
        description="work with the per-request records of live replays",
    )
    sub = p.add_subparsers(dest="command", required=True)
    derive = sub.add_parser("derive", help="the trace with the output lengths produced")
    derive.add_argument("trace", type=Path)
    derive.add_argument("records", type=Path)
    derive.add_argument("out", type=Path)
    ttft = sub.add_parser("ttft", help="TTFT and send-lag percentiles of records files")
    ttft.add_argument("records", type=Path, nargs="+")
    ttft.add_argument(
        "--scale", type=float, default=1.0, help="multiply the records' times (default 1)"
    )
    args = p.parse_args(argv)
    if args.command == "derive":
        count = derive_trace(args.trace, args.records, args.out)
        print(f"{args.out}: {count} requests")
        return 0
    print("| records | done | TTFT p50 / p99 | TTFT after send p50 / p99 | send lag p50 / p99 |")
    print("|---|---|---|---|---|")
    for path in args.records:
        t = ttft_summary(path, scale=args.scale)
        print(
            f"| {path.name} | {t['completed']:.0f} | {t['ttft_p50_s']:.2f} / "
            f"{t['ttft_p99_s']:.2f} s | {t['ttft_after_send_p50_s']:.2f} / "
            f"{t['ttft_after_send_p99_s']:.2f} s | {t['send_lag_p50_s']:.2f} / "
            f"{t['send_lag_p99_s']:.2f} s |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
