"""The OpenAPI 3.1 document the gateway serves at `GET /openapi.json`.

Request bodies are the very pydantic models the routes validate with
(`cluster.api.schema`), so the document cannot drift from what is accepted; response
bodies are `cluster.api.responses`. FastAPI's own generator is not used: the routes read
raw bodies (bounded, validated once, never FastAPI's 422), so it would see no body at all.

Three fields accept more shapes on the wire than their validated form, and say so here:
`prompt` (a string, a list of strings, a list of token ids, or a list of token-id lists),
`stop` (a string or a list), and `model` (any name; the served ids are listed first, so a
client or a test generator finds the real ones). Every error status carries OpenAI's error
object. Tools that read the document: client generators, and schemathesis in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from cluster.api.responses import (
    ChatCompletion,
    Completion,
    ErrorResponse,
    ModelCard,
    ModelList,
)
from cluster.api.schema import ChatCompletionRequest, CompletionRequest

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    "400": "invalid request (names `param`)",
    "401": "missing or wrong API key",
    "404": "unknown model",
    "413": "body larger than gateway.max_body_bytes",
    "429": "rate limited",
    "503": "no replica can serve now",
    "504": "deadline passed or the engine stalled",
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _widen(components: dict[str, Any], served: Sequence[str]) -> None:
    for name in ("ChatCompletionRequest", "CompletionRequest"):
        props = components[name]["properties"]
        props["model"] = {
            "anyOf": [{"enum": list(served)}, {"type": "string", "minLength": 1}],
            "description": "a served model id, alias, or `model:adapter`",
        }
        stop = props["stop"]
        props["stop"] = {"anyOf": [{"type": "string", "minLength": 1}, *stop["anyOf"]]}
    prompt = components["CompletionRequest"]["properties"]["prompt"]
    text, tokens = prompt["items"]["anyOf"]
    components["CompletionRequest"]["properties"]["prompt"] = {
        "anyOf": [text, tokens, prompt],
        "description": "a string, a list of strings, token ids, or a list of token-id lists",
    }


def _errors(error: dict[str, Any]) -> dict[str, Any]:
    return {
        status: {"description": text, "content": {"application/json": {"schema": error}}}
        for status, text in ERROR_STATUSES.items()
    }


def _generation(request: dict[str, Any], response: dict[str, Any], error: dict[str, Any]) -> Any:
    return {
        "post": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "the answer, or (with `stream: true`) server-sent events",
                    "content": {
                        "application/json": {"schema": response},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_errors(error),
            },
        }
    }


def openapi_document(served: Sequence[str], prefixes: Sequence[str]) -> dict[str, Any]:
    """The document for a gateway serving `served` model ids under each of `prefixes`."""
    components: dict[str, Any] = {}
    chat = _schema(ChatCompletionRequest, components)
    completion = _schema(CompletionRequest, components)
    chat_out = _schema(ChatCompletion, components)
    completion_out = _schema(Completion, components)
    error = _schema(ErrorResponse, components)
    model_list = _schema(ModelList, components)
    card = _schema(ModelCard, components)
    _widen(components, served)
    paths: dict[str, Any] = {}
    for prefix in prefixes:
        paths[f"{prefix}/chat/completions"] = _generation(chat, chat_out, error)
        paths[f"{prefix}/completions"] = _generation(completion, completion_out, error)
        paths[f"{prefix}/models"] = {
            "get": {
                "responses": {
                    "200": {
                        "description": "served models",
                        "content": {"application/json": {"schema": model_list}},
                    },
                    "401": _errors(error)["401"],
                }
            }
        }
        paths[f"{prefix}/models/{{model_id}}"] = {
            "get": {
                "parameters": [
                    {
                        "name": "model_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "one served model",
                        "content": {"application/json": {"schema": card}},
                    },
                    "401": _errors(error)["401"],
                    "404": _errors(error)["404"],
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelyard", "version": "v1"},
        "paths": paths,
        "components": {"schemas": components},
    }
