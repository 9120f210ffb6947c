"""The arguments of `modelyard sim serve` (one simulated replica as a standalone
OpenAI-compatible server) and `modelyard sim front` (modelyard's router as an HTTP front
over such replicas). What they serve and how is documented where the work is done,
`bench.sim_serve_cmd`, imported inside the handlers: both exist for benchmarks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_MODEL = "qwen/qwen3-coder-flash"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sim` with its `serve` subcommand."""
    sim = commands.add_parser("sim", help="the simulator as standalone servers")
    sub = sim.add_subparsers(dest="sim_command", required=True, metavar="COMMAND")
    add_serve(sub)
    add_front(sub)


def _server_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, port: int
) -> argparse.ArgumentParser:
    """A `sim` subcommand that serves HTTP, with its --port and --host."""
    p = sub.add_parser(
        name,
        help=summary,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=port, help=f"HTTP port ({port})")
    p.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    return p


def add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "one simulated replica as an OpenAI-compatible HTTP server"
    p = _server_parser(sub, "serve", summary, 8100)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"catalog id or alias ({DEFAULT_MODEL})")
    p.add_argument("--replica-id", default=None, help="replica id in KV events (sim-<port>)")
    p.add_argument("--gpu", default="h100", choices=["h100", "h200", "a100"])
    p.add_argument(
        "--speedup", type=float, default=1.0, help="simulated seconds per wall second (1)"
    )
    p.add_argument(
        "--kv-blocks", type=int, default=None, help="KV cache blocks (default: from GPU memory)"
    )
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV block (16)")
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--max-num-batched-tokens", type=int, default=8192)
    p.add_argument("--seed", type=int, default=0)
    events = p.add_mutually_exclusive_group()
    events.add_argument(
        "--kv-events-port", type=int, default=None, help="bind a ZMQ PUB for KV events here"
    )
    events.add_argument(
        "--kv-events-connect", default=None, help="connect the ZMQ PUB to this endpoint"
    )
    p.add_argument("--kv-events-topic", default="kv-events")
    p.add_argument(
        "--auth",
        choices=["off", "keys"],
        default="off",
        help="keys: managed keys and the ledger ($MODELYARD_LEDGER_URL, else "
        ".modelyard/ledger.sqlite; pepper in $MODELYARD_KEY_PEPPER)",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS: certificate (PEM)")
    p.add_argument("--tls-key", type=Path, default=None, help="serve HTTPS: private key (PEM)")
    p.add_argument(
        "--tls-client-ca", type=Path, default=None, help="require client certificates of this CA"
    )
    p.add_argument(
        "--admin-port", type=int, default=None, help="serve /metrics and /usage only here"
    )
    p.set_defaults(run=run)


def add_front(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "modelyard's request router as an HTTP front over sim serve replicas"
    p = _server_parser(sub, "front", summary, 8200)
    p.add_argument(
        "--replica",
        action="append",
        required=True,
        metavar="URL[,KV_ENDPOINT]",
        help="a replica's base URL and, optionally, its KV event endpoint (repeatable)",
    )
    p.add_argument("--block-tokens", type=int, default=16, help="the replicas' --block-size (16)")
    p.add_argument("--sim-speedup", type=float, default=1.0, help="the replicas' --speedup (1)")
    p.add_argument("--seed", type=int, default=0, help="the picker's seed")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(run=run_front)


def run(args: argparse.Namespace) -> int:
    from bench.sim_serve_cmd import run as run_serve

    return run_serve(args)


def run_front(args: argparse.Namespace) -> int:
    from bench.sim_serve_cmd import run_front as run_sim_front

    return run_sim_front(args)
