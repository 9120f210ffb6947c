"""Raw request bytes → typed request, or a typed error that names the offending field.

Three steps, each with its own error:

1. JSON: not UTF-8, not JSON, NaN/Infinity, a lone UTF-16 surrogate escape (`"\ud800"`:
   no text can hold it), or nested too deeply → `MalformedJSON` (400).
   A JSON value that is not an object → `InvalidRequest` with no param.
2. Schema (`cluster.api.schema`, pydantic in strict mode: no "1" for 1, no "yes" for true).
   The first failing field is reported: `param` is its dotted path in the *client's* JSON
   ("messages[1].tool_call_id") — pydantic's union branch labels are dropped from the path —
   and the message names that path and the rule it broke. Unknown keys at the top level read
   as OpenAI's "Unrecognized request argument supplied: …".
3. Conversation rules that span messages (`check_conversation`).
4. JSON Schemas inside the request (tool parameters, `response_format`) against their
   meta-schema (`cluster.api.tool_schemas`), naming the offending path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from cluster.api.messages import AssistantMessage, Message, ToolMessage
from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.api.tool_schemas import check_request_schemas
from cluster.errors import InvalidRequest, MalformedJSON
from cluster.field_paths import field_path

RequestT = TypeVar("RequestT", bound=BaseModel)
Loc = tuple[int | str, ...]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name!r} is not valid JSON")


def parse_json_body(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object."""
    if not body.strip():
        raise MalformedJSON("The request body is empty; expected a JSON object.")
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise MalformedJSON("The JSON body of the request is nested too deeply.") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedJSON(f"We could not parse the JSON body of your request: {err}") from None
    if _SURROGATE_ESCAPE.search(body) and not _encodable(data):
        raise MalformedJSON(
            "The JSON body of the request holds a lone UTF-16 surrogate escape (\\ud800-"
            "\\udfff without its pair), which is not text."
        )
    if not isinstance(data, dict):
        raise InvalidRequest(
            f"The request body must be a JSON object, not a JSON {type(data).__name__}."
        )
    return data


#: `\uD800`-`\uDFFF` escapes; only they can put a lone surrogate into decoded JSON (raw
#: surrogate bytes are invalid UTF-8). Pairs decode to one character and are fine.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def _encodable(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _client_loc(loc: Loc, data: object, *, keep_last: bool) -> Loc:
    """Keep only the parts of a pydantic location that exist in the client's JSON.

    Pydantic inserts union labels ('tool' for a discriminated message, 'list[TextPart]',
    "literal['none','auto']", 'function-after[...]'); they are not keys of the input, so a
    walk through the input drops them. `keep_last` keeps a trailing key that is absent
    because it is the missing one.
    """
    kept: list[int | str] = []
    current = data
    for i, part in enumerate(loc):
        if _has(current, part):
            kept.append(part)
            current = current[part]  # type: ignore[index]
        elif keep_last and i == len(loc) - 1 and isinstance(current, dict):
            kept.append(part)
    return tuple(kept)


def _has(container: object, part: int | str) -> bool:
    if isinstance(container, dict):
        return isinstance(part, str) and part in container
    if isinstance(container, list):
        return isinstance(part, int) and 0 <= part < len(container)
    return False


def _input_note(item: ErrorDetails) -> str:
    value = item.get("input")
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 40):
        return f" (got {json.dumps(value)})"
    return ""


def _rule(item: ErrorDetails) -> str:
    msg = item["msg"]
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _describe(param: str, items: Sequence[ErrorDetails]) -> str:
    kind = items[0]["type"]
    if kind == "missing":
        return f"Missing required parameter: '{param}'."
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: '{param}'."
    rules = " or ".join(dict.fromkeys(_rule(item) for item in items))
    where = f"'{param}'" if param else "the request"
    return f"Invalid value for {where}: {rules}{_input_note(items[0])}."


def _tag_field(item: ErrorDetails) -> ErrorDetails:
    """A discriminated-union error is about the discriminator key (a message's `role`)."""
    if item["type"] not in ("union_tag_invalid", "union_tag_not_found"):
        return item
    key = str(item.get("ctx", {}).get("discriminator", "")).strip("'")
    if not key.isidentifier():
        return item
    kind = "missing" if item["type"] == "union_tag_not_found" else item["type"]
    return {**item, "type": kind, "loc": (*item["loc"], key)}


def to_invalid_request(err: ValidationError, data: object) -> InvalidRequest:
    """The first failing top-level field, at its most specific location, as one error."""
    located: list[tuple[Loc, ErrorDetails]] = []
    for raw in err.errors():
        item = _tag_field(raw)
        loc = _client_loc(item["loc"], data, keep_last=item["type"] == "missing")
        located.append((loc, item))
    unknown = [loc for loc, item in located if item["type"] == "extra_forbidden" and len(loc) == 1]
    if unknown:
        names = ", ".join(str(loc[0]) for loc in unknown)
        return InvalidRequest(
            f"Unrecognized request argument supplied: {names}", param=str(unknown[0][0])
        )
    head = located[0][0][:1]
    group = [(loc, item) for loc, item in located if loc[:1] == head]
    deepest = max(len(loc) for loc, _ in group)
    loc = next(loc for loc, _ in group if len(loc) == deepest)
    items = [item for item_loc, item in group if item_loc == loc]
    param = field_path(loc)
    return InvalidRequest(_describe(param, items), param=param or None)


def validate_model(model: type[RequestT], data: dict[str, Any]) -> RequestT:
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as err:
        raise to_invalid_request(err, data) from None


def check_conversation(messages: Sequence[Message]) -> None:
    """Rules that span messages, as OpenAI and Mistral enforce them.

    - a `tool` message answers a call of the assistant message before it (by `tool_call_id`);
    - an assistant message with `tool_calls` is followed by one tool message per call;
    - `prefix: true` (Mistral's continuation of an assistant reply) only on the last message.
    """
    pending: dict[str, str] = {}  # tool_call_id -> its param path
    last = len(messages) - 1
    for i, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            if pending.pop(message.tool_call_id, None) is None:
                raise InvalidRequest(
                    f"Invalid value for 'messages[{i}].tool_call_id': "
                    f"{message.tool_call_id!r} does not answer a tool call of the preceding "
                    "assistant message.",
                    param=f"messages[{i}].tool_call_id",
                )
            continue
        _require_answered(pending)
        if isinstance(message, AssistantMessage):
            if message.prefix and i != last:
                raise InvalidRequest(
                    f"Invalid value for 'messages[{i}].prefix': only the last message "
                    "may be an assistant prefix.",
                    param=f"messages[{i}].prefix",
                )
            for j, call in enumerate(message.tool_calls or []):
                pending[call.id] = f"messages[{i}].tool_calls[{j}].id"
    _require_answered(pending)


def _require_answered(pending: dict[str, str]) -> None:
    if pending:
        call_id, param = next(iter(pending.items()))
        raise InvalidRequest(
            f"Invalid value for '{param}': an assistant message with 'tool_calls' must be "
            f"followed by tool messages answering each call; {call_id!r} has no answer.",
            param=param,
        )


def validate_chat(data: dict[str, Any]) -> ChatCompletionRequest:
    request = validate_model(ChatCompletionRequest, data)
    check_conversation(request.messages)
    check_request_schemas(request)
    return request


def validate_completion(data: dict[str, Any]) -> CompletionRequest:
    return validate_model(CompletionRequest, data)


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    return validate_chat(parse_json_body(body))


def parse_completion_request(body: bytes) -> CompletionRequest:
    return validate_completion(parse_json_body(body))
