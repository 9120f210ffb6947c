"""Worker-information routes that third-party routers call on an inference worker.

SGLang's router (`sglang-router`, and `vllm-router`, which derives from it) registers a
worker by probing these routes of an SGLang server; answering them lets the routers accept
a `modelyard sim serve` replica as a worker. Every body says `"simulated": true`.

    GET /get_model_info, /model_info     the served model (`model_path` = its public id)
    GET /get_server_info, /server_info   engine facts: KV capacity in tokens, block size,
                                         batch limit, data-parallel size 1, current load
    GET /get_load                        {"load": running + waiting} (what a router's load
                                         monitor polls)
    GET /health_generate                 200 when the engine can serve, else 503

No route here changes engine state.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.responses import JSONResponse, Response

from cluster.config.settings import ServedModel
from cluster.engine import Engine
from cluster.errors import ModelyardError


def model_info(model: ServedModel) -> dict[str, Any]:
    return {
        "model_path": model.id,
        "tokenizer_path": None,
        "is_generation": True,
        "engine": "sim",
        "simulated": True,
    }


def server_info(model: ServedModel, engine: Engine) -> dict[str, Any]:
    stats = engine.stats()
    settings = model.deployment.sim
    return {
        "model_path": model.id,
        "served_model_name": model.id,
        "engine": "sim",
        "simulated": True,
        "gpu": settings.gpu,
        "speedup": settings.speedup,
        "block_size": stats.block_size,
        "kv_blocks": stats.kv_blocks_total,
        "max_total_num_tokens": stats.kv_blocks_total * stats.block_size,
        "max_running_requests": settings.max_num_seqs,
        "max_num_batched_tokens": settings.max_num_batched_tokens,
        "context_length": model.spec.context_window,
        "dp_size": 1,
        "load_in_flight": stats.running + stats.waiting,
        "internal_states": [
            {
                "num_running_reqs": stats.running,
                "num_waiting_reqs": stats.waiting,
                "kv_cache_usage": stats.kv_usage,
            }
        ],
    }


def add_worker_info_routes(app: FastAPI, model: ServedModel, engine: Engine) -> None:
    async def get_model_info() -> Response:
        return JSONResponse(model_info(model))

    async def get_server_info() -> Response:
        return JSONResponse(server_info(model, engine))

    async def get_load() -> Response:
        stats = engine.stats()
        return JSONResponse({"load": stats.running + stats.waiting})

    async def health_generate() -> Response:
        try:
            await engine.check_health()
        except ModelyardError as err:
            return JSONResponse({"status": "unavailable", "reason": err.message}, 503)
        return JSONResponse({"status": "ok"})

    for path in ("/get_model_info", "/model_info"):
        app.add_api_route(path, get_model_info, methods=["GET"])
    for path in ("/get_server_info", "/server_info"):
        app.add_api_route(path, get_server_info, methods=["GET"])
    app.add_api_route("/get_load", get_load, methods=["GET"])
    app.add_api_route("/health_generate", health_generate, methods=["GET"])
