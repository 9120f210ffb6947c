"""`modelyard bench soak` / `python -m bench.soak`: the real app under a fixed request rate,
with its memory watched (arguments: `cluster.cli.bench_soak`).

    python -m bench.soak [--duration-s 600] [--rate 8] [--users U] [--speedup 10]
        [--max-tokens 48] [--warmup-share 0.2] [--sample-s 5] [--out DIR]

1. starts the cluster `make up` starts — the packaged local.yaml's simulated models
   (`engine: sim`; its real-vLLM model is left out) and the gateway, through
   `deployments.launcher.LocalCluster` on 127.0.0.1, a free port;
2. runs Locust (`bench.soak.load`, its own process) against the gateway's HTTP API at
   `--rate` requests per second for `--duration-s`, over streamed and non-streamed chat and
   completions requests across the models;
3. meanwhile samples the RSS of the gateway replica and of every model replica every
   `--sample-s` seconds (`bench.soak.memory`) and prints a progress line every 10 s;
4. stops the cluster and writes to DIR: `records.jsonl` (one line per request),
   `rss.jsonl`, `summary.json`, `table.md` and `soak.png` (`bench.soak.stats`, `.report`,
   `.plot`); prints the table.

Exit status 0 when the run passes: no errors, the achieved rate within `--rate-tolerance`
of the target, and every process's RSS growth after the warm-up under `--max-rss-growth`
(the formulas are in `bench.soak.stats`); 1 otherwise, saying why.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from bench.processes import ManagedProcess, free_port
from bench.soak.memory import RssSampler
from bench.soak.plot import plot_soak
from bench.soak.report import MIB, progress_line, table
from bench.soak.stats import SoakSummary, summarize, timeline
from cluster.cli.bench_soak import add_arguments
from cluster.config import parse_config
from cluster.config.loader import default_config_path
from cluster.config.settings import ClusterConfig

PROGRESS_S = 10.0
START_TIMEOUT_S = 300.0
#: Past the run's end, how long the load generator may take to finish its last requests.
DRAIN_S = 60.0
GATEWAY = "gateway"


def soak_config(port: int, speedup: float) -> ClusterConfig:
    """local.yaml's simulated models (sped up by `speedup`) and gateway, on 127.0.0.1."""
    data: dict[str, Any] = yaml.safe_load(default_config_path().read_text("utf-8"))
    data["gateway"] = {
        **data.get("gateway", {}),
        "host": "127.0.0.1",
        "port": port,
        "grpc_port": free_port(),
    }
    data["models"] = [m for m in data["models"] if m.get("engine", "sim") == "sim"]
    for model in data["models"]:
        model["sim"] = {**model.get("sim", {}), "speedup": speedup}
    return parse_config(data, source="soak")


class RecordTail:
    """The request records the load generator has appended since the last `read()`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self.records: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        if not self._path.exists():
            return []
        with self._path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # only whole lines
        self._offset += end
        new = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
        self.records.extend(new)
        return new


def drive(
    args: argparse.Namespace, base_url: str, models: list[str], out: Path
) -> tuple[float, RecordTail, RssSampler]:
    """Run the load and sample memory until it ends; (load start epoch, records, sampler)."""
    records_path = out / "records.jsonl"
    records_path.unlink(missing_ok=True)
    users = args.users or max(1, math.ceil(args.rate * 2))
    argv = [
        sys.executable, "-m", "bench.soak.load", "--host", base_url, "--rate", str(args.rate),
        "--users", str(users), "--duration-s", str(args.duration_s), "--models", ",".join(models),
        "--records", str(records_path), "--max-tokens", str(args.max_tokens),
    ]  # fmt: skip
    print(f"load: Locust, {users} pacing users, {args.rate} req/s for {args.duration_s:.0f} s")
    started = time.time()
    tail = RecordTail(records_path)
    sampler = RssSampler("modelyard", started)
    with ManagedProcess(argv, out / "locust.log") as load:
        next_sample = next_progress = time.monotonic()
        window_start, window_count = time.time(), 0
        deadline = time.monotonic() + args.duration_s + DRAIN_S
        while load.running() and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_sample:
                sampler.sample()
                next_sample += args.sample_s
            if now >= next_progress:
                window_count += len(tail.read())
                gateway = [s for s in sampler.samples if s.deployment == GATEWAY]
                wall = time.time()
                print(
                    progress_line(
                        wall - started,
                        args.duration_s,
                        len(tail.records),
                        sum(1 for r in tail.records if not r["ok"]),
                        window_count / max(wall - window_start, 1e-9),
                        gateway[-1].rss_bytes / MIB if gateway else 0.0,
                    ),
                    flush=True,
                )
                window_start, window_count = wall, 0
                next_progress += PROGRESS_S
            time.sleep(0.2)
        if load.running():
            print("load generator did not finish in time; stopping it", flush=True)
        sampler.sample()
    tail.read()
    for line in (out / "locust.log").read_text("utf-8", errors="replace").splitlines()[-1:]:
        print(line, flush=True)
    return started, tail, sampler


def verdict(summary: SoakSummary, args: argparse.Namespace) -> list[str]:
    """Why the run fails (empty: it passes)."""
    reasons = []
    if summary.errors:
        reasons.append(f"{summary.errors} request(s) failed")
    if abs(summary.achieved_rate - args.rate) > args.rate_tolerance * args.rate:
        reasons.append(
            f"achieved {summary.achieved_rate:.2f} req/s, target {args.rate} "
            f"+/- {args.rate_tolerance * 100:.0f} %"
        )
    if not summary.memory:
        reasons.append("no RSS samples after the warm-up")
    for m in summary.memory:
        if m.growth >= args.max_rss_growth:
            reasons.append(f"{m.deployment} (pid {m.pid}) RSS grew {m.growth * 100:.1f} %")
    if not any(m.deployment == GATEWAY for m in summary.memory):
        reasons.append("the gateway's RSS was not sampled")
    return reasons


def run(args: argparse.Namespace) -> int:
    from deployments.launcher import LocalCluster

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = soak_config(free_port(), args.speedup)
    models = [m.id for m in config.models]
    cluster = LocalCluster(
        config, progress=lambda line: print(line, flush=True), object_store_bytes=128 * MIB
    )
    cluster.start(timeout_s=START_TIMEOUT_S)
    try:
        started, tail, sampler = drive(args, cluster.base_url, models, out)
    finally:
        cluster.stop()
    summary = summarize(
        tail.records,
        sampler.samples,
        started=started,
        duration_s=args.duration_s,
        target_rate=args.rate,
        warmup_share=args.warmup_share,
    )
    buckets = timeline(tail.records, started=started, duration_s=args.duration_s, bucket_s=10.0)
    with (out / "rss.jsonl").open("w", encoding="utf-8") as f:
        for sample in sampler.samples:
            f.write(json.dumps(asdict(sample)) + "\n")
    (out / "summary.json").write_text(json.dumps(summary.as_json(), indent=2) + "\n")
    text = table(summary, max_growth=args.max_rss_growth)
    (out / "table.md").write_text(text + "\n")
    plot_soak(
        buckets,
        sampler.samples,
        target_rate=args.rate,
        warmup_end_s=args.warmup_share * args.duration_s,
        path=args.plot or out / "soak.png",
    )
    print(text)
    reasons = verdict(summary, args)
    print("soak: PASS" if not reasons else "soak: FAIL: " + "; ".join(reasons), flush=True)
    return 0 if not reasons else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    add_arguments(p)  # defined once, for `modelyard bench soak` too
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run(parser().parse_args(argv))
