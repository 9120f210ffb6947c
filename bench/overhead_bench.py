"""Gateway overhead over a zero-latency engine: each modelyard path vs. calling a replica.

    python -m bench.overhead_bench [--requests 2000] [--warmup 100]
        [--prompt-words 150] [--max-tokens 4] [--seed 0] [--no-kv-events]
        [--ingress both|direct|proxy] [--no-floor] [--variant LABEL:RAY_KEY=VALUE[,...]]...
        [--out results.json]

The engine is the simulator with `speedup` 1e6: its simulated prefill and decode take
microseconds, so what is measured is software around it. Every path below ends in the
same code (`cluster.gateway.http.build_gateway_app` over a `SimEngine`), started fresh, all on
127.0.0.1, in one run:

- `direct`     client → `modelyard sim serve` replica (HTTP app + engine, one process):
               "calling the engine directly".
- `front`      client → `modelyard sim front` (our placement `Router` as a Python HTTP
               proxy, KV events subscribed) → two such replicas: the setup the router
               comparison in docs/BENCHMARKS.md (ANCHORS) measured other routers in.
- `serve`      `gateway.ingress: proxy`: client → Ray Serve proxy → gateway replica (HTTP
               app) → DeploymentHandle with `RoutingRequestRouter` → model replica
               (engine), two model replicas.
- `serve-p2c`  the same app with Serve's default PowerOfTwoChoices router instead of
               ours: `serve` - `serve-p2c` is what our router costs inside Serve.
- `serve-direct`, `serve-direct-p2c`  the same two apps with `gateway.ingress: direct`
               (Serve's throughput-optimised mode: the client connects to the gateway
               replica itself, handle calls go over gRPC): the default of `modelyard up`.
- `serve-direct+LABEL`  one more direct session per `--variant`, with extra Serve
               environment variables (a knob experiment), our router only.
- `floor-direct`, `floor-direct-hop`, `floor-direct-stream`, `floor-proxy`  Serve's own
               floor: a trivial ingress deployment that echoes the request body; the same
               through one handle call to a trivial second deployment; the same getting
               the body back as a stream of `max-tokens` + 1 chunks (what the simulator
               streams per request); and the first one behind the Serve proxy. What Serve costs
               with no application code (`--no-floor` leaves them out).

Each Serve mode is a Ray instance of its own, started by `overhead_serve` in its own
process through `modelyard up`'s start path (`LocalCluster`). Requests are sequential
(one in flight: latency, not queueing), one per path per round, paths in a seeded
shuffled order each round so drift hits all alike. Each request is a chat of
~`prompt-words` * 4 tokens sharing a system prompt (so routers hash real prefixes) with
`max_tokens` tokens out. Reported per path: latency p50/p90/p99, and the added latency
over `direct` as the difference of percentiles and as percentiles of the per-round paired
difference; the host's load average before and after. Our router's own decision time
inside Serve (tokenise, hash, rank) comes from each session's `/debug/routing` snapshot,
as wall time (which includes waiting for the GIL behind the gateway's other threads) and
as the routing thread's CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.overhead_serve import MODEL, SPEEDUP
from bench.overhead_stats import body, decision_cost, measure, summarise, table
from bench.processes import ManagedProcess, free_port, wait_http_ok

START_TIMEOUT_S = 120.0
SESSION_START_S = 300.0
CHAT = "/v1/chat/completions"


def _cli() -> list[str]:
    return [sys.executable, "-m", "cluster.cli.main"]


def start_replica(stack: ExitStack, logs: Path, name: str) -> tuple[str, str]:
    port, events = free_port(), free_port()
    argv = [*_cli(), "sim", "serve", "--port", str(port), "--model", MODEL]
    argv += ["--speedup", f"{SPEEDUP:g}", "--kv-events-port", str(events), "--replica-id", name]
    proc = stack.enter_context(ManagedProcess(argv, logs / f"{name}.log"))
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(url + "/health", timeout_s=START_TIMEOUT_S, process=proc)
    return url, f"tcp://127.0.0.1:{events}"


def start_front(stack: ExitStack, logs: Path, replicas: list[tuple[str, str]]) -> str:
    port = free_port()
    argv = [*_cli(), "sim", "front", "--port", str(port), "--sim-speedup", f"{SPEEDUP:g}"]
    for url, events in replicas:
        argv += ["--replica", f"{url},{events}"]
    proc = stack.enter_context(ManagedProcess(argv, logs / "front.log"))
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(url + "/health", timeout_s=START_TIMEOUT_S, process=proc)
    return url


#: Where each endpoint of a session is called: (application, path under its base URL).
ENDPOINTS = {
    "placement": ("placement", CHAT),
    "p2c": ("p2c", CHAT),
    "floor": ("floor", "/ingress"),
    "floor-hop": ("floor", "/hop"),
    "floor-stream": ("floor", "/stream"),
}


@dataclass(frozen=True)
class Session:
    """One Ray Serve session (`overhead_serve`): its ingress mode, extra environment, and
    the path name each endpoint (`ENDPOINTS`) of its applications is measured under."""

    name: str
    ingress: str
    paths: dict[str, str]  # endpoint -> path name
    env: dict[str, str] = field(default_factory=dict)


def sessions_for(
    ingress: str, variants: list[tuple[str, dict[str, str]]], *, floor: bool = True
) -> list[Session]:
    """`--ingress both|proxy|direct` and each `--variant LABEL:K=V,...` as sessions."""
    out = []
    for mode, serve in (("proxy", "serve"), ("direct", "serve-direct")):
        if ingress not in ("both", mode):
            continue
        paths = {"placement": serve, "p2c": f"{serve}-p2c"}
        if floor:  # the whole floor for the default mode; what the proxy adds, for proxy
            paths["floor"] = f"floor-{mode}"
        if floor and mode == "direct":
            paths |= {"floor-hop": "floor-direct-hop", "floor-stream": "floor-direct-stream"}
        out.append(Session(mode, mode, paths))
    for label, env in variants:
        out.append(Session(label, "direct", {"placement": f"serve-direct+{label}"}, env))
    names = [session.name for session in out]
    if len(set(names)) != len(names):
        raise ValueError(f"session names must differ: {names}")
    return out


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`LABEL:KEY=VALUE[,KEY=VALUE]` -> (LABEL, {KEY: VALUE})."""
    label, sep, pairs = text.partition(":")
    env = dict(pair.split("=", 1) for pair in pairs.split(",") if "=" in pair)
    if not sep or not label.replace("-", "").isalnum() or label in ("proxy", "direct"):
        raise argparse.ArgumentTypeError(f"{text!r}: LABEL (letters, digits, '-') first")
    if not env or not all(key.startswith("RAY_") for key in env):
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL:RAY_KEY=VALUE[,...]")
    return label, env


def start_session(
    stack: ExitStack, logs: Path, session: Session, *, kv_events: bool, max_tokens: int
) -> Callable[[], dict[str, str]]:
    """Start one session's process; the returned call waits until it is ready and gives
    path name -> URL (so several sessions start side by side)."""
    ready = logs / f"serve-{session.name}.json"
    argv = [sys.executable, "-m", "bench.overhead_serve"]
    argv += ["--ingress", session.ingress, "--ready-file", str(ready)]
    argv += [] if "p2c" in session.paths else ["--no-p2c"]
    argv += ["--floor-chunks", str(max_tokens + 1)] if "floor" in session.paths else ["--no-floor"]
    argv += [] if kv_events else ["--no-kv-events"]
    proc = stack.enter_context(
        ManagedProcess(argv, logs / f"serve-{session.name}.log", env=session.env)
    )
    deadline = time.monotonic() + SESSION_START_S

    def wait() -> dict[str, str]:
        while not ready.exists():
            if not proc.running():
                raise RuntimeError(f"session {session.name} exited early:\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"session {session.name}: not ready in {SESSION_START_S:.0f}s")
            time.sleep(0.5)
        bases: dict[str, str] = json.loads(ready.read_text("utf-8"))
        return {
            path: bases[ENDPOINTS[endpoint][0]] + ENDPOINTS[endpoint][1]
            for endpoint, path in session.paths.items()
        }

    return wait


def run(args: argparse.Namespace) -> dict[str, Any]:
    def say(line: str) -> None:
        print(line, flush=True)

    def make_body(i: int) -> dict[str, Any]:
        return body(i, args.prompt_words, args.max_tokens)

    alone = decision_cost(make_body, args.requests)
    logs = Path(tempfile.mkdtemp(prefix="modelyard-overhead-"))
    load_before = os.getloadavg()
    with ExitStack() as stack:
        waits = []
        for session in sessions_for(args.ingress, args.variant, floor=not args.no_floor):
            say(f"starting Ray Serve session {session.name!r} (ingress {session.ingress}) ...")
            waits.append(
                start_session(
                    stack,
                    logs,
                    session,
                    kv_events=not args.no_kv_events,
                    max_tokens=args.max_tokens,
                )
            )
        say(f"starting 2 sim serve replicas and the sim front (logs in {logs}) ...")
        replicas = [start_replica(stack, logs, f"sim-{i}") for i in range(2)]
        front = start_front(stack, logs, replicas)
        urls = {"direct": replicas[0][0] + CHAT, "front": front + CHAT}
        for wait in waits:
            urls.update(wait())
        say(f"measuring {args.requests} rounds x {len(urls)} paths ({args.warmup} warm-up) ...")
        samples = measure(
            urls,
            rounds=args.requests,
            warmup=args.warmup,
            make_body=make_body,
            seed=args.seed,
            progress=say,
        )
        decisions = {
            path: httpx.get(url.removesuffix(CHAT) + "/debug/routing", timeout=30.0).json()[MODEL]
            for path, url in urls.items()
            if path.startswith("serve") and "p2c" not in path
        }
        first = httpx.post(urls["direct"], json=body(0, args.prompt_words, 1), timeout=30.0)
    load_after = os.getloadavg()
    summary = summarise(samples)
    result = {
        "requests": args.requests,
        "prompt_tokens": first.json()["usage"]["prompt_tokens"],
        "max_tokens": args.max_tokens,
        "load_average_1m": {"before": load_before[0], "after": load_after[0]},
        "variants": {label: env for label, env in args.variant},
        "paths": summary,
        "router_decision_us": {path: d["decision_us"] for path, d in decisions.items()},
        "router_decision_cpu_us": {path: d["decision_cpu_us"] for path, d in decisions.items()},
        "router_decision_alone_cpu_us": alone,
    }
    say(
        f"{args.requests} rounds, {result['prompt_tokens']}-token prompts, max_tokens "
        f"{args.max_tokens}; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    for label, env in args.variant:
        say(f"variant {label}: ingress direct + {env}")
    say(table(summary))
    for path, d in decisions.items():
        wall, cpu = d["decision_us"], d["decision_cpu_us"]
        say(
            f"RoutingRequestRouter.choose_replicas in {path}, {wall['count']} decisions: "
            f"wall p50 {wall['p50']:.0f} us, p99 {wall['p99']:.0f} us; "
            f"CPU p50 {cpu['p50']:.0f} us, p99 {cpu['p99']:.0f} us"
        )
    say(
        f"the same work alone in one thread (hash + rank, 2 replicas): CPU p50 "
        f"{alone['p50']:.0f} us, p99 {alone['p99']:.0f} us"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured rounds (2000)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--prompt-words", type=int, default=150)
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-kv-events",
        action="store_true",
        help="routing.kv_events: false in the apps on our router (what KV events cost)",
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="leave out Serve's floor (a trivial app, without and with one handle hop)",
    )
    parser.add_argument(
        "--ingress",
        choices=["both", "direct", "proxy"],
        default="both",
        help="which Serve sessions to measure beside direct and front (both)",
    )
    parser.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE[,KEY=VALUE]",
        help="one more direct-ingress session with these Serve variables, measured as "
        "serve-direct+LABEL (our router only); repeatable",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    try:
        sessions_for(args.ingress, args.variant)
    except ValueError as err:
        parser.error(str(err))
    result = run(args)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
