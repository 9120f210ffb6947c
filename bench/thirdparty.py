"""Same-run comparison: routers in front of `modelyard sim serve` replicas, replayed live.

    python -m bench.thirdparty --trace FILE --requests N [--replicas 4]
        [--kv-blocks 4000] [--block-tokens 512] [--speedup 10] [--sim-speedup 1]
        --router sglang:cache_aware --router sglang:round_robin --router modelyard
        [--out results.json] [--logs DIR]

For each `--router`, in turn and from scratch (so every router starts with empty caches):

1. start `--replicas` fresh `modelyard sim serve` replicas of `--model` on 127.0.0.1
   (`--block-size`/`--kv-blocks`/`--speedup` as given, KV events bound on a port each);
2. start the router on 127.0.0.1 in front of them:
   - `sglang:<policy>`: PyPI `sglang-router` (`python -m sglang_router.launch_router`);
   - `vllm-router:<policy>`: PyPI `vllm-router` (`python -m vllm_router.launch_router`);
   - `modelyard`: `modelyard sim front`, i.e. `cluster.routing.Router` with the in-process
     bench's settings, fed by the replicas' KV events (`bench.front`);
   - `direct`: no router, one replica (a sanity check);
3. replay the trace through it (`bench.live`, the same client for every router),
   read each replica's prefill tokens from its /metrics, and write one record per request
   to `--logs`/<router>-records.jsonl;
4. stop the router and the replicas (every process, its children included).

The third-party routers are optional dependencies (`pip install -e '.[bench]'`). Every
process binds 127.0.0.1; every wait and the replay itself are bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.live import (
    LiveResult,
    LiveSettings,
    render_live_table,
    replay_live,
    summarise_live,
    with_prefill,
)
from bench.live_metrics import scrape_prefill
from bench.live_record import write_records
from bench.live_targets import HttpTarget
from bench.processes import ManagedProcess, free_port, wait_http_ok
from bench.runner import cost_function
from bench.trace import TraceRequest, load_trace
from cluster.config import load_builtin_catalog

READY_TIMEOUT_S = 90.0
ROUTER_SETTLE_S = 2.0


@dataclass(frozen=True, slots=True)
class Replica:
    url: str
    kv_events: str


@dataclass(frozen=True, slots=True)
class RunSpec:
    trace: Path
    requests: int | None
    replicas: int
    kv_blocks: int
    block_tokens: int
    max_num_seqs: int
    speedup: float
    sim_speedup: float
    model: str
    api: str
    concurrency: int
    time_limit_s: float
    logs: Path


def modelyard_bin() -> str:
    return str(Path(sys.executable).with_name("modelyard"))


def router_argv(router: str, port: int, replicas: Sequence[Replica], spec: RunSpec) -> list[str]:
    """The command that starts `router` on 127.0.0.1:`port` in front of `replicas`."""
    urls = [r.url for r in replicas]
    kind, _, policy = router.partition(":")
    if kind in ("sglang", "vllm-router"):
        module = "sglang_router.launch_router" if kind == "sglang" else "vllm_router.launch_router"
        log_level = "warn" if kind == "sglang" else "warning"
        return [
            sys.executable, "-m", module,
            "--host", "127.0.0.1", "--port", str(port),
            "--worker-urls", *urls,
            "--policy", policy or "cache_aware",
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()),
            "--log-level", log_level,
        ]  # fmt: skip
    if kind == "modelyard":
        argv = [modelyard_bin(), "sim", "front", "--port", str(port)]
        argv += ["--block-tokens", str(spec.block_tokens), "--sim-speedup", str(spec.sim_speedup)]
        for r in replicas:
            argv += ["--replica", f"{r.url},{r.kv_events}"]
        return argv
    raise ValueError(f"unknown router {router!r} (sglang:P, vllm-router:P, modelyard, direct)")


@contextmanager
def replicas_up(spec: RunSpec, count: int, tag: str) -> Iterator[list[Replica]]:
    """`count` fresh sim serve replicas, stopped on exit."""
    with ExitStack() as stack:
        started: list[tuple[Replica, ManagedProcess]] = []
        for i in range(count):
            port, events = free_port(), free_port()
            argv = [
                modelyard_bin(), "sim", "serve", "--port", str(port),
                "--model", spec.model, "--replica-id", f"replica-{i}",
                "--block-size", str(spec.block_tokens), "--kv-blocks", str(spec.kv_blocks),
                "--max-num-seqs", str(spec.max_num_seqs), "--speedup", str(spec.sim_speedup),
                "--kv-events-port", str(events),
            ]  # fmt: skip
            proc = stack.enter_context(ManagedProcess(argv, spec.logs / f"{tag}-replica-{i}.log"))
            started.append((Replica(f"http://127.0.0.1:{port}", f"tcp://127.0.0.1:{events}"), proc))
        for replica, proc in started:
            wait_http_ok(replica.url + "/health", timeout_s=READY_TIMEOUT_S, process=proc)
        yield [replica for replica, _ in started]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_one(router: str, trace: Sequence[TraceRequest], spec: RunSpec) -> LiveResult:
    tag = router.replace(":", "-")
    count = 1 if router == "direct" else spec.replicas
    with replicas_up(spec, count, tag) as replicas:
        if router == "direct":
            return asyncio.run(_replay(router, replicas[0].url, replicas, trace, spec))
        port = free_port()
        argv = router_argv(router, port, replicas, spec)
        with ManagedProcess(argv, spec.logs / f"{tag}-router.log") as proc:
            url = f"http://127.0.0.1:{port}"
            wait_http_ok(url + "/health", timeout_s=READY_TIMEOUT_S, process=proc)
            wait_http_ok(url + "/v1/models", timeout_s=READY_TIMEOUT_S, process=proc)
            time.sleep(ROUTER_SETTLE_S)  # let every worker register before the first request
            _say(f"{router}: {count} replicas and the router are up; replaying")
            result = asyncio.run(_replay(router, url, replicas, trace, spec))
            if router == "modelyard":
                _say(f"front: {httpx.get(url + '/front/stats', timeout=10).text}")
            return result


async def _replay(
    label: str, url: str, replicas: Sequence[Replica], trace: Sequence[TraceRequest], spec: RunSpec
) -> LiveResult:
    catalog = load_builtin_catalog().find(spec.model)
    assert catalog is not None
    cost_of, currency = cost_function(catalog)
    settings = LiveSettings(
        target=url,
        label=label,
        api=spec.api,
        model=catalog.id,
        trace=spec.trace.name,
        requests=len(trace),
        block_tokens=spec.block_tokens,
        speedup=spec.speedup,
        sim_speedup=spec.sim_speedup,
        concurrency=spec.concurrency,
        time_limit_s=spec.time_limit_s,
    )
    urls = [r.url for r in replicas]
    before = await scrape_prefill(urls)
    target = HttpTarget(url, model=catalog.id, api="chat" if spec.api == "chat" else "completions")
    try:
        run = await replay_live(trace, target, settings)
    finally:
        await target.aclose()
    after = await scrape_prefill(urls)
    records = spec.logs / f"{label.replace(':', '-')}-records.jsonl"
    write_records(run, records, sim_speedup=spec.sim_speedup)
    result = summarise_live(run, trace, settings, cost_of, currency)
    return with_prefill(result, [a - b for a, b in zip(after, before, strict=True)])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.thirdparty",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trace", type=Path, required=True)
    p.add_argument("--requests", type=int, default=None)
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--kv-blocks", type=int, default=4000)
    p.add_argument("--block-tokens", type=int, default=512)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--speedup", type=float, default=10.0, help="trace time compression")
    p.add_argument("--sim-speedup", type=float, default=1.0, help="the replicas' --speedup")
    p.add_argument("--model", default="qwen/qwen3-coder-flash")
    p.add_argument("--api", choices=["completions", "chat"], default="completions")
    p.add_argument("--concurrency", type=int, default=512)
    p.add_argument("--time-limit", type=float, default=900.0, help="wall seconds per replay")
    p.add_argument("--router", action="append", required=True)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    p.add_argument("--logs", type=Path, default=Path("bench-logs"), help="process logs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = RunSpec(
        trace=args.trace,
        requests=args.requests,
        replicas=args.replicas,
        kv_blocks=args.kv_blocks,
        block_tokens=args.block_tokens,
        max_num_seqs=args.max_num_seqs,
        speedup=args.speedup,
        sim_speedup=args.sim_speedup,
        model=args.model,
        api=args.api,
        concurrency=args.concurrency,
        time_limit_s=args.time_limit,
        logs=args.logs,
    )
    trace = load_trace(spec.trace, spec.requests)
    results: list[LiveResult] = []
    for router in args.router:
        started = time.monotonic()
        result = run_one(router, trace, spec)
        _say(f"{router}: done in {time.monotonic() - started:.0f}s")
        results.append(result)
        if args.out is not None:  # after every run, so a later failure loses nothing
            payload = [json.loads(r.model_dump_json()) for r in results]
            args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(render_live_table(results))
    return 0 if all(r.failed == 0 and r.unfinished == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
