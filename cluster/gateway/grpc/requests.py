"""Proto requests → the HTTP API's validated request models (`cluster.api.schema`).

A proto request becomes the JSON object an HTTP client would have sent — same keys, only
the fields the caller set — and goes through the very same validation
(`cluster.api.validation.validate_chat` / `validate_completion`), so both front doors accept
and refuse exactly the same requests, naming the same field (`messages[1].tool_call_id`).

Presence: proto3 `optional` scalars and message fields are copied only when set; repeated
fields only when non-empty; a string `model` only when non-empty (so an unset model reads
"Missing required parameter: 'model'", as over HTTP). Enum value 0 (`*_UNSPECIFIED`) means
unset. `google.protobuf.Struct` (tool parameters, JSON schemas) holds every number as a
double; integral values come back as ints, as the JSON they stand for had them.

Completion prompts: `prompt` (text) and `prompt_token_ids` (token-id lists) become the one
JSON `prompt` list; sending both is refused like a mixed JSON list.

Streaming calls always ask for usage (`stream_options.include_usage`): the last chunk of a
gRPC stream carries usage and cost.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.api.validation import validate_chat, validate_completion
from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2, completion_pb2

ROLES = {
    chat_pb2.ROLE_SYSTEM: "system",
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
    chat_pb2.ROLE_TOOL: "tool",
}
TOOL_CHOICE_MODES = {
    chat_pb2.TOOL_CHOICE_MODE_NONE: "none",
    chat_pb2.TOOL_CHOICE_MODE_AUTO: "auto",
    chat_pb2.TOOL_CHOICE_MODE_REQUIRED: "required",
}
RESPONSE_FORMATS = {
    chat_pb2.RESPONSE_FORMAT_TYPE_UNSPECIFIED: "text",
    chat_pb2.RESPONSE_FORMAT_TYPE_TEXT: "text",
    chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT: "json_object",
    chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA: "json_schema",
}

#: Optional scalar fields copied as they are when present, shared by both request kinds.
_GENERATION_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "n",
    "max_tokens",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
)


def _json_value(value: Any) -> Any:
    """Struct numbers are doubles: 3.0 → 3 (JSON Schema treats them alike; the HTTP path
    would have seen the integer)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def struct_to_dict(struct: Any) -> dict[str, Any]:
    data = json_format.MessageToDict(struct)
    return {key: _json_value(value) for key, value in data.items()}


def _copy_present(message: Any, names: tuple[str, ...], out: dict[str, Any]) -> None:
    for name in names:
        if message.HasField(name):
            out[name] = getattr(message, name)


def _tool_call(call: chat_pb2.ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.function.name, "arguments": call.function.arguments},
    }


def message_to_json(message: chat_pb2.ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {}
    role = ROLES.get(message.role)
    if role is not None:
        out["role"] = role
    _copy_present(message, ("content", "name", "tool_call_id", "reasoning_content", "prefix"), out)
    if message.tool_calls:
        out["tool_calls"] = [_tool_call(call) for call in message.tool_calls]
    return out


def tool_to_json(tool: chat_pb2.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.function.name}
    _copy_present(tool.function, ("description", "strict"), function)
    if tool.function.HasField("parameters"):
        function["parameters"] = struct_to_dict(tool.function.parameters)
    return {"type": "function", "function": function}


def tool_choice_to_json(choice: chat_pb2.ToolChoice) -> str | dict[str, Any] | None:
    which = choice.WhichOneof("choice")
    if which == "function_name":
        return {"type": "function", "function": {"name": choice.function_name}}
    if which == "mode":
        return TOOL_CHOICE_MODES.get(choice.mode)
    return None


def response_format_to_json(fmt: chat_pb2.ResponseFormat) -> dict[str, Any]:
    out: dict[str, Any] = {"type": RESPONSE_FORMATS.get(fmt.type, "text")}
    if fmt.HasField("json_schema"):
        schema = fmt.json_schema
        body: dict[str, Any] = {"name": schema.name}
        _copy_present(schema, ("description", "strict"), body)
        if schema.HasField("schema"):
            body["schema"] = struct_to_dict(schema.schema)
        out["json_schema"] = body
    return out


def _stream_fields(stream: bool, out: dict[str, Any]) -> None:
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}


def chat_to_json(request: chat_pb2.ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The JSON body an HTTP client would send for this request."""
    out: dict[str, Any] = {}
    if request.model:
        out["model"] = request.model
    if request.messages:
        out["messages"] = [message_to_json(m) for m in request.messages]
    _copy_present(request, _GENERATION_FIELDS, out)
    _copy_present(request, ("max_completion_tokens", "parallel_tool_calls", "safe_prompt"), out)
    if request.stop:
        out["stop"] = list(request.stop)
    if request.tools:
        out["tools"] = [tool_to_json(tool) for tool in request.tools]
    if request.HasField("tool_choice"):
        choice = tool_choice_to_json(request.tool_choice)
        if choice is not None:
            out["tool_choice"] = choice
    if request.HasField("response_format"):
        out["response_format"] = response_format_to_json(request.response_format)
    if request.metadata:
        out["metadata"] = dict(request.metadata)
    _stream_fields(stream, out)
    return out


def completion_to_json(
    request: completion_pb2.CompletionRequest, *, stream: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.model:
        out["model"] = request.model
    prompts: list[Any] = list(request.prompt)
    prompts += [list(p.ids) for p in request.prompt_token_ids]
    if prompts:  # both kinds at once reads as a mixed list: refused, naming `prompt`
        out["prompt"] = prompts
    _copy_present(request, _GENERATION_FIELDS, out)
    if request.stop:
        out["stop"] = list(request.stop)
    _stream_fields(stream, out)
    return out


def chat_request(request: chat_pb2.ChatRequest, *, stream: bool) -> ChatCompletionRequest:
    """Validated exactly as POST /v1/chat/completions; raises `InvalidRequest`."""
    return validate_chat(chat_to_json(request, stream=stream))


def completion_request(
    request: completion_pb2.CompletionRequest, *, stream: bool
) -> CompletionRequest:
    """Validated exactly as POST /v1/completions; raises `InvalidRequest`."""
    return validate_completion(completion_to_json(request, stream=stream))
