"""The HTTP app of `modelyard sim serve`: the gateway app over one engine, plus what
third-party routers expect of an inference worker.

    build_sim_serve_app(config, model, engine, *, prompt_tokens=None) -> FastAPI

is `cluster.gateway.http.build_gateway_app(config, [model], EngineBackend({model.id: engine}))` —
the same validation, OpenAI shapes, streaming, usage (`prompt_tokens_details.cached_tokens`)
and `x-modelyard-engine: sim (simulated)` header as the cluster's gateway — with:

- `/metrics`: the gateway's own `modelyard_*` series and vLLM-style engine gauges
  (`bench.simserve.metrics`) in the same registry;
- worker-info routes SGLang's and vLLM's routers call when a worker registers
  (`bench.simserve.worker_info`);
- the no-effect extension fields those routers add to every request dropped before
  validation (`bench.simserve.router_compat`);
- with `prompt_tokens` (the engine's tokenisation), vLLM's render endpoints that
  token-aware routers call (`bench.simserve.render`).

The engine is started and stopped by the caller (`bench.simserve.server.serve`), not by
the app, so tests can drive the app with an engine they own.
"""

from __future__ import annotations

from fastapi import FastAPI

from bench.simserve.metrics import EngineStatsCollector
from bench.simserve.render import PromptTokens, add_render_routes
from bench.simserve.router_compat import RouterExtensionFilter
from bench.simserve.worker_info import add_worker_info_routes
from cluster.config.settings import ClusterConfig, ServedModel
from cluster.engine import Engine
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend


def build_sim_serve_app(
    config: ClusterConfig,
    model: ServedModel,
    engine: Engine,
    *,
    prompt_tokens: PromptTokens | None = None,
) -> FastAPI:
    app = build_gateway_app(config, [model], EngineBackend({model.id: engine}))
    app.state.metrics.registry.register(EngineStatsCollector(engine.stats, model.id))
    add_worker_info_routes(app, model, engine)
    if prompt_tokens is not None:
        add_render_routes(app, model, prompt_tokens)
    app.add_middleware(RouterExtensionFilter, max_body_bytes=config.gateway.max_body_bytes)
    return app
