"""`modelyard sim serve`: one simulated replica as a standalone OpenAI-compatible server.

- `build_sim_serve_app(config, model, engine)`: the gateway app over one engine, with
  vLLM-style `/metrics` gauges and the worker-info routes third-party routers probe.
- `KVEventPublisher` / `kv_frames` (from `cluster.kv_events.publisher`): the engine's KV
  events over ZMQ in vLLM's frame format.
- `serve(app, engine, ...)`: uvicorn + engine + publisher lifecycle.

Nothing here imports the simulator: the CLI (`cluster.cli.sim_serve`) builds the engine and
passes it in, so the same server hosts any `cluster.engine.Engine`.
"""

from cluster.kv_events.publisher import KVEventPublisher, kv_frames, kv_payload
from cluster.simserve.app import build_sim_serve_app
from cluster.simserve.metrics import EngineStatsCollector
from cluster.simserve.server import serve

__all__ = [
    "EngineStatsCollector",
    "KVEventPublisher",
    "build_sim_serve_app",
    "kv_frames",
    "kv_payload",
    "serve",
]
