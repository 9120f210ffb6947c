"""`modelyard sim serve`: one simulated replica as a standalone OpenAI-compatible server.

- `build_sim_serve_app(config, model, engine)`: the gateway app over one engine, with
  vLLM-style `/metrics` gauges and the worker-info routes third-party routers probe.
- `KVEventPublisher` / `kv_frames` (from `cluster.kv_events.publisher`): the engine's KV
  events over ZMQ in vLLM's frame format.
- `serve(app, engine, ...)`: uvicorn + engine + publisher lifecycle.

Nothing here imports the simulator: `bench.sim_serve_cmd` builds the engine and
passes it in, so the same server hosts any `cluster.engine.Engine`.
"""

from bench.simserve.app import build_sim_serve_app
from bench.simserve.metrics import EngineStatsCollector
from bench.simserve.server import serve
from cluster.kv_events.publisher import KVEventPublisher, kv_frames, kv_payload

__all__ = [
    "EngineStatsCollector",
    "KVEventPublisher",
    "build_sim_serve_app",
    "kv_frames",
    "kv_payload",
    "serve",
]
