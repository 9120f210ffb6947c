"""`modelyard sim serve`: one simulated replica as a standalone OpenAI-compatible server;
`modelyard sim front`: modelyard's request router as an HTTP front over such replicas.

    modelyard sim serve --port P [--model ID] [--speedup X] [--kv-blocks N]
        [--block-size T] [--max-num-seqs S] [--kv-events-port Q | --kv-events-connect EP]

Serves /health, /v1/models, /v1/chat/completions, /v1/completions (and /api/v1/...),
/metrics (gateway series + vLLM-style engine gauges), the worker-info routes SGLang's and
vLLM's routers probe and vLLM's /v1/{chat/}completions/render (the prompt's token ids, for
token-aware routers), on 127.0.0.1 by default. KV events go out over ZMQ in
vLLM's frame format: bound on `--kv-events-port` (subscribers connect, as to vLLM) or
connected to `--kv-events-connect` (a subscriber that binds). Every answer is simulated.

    modelyard sim front --port P --replica URL[,KV_ENDPOINT] ... [--block-tokens T]
        [--sim-speedup X]

puts `cluster.routing.Router` (the in-process bench's `modelyard` settings) in front of
the replicas, tokenising each prompt as the simulator does so its block hashes match the
replicas' KV events (see `bench.front`). It exists for benchmarks.

This module does the work of both commands (their arguments: `cluster.cli.sim_serve`): it
builds the `SimEngine` and the simulator's tokenizer (imported inside the command, never Ray
or vLLM) and hands them to `bench.simserve` and `bench.front`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from typing import TYPE_CHECKING

from cluster.config import (
    AuthSettings,
    ClusterConfig,
    GatewaySettings,
    ModelDeployment,
    ServedModel,
    SimSettings,
    load_builtin_catalog,
)
from cluster.config.gateway_security import TlsSettings
from cluster.errors import ConfigError

if TYPE_CHECKING:
    from bench.front import FrontReplica, PromptBlocks
    from bench.simserve.render import PromptTokens

DEFAULT_MODEL = "qwen/qwen3-coder-flash"


def served_model(args: argparse.Namespace) -> ServedModel:
    """The catalog entry of `--model` with the simulator settings from the flags."""
    spec = load_builtin_catalog().find(args.model)
    if spec is None:
        raise ConfigError(f"unknown model {args.model!r}", param="--model")
    try:
        settings = SimSettings(
            gpu=args.gpu,
            speedup=args.speedup,
            kv_blocks=args.kv_blocks,
            block_size=args.block_size,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            seed=args.seed,
        )
    except ValueError as err:
        raise ConfigError(f"invalid simulator setting: {err}") from None
    deployment = ModelDeployment(id=spec.id, engine="sim", sim=settings)
    return ServedModel(spec=spec, deployment=deployment)


def run(args: argparse.Namespace) -> int:
    try:
        model = served_model(args)
        if not 0 < args.port < 65536:
            raise ConfigError("--port must be in 1..65535", param="--port")
        tls_settings(args)
        if args.admin_port is not None and args.admin_port == args.port:
            raise ConfigError("--admin-port must differ from --port", param="--admin-port")
    except ConfigError as err:
        print(f"modelyard sim serve: {err.message}", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, model))
    return 0


def configure_logging(level: str) -> None:
    """Every logger of the process (ours, uvicorn's, SQLAlchemy's, ...) at `level`, on
    stderr: `--log-level debug` shows everything the process logs (tests/integration/
    test_log_secrets.py greps it for keys and prompts)."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


async def _serve(args: argparse.Namespace, model: ServedModel) -> None:
    from bench.simserve import KVEventPublisher, build_sim_serve_app, serve
    from deployments.engines.sim import SimEngine

    replica_id = args.replica_id or f"sim-{args.port}"
    engine = SimEngine(model, replica_id=replica_id)
    config = ClusterConfig(
        name="sim-serve",
        gateway=GatewaySettings(
            host=args.host,
            port=args.port,
            tls=tls_settings(args),
            admin_port=args.admin_port,
        ),
        auth=AuthSettings(mode=args.auth),
        models=[model.deployment],
    )
    app = build_sim_serve_app(config, model, engine, prompt_tokens=sim_prompt_tokens())
    publisher: KVEventPublisher | None = None
    if args.kv_events_port is not None or args.kv_events_connect is not None:
        publisher = KVEventPublisher(
            bind_port=args.kv_events_port,
            connect=args.kv_events_connect,
            host=args.host,
            topic=args.kv_events_topic,
        )

    def ready(url: str) -> None:
        s = model.deployment.sim
        events = f"; KV events on {publisher.endpoint}" if publisher is not None else ""
        print(
            f"modelyard sim serve: {model.id} (simulated, {s.gpu}, speedup {s.speedup:g}, "
            f"block size {s.block_size}) replica {replica_id} on {url}{events}",
            flush=True,
        )

    await serve(
        app,
        engine,
        host=args.host,
        port=args.port,
        publisher=publisher,
        on_ready=ready,
        log_level=args.log_level,
        tls=config.gateway.tls,
    )


def tls_settings(args: argparse.Namespace) -> TlsSettings | None:
    """`gateway.tls` from --tls-cert / --tls-key / --tls-client-ca (both or neither)."""
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise ConfigError("--tls-cert and --tls-key go together", param="--tls-cert")
    return TlsSettings(
        cert_file=args.tls_cert, key_file=args.tls_key, client_ca_file=args.tls_client_ca
    )


def front_replicas(specs: list[str]) -> list[FrontReplica]:
    from bench.front import FrontReplica

    replicas = []
    for i, spec in enumerate(specs):
        url, _, events = spec.partition(",")
        if not url.startswith("http://"):
            raise ConfigError(f"--replica {spec!r}: want http://HOST:PORT[,tcp://HOST:PORT]")
        replicas.append(FrontReplica(f"replica-{i}", url.rstrip("/"), events or None))
    return replicas


def sim_prompt_tokens() -> PromptTokens:
    """The token ids `SimEngine` will see for a completion or chat body (one list per
    prompt): its tokenizer over the prompt, or over its chat template for messages."""
    from cluster.api.validation import parse_chat_request
    from deployments.engines.sim import SimTokenizer, render_chat

    tokenizer = SimTokenizer()

    def tokens(path: str, body: bytes) -> list[list[int]]:
        if path.endswith("/chat/completions"):
            chat = parse_chat_request(body)
            return [tokenizer.encode(render_chat(chat.messages, chat.tools))]
        prompt = json.loads(body)["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else [str(p) for p in prompt]
        return [tokenizer.encode(text) for text in prompts]

    return tokens


def sim_prompt_blocks(block_tokens: int) -> PromptBlocks:
    """Block hashes and length of a request's (first) prompt, as `SimEngine` hashes them."""
    from cluster.routing import block_hashes

    tokens = sim_prompt_tokens()

    def blocks(path: str, body: bytes) -> tuple[list[int], int]:
        ids = tokens(path, body)[0]
        return block_hashes(ids, block_tokens), len(ids)

    return blocks


def run_front(args: argparse.Namespace) -> int:
    try:
        replicas = front_replicas(args.replica)
        if args.block_tokens < 1 or args.sim_speedup <= 0:
            raise ConfigError("--block-tokens and --sim-speedup must be positive")
    except ConfigError as err:
        print(f"modelyard sim front: {err.message}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_front(args, replicas))
    return 0


async def _front(args: argparse.Namespace, replicas: list[FrontReplica]) -> None:
    import uvicorn

    from bench.front import RoutingFront
    from bench.front_app import build_front_app
    from bench.policies import routing_settings
    from bench.simserve.server import server_config
    from cluster.routing import Router

    router = Router(routing_settings(args.block_tokens, args.seed))
    front = RoutingFront(
        replicas, router, sim_prompt_blocks(args.block_tokens), sim_speedup=args.sim_speedup
    )
    app = build_front_app(front)
    config = server_config(app, host=args.host, port=args.port, log_level=args.log_level)
    print(
        f"modelyard sim front: placement over {len(replicas)} replicas on "
        f"http://{args.host}:{args.port}",
        flush=True,
    )
    await uvicorn.Server(config).serve()
