"""vLLM's render endpoints: a request's prompt as the engine's token ids, nothing generated.

    POST /v1/completions/render        -> [{"request_id", "token_ids", "model",
                                            "sampling_params"}]  (one per prompt)
    POST /v1/chat/completions/render   -> {"request_id", "token_ids", "model",
                                           "sampling_params"}

(vLLM's `GenerateRequest` shape.) Token-aware routers (`vllm-router` 0.1.17's
`cache_aware`) call these before placing a request, so they compare the same token ids
the engine will cache. The tokenisation itself is the engine's business: the caller passes
`PromptTokens`, a function of (route path, body) -> token ids (for the simulator, its
tokenizer over its chat template, `bench.sim_serve_cmd.sim_prompt_tokens`). A body that
does not parse is answered 400 with an OpenAI error object, as the completion routes do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cluster.config.settings import ServedModel
from cluster.errors import InvalidRequest, ModelyardError
from cluster.gateway.http.app import COMPLETION_PATHS
from cluster.gateway.http.errors import error_response

PromptTokens = Callable[[str, bytes], list[list[int]]]


def _generate_request(model: ServedModel, ids: list[int], body: dict[str, Any]) -> dict[str, Any]:
    sampling = {"max_tokens": body.get("max_tokens") or body.get("max_completion_tokens")}
    return {
        "request_id": uuid.uuid4().hex,
        "token_ids": ids,
        "model": model.id,
        "sampling_params": {k: v for k, v in sampling.items() if v is not None},
    }


def add_render_routes(app: FastAPI, model: ServedModel, prompt_tokens: PromptTokens) -> None:
    async def render(request: Request) -> Response:
        path = request.url.path.removesuffix("/render")
        raw = await request.body()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise InvalidRequest("the body must be a JSON object")
            prompts = prompt_tokens(path, raw)
        except ModelyardError as err:  # always a 400, whatever the parser's own status
            return error_response(InvalidRequest(err.message, param=err.param))
        except (ValueError, KeyError, TypeError) as err:
            message = f"cannot render this request: {type(err).__name__}: {err}"
            return error_response(InvalidRequest(message))
        rendered = [_generate_request(model, ids, body) for ids in prompts]
        if path.endswith("/chat/completions"):
            return JSONResponse(rendered[0])
        return JSONResponse(rendered)

    for path in COMPLETION_PATHS:
        app.add_api_route(f"{path}/render", render, methods=["POST"])
