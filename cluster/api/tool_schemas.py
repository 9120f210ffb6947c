"""JSON Schemas inside a chat request, checked against their meta-schema (`jsonschema`).

A tool's `function.parameters` and `response_format.json_schema.schema` must be JSON
Schemas: engines render them into prompts, generate arguments from them (the simulator),
or compile them into grammars (vLLM's structured output), and a value that is not a schema
(`"properties": -1`) would fail there as a 500. Each is checked against the meta-schema of
the draft its `$schema` names (Draft 2020-12 when it names none or an unknown one), and
the first violation is a 400 whose `param` is the client's JSON path to the offending
value, e.g. `tools[0].function.parameters.properties`.

The function name rule (OpenAI's `^[a-zA-Z0-9_-]{1,64}$`) and "a named `tool_choice`
names one of `tools`" are checked by the request model (`cluster.api.messages`,
`cluster.api.schema`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from cluster.api.schema import ChatCompletionRequest
from cluster.errors import InvalidRequest


def json_path(base: str, parts: Iterable[Any]) -> str:
    """`base` followed by `.key` / `[index]` for each part."""
    out = base
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_schema(schema: dict[str, Any], param: str) -> None:
    """Raise `InvalidRequest` naming the path of the first meta-schema violation."""
    if not isinstance(schema.get("$schema", ""), str):
        where = f"{param}.$schema"
        raise InvalidRequest(
            f"Invalid value for '{where}': not a valid JSON Schema: '$schema' must be a URI "
            "string.",
            param=where,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # an unknown `$schema` URI
        validator = validator_for(schema, default=Draft202012Validator)
    try:
        meta = validator(validator.META_SCHEMA)
        error = best_match(meta.iter_errors(schema))
    except RecursionError:
        raise InvalidRequest(
            f"Invalid value for '{param}': the JSON Schema is nested too deeply.", param=param
        ) from None
    if error is None:
        return
    where = json_path(param, error.absolute_path)
    raise InvalidRequest(
        f"Invalid value for '{where}': not a valid JSON Schema: {_short(error.message)}",
        param=where,
    )


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def check_request_schemas(request: ChatCompletionRequest) -> None:
    for i, tool in enumerate(request.tools or []):
        if tool.function.parameters is not None:
            check_schema(tool.function.parameters, f"tools[{i}].function.parameters")
    fmt = request.response_format
    if fmt is not None and fmt.json_schema is not None and fmt.json_schema.schema_ is not None:
        check_schema(fmt.json_schema.schema_, "response_format.json_schema.schema")


__all__ = ["check_request_schemas", "check_schema", "json_path"]
