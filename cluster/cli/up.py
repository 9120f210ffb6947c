"""`modelyard up [--config FILE] [--port N] [--grpc-port N] [--ingress direct|proxy]
[--auth off|keys]`: start Ray, Serve and every model; stop cleanly on Ctrl-C.

It says at start whether authentication is on. `--auth keys` (= `auth.mode: keys`) turns on
managed keys (`modelyard keys create`) and the ledger; it needs the pepper in the
environment (`auth.pepper_env`). A relative `ledger.sqlite_path` is made absolute here, so
every Ray process opens the same file.

Exit codes: 0 after Ctrl-C / SIGTERM (everything started was stopped), 1 if the cluster
failed to start, 2 if the configuration is invalid.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from cluster.cli.auth_mode import auth_line, with_auth
from cluster.config.loader import default_config_path, load_config
from cluster.config.settings import ClusterConfig, ServedModel
from cluster.errors import ConfigError, ModelyardError
from cluster.field_paths import field_path


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "up",
        help="start a local cluster (Ray + Serve + every model) and serve the OpenAI API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="cluster file (default: the packaged local.yaml: SmolLM2 on vLLM CPU + the "
        "simulated catalog)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=None,
        help="override gateway.port (where clients send HTTP: the gateway replica with "
        "gateway.ingress direct, Serve's proxy with proxy)",
    )
    parser.add_argument(
        "--ingress",
        choices=["direct", "proxy"],
        default=None,
        help="override gateway.ingress: direct (no Serve proxy hop, the default) or proxy",
    )
    parser.add_argument(
        "--grpc-port", type=_port, default=None, help="override gateway.grpc_port (gRPC API)"
    )
    parser.add_argument(
        "--auth",
        choices=["off", "keys"],
        default=None,
        help="override auth.mode: off (static digests only; none configured: open) or keys",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for readiness (300)"
    )
    parser.set_defaults(run=run)


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port


def _say(line: str) -> None:
    print(line, flush=True)


def _prepare_models(served: list[ServedModel]) -> None:
    """Build the local models vLLM deployments serve from the model cache, once."""
    from cluster.models import ModelCache, default_recipes, ensure_prepared

    for result in ensure_prepared(served, cache=ModelCache.from_env(), recipes=default_recipes()):
        state = "already prepared" if result.already_prepared else "prepared"
        _say(f"model {result.model_id}: {state} ({result.path}, {result.seconds:.1f}s)")


def _with_gateway(config: ClusterConfig, update: dict[str, object]) -> ClusterConfig:
    """The config with `gateway` fields replaced, validated again (ports may now clash)."""
    data = config.model_dump()
    data["gateway"] = {**data["gateway"], **update}
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"command-line overrides: {problems}") from None


def run(args: argparse.Namespace) -> int:
    path = args.config or default_config_path()
    try:
        config = load_config(path)
        overrides = {"port": args.port, "grpc_port": args.grpc_port, "ingress": args.ingress}
        update = {key: value for key, value in overrides.items() if value is not None}
        if update:
            config = _with_gateway(config, update)
        config = with_auth(config, args.auth, os.environ)
        from cluster.placement import plan_for
        from deployments.launcher import LocalCluster

        cluster = LocalCluster(config, progress=_say)
        plans = [(model, plan_for(model, config.ray)) for model in cluster.served]
        _prepare_models(cluster.served)
    except ConfigError as err:
        print(f"modelyard up: {err.message}", file=sys.stderr)
        return 2

    stop = threading.Event()
    serving = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        """While starting: abort the start (it cleans up). Once serving: ask to stop."""
        if not serving:
            raise KeyboardInterrupt
        stop.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        _say(f"modelyard up: {path}")
        _say(auth_line(config))
        try:
            cluster.start(timeout_s=args.timeout)
        except KeyboardInterrupt:
            _say("interrupted; stopped")
            return 0
        except ModelyardError as err:
            print(f"modelyard up: {err.message}", file=sys.stderr)
            return 1
        # ray.init installs its own SIGTERM handler: take both signals back.
        for sig in signals:
            signal.signal(sig, on_signal)
        serving = True
        try:
            from cluster.cli.summary import render_summary

            _say("")
            for line in cluster.ingress_lines():
                _say(line)
            _say(render_summary(plans, cluster.ready_after, base_url=cluster.base_url))
            while not stop.wait(0.5):
                pass
            _say("stopping ...")
        finally:
            started = time.monotonic()
            cluster.stop()
        _say(f"stopped in {time.monotonic() - started:.1f}s")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
