"""Translate vLLM's errors into the one `cluster.errors` tree, once, at the engine's edge.

vLLM reports a bad request three ways: an `ErrorResponse` returned by its serving layer,
an exception raised while rendering (e.g. `VLLMValidationError`), or an `{"error": ...}`
event inside the SSE stream. All three become the same typed error:

    status / kind                                     ->  modelyard error
    400 with parameter input_tokens / input_text      ->  ContextLengthExceeded (param =
        or "maximum context length" in the message        "messages" or "prompt")
    400 (other)                                       ->  InvalidRequest (vLLM's message)
    404 (unknown model / adapter)                     ->  ModelNotFound
    503, engine dead                                  ->  EngineUnavailable
    anything else                                     ->  ModelyardError (500)

Exceptions are first classified by vLLM's own `create_error_response` (so the status a
vLLM server would answer with is the one we map), then mapped by the table above.
"""

from __future__ import annotations

from typing import Any

from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.exception_handling.error_response import create_error_response
from vllm.v1.engine.exceptions import EngineDeadError

from cluster.errors import (
    ContextLengthExceeded,
    EngineUnavailable,
    InvalidRequest,
    ModelNotFound,
    ModelyardError,
)

_LENGTH_PARAMS = {"input_tokens", "input_text", "prompt_tokens"}
_LENGTH_PHRASES = ("maximum context length", "exceeds model's maximum context")


def error_from_fields(
    code: int, message: str, param: str | None, *, prompt_param: str
) -> ModelyardError:
    """Map one vLLM error (HTTP-like `code`, message, parameter) to a typed error."""
    if code == 400:
        if param in _LENGTH_PARAMS or any(p in message for p in _LENGTH_PHRASES):
            return ContextLengthExceeded(message, param=prompt_param)
        return InvalidRequest(message, param=param)
    if code == 404:
        return ModelNotFound(message, param="model")
    if code in (422, 501):
        return InvalidRequest(message, param=param)
    if code == 503:
        return EngineUnavailable(message)
    return ModelyardError(f"vLLM error ({code}): {message}")


def error_from_response(response: ErrorResponse, *, prompt_param: str) -> ModelyardError:
    err = response.error
    return error_from_fields(err.code, err.message, err.param, prompt_param=prompt_param)


def error_from_event(payload: dict[str, Any], *, prompt_param: str) -> ModelyardError:
    """An `{"error": {...}}` SSE event from vLLM's stream generators."""
    err = payload.get("error")
    if not isinstance(err, dict):
        return ModelyardError(f"vLLM stream error: {payload!r}")
    code = err.get("code")
    return error_from_fields(
        code if isinstance(code, int) else 500,
        str(err.get("message", "")),
        err.get("param") if isinstance(err.get("param"), str) else None,
        prompt_param=prompt_param,
    )


def error_from_exception(exc: BaseException, *, prompt_param: str) -> ModelyardError:
    if isinstance(exc, ModelyardError):
        return exc
    if isinstance(exc, EngineDeadError):
        return EngineUnavailable(f"the vLLM engine stopped: {exc}")
    if not isinstance(exc, Exception):
        return ModelyardError(f"vLLM raised {type(exc).__name__}")
    return error_from_response(create_error_response(exc), prompt_param=prompt_param)
