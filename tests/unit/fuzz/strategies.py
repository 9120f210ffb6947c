"""Hypothesis strategies for OpenAI request bodies: valid ones built from the request
models' fields, and mutations of them (wrong types, out-of-range and non-finite numbers,
deep nesting, odd unicode, unknown fields)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from tests.unit.fuzz.gateway import MODELS

#: Text with the odd parts of unicode: combining marks, RTL, emoji, NUL, private use
#: (no lone surrogates: they cannot be UTF-8; the raw-body suite sends them escaped).
ODD_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), min_size=0, max_size=40
) | st.sampled_from(["", "\u0000", "\u202e\u0301e", "🦜" * 8, "\uffff", "a" * 300])

MODEL = st.sampled_from(
    [*MODELS, "casperhansen-mistral-small-24b-instruct-2501-awq"]
) | st.sampled_from(["casperhansen/mistral-small-24b-instruct-2501-awq:sql-lora", "nope/none", ""])

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ODD_TEXT
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=8,
)

SCHEMA = st.sampled_from(
    [
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        {
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 3}},
            "required": ["n"],
        },
        {
            "type": "object",
            "properties": {"xs": {"type": "array", "items": {"type": "number"}, "minItems": 2}},
            "required": ["xs"],
        },
        {
            "type": "object",
            "properties": {
                "e": {"enum": ["a", "b"]},
                "o": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
            },
            "required": ["e", "o"],
        },
        {},
    ]
)

#: Schema-shaped objects with arbitrary values: mostly not valid JSON Schemas (400 naming
#: the path), sometimes odd valid ones the simulator must still fill in.
SCHEMA_KEYS = st.sampled_from(
    ["type", "properties", "required", "items", "enum", "const", "anyOf", "$schema", "$ref",
     "minItems", "maxItems", "minLength", "minimum", "format", "additionalProperties"]
)  # fmt: skip
SCHEMA = SCHEMA | st.dictionaries(SCHEMA_KEYS, JSON, max_size=4)

FUNCTION_NAME = st.from_regex(r"\A[a-zA-Z0-9_-]{1,64}\Z")


@st.composite
def tools(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(FUNCTION_NAME, min_size=1, max_size=3, unique=True))
    return [
        {"type": "function", "function": {"name": name, "parameters": draw(SCHEMA)}}
        for name in names
    ]


def _content() -> st.SearchStrategy[Any]:
    return ODD_TEXT | st.lists(
        st.builds(lambda t: {"type": "text", "text": t}, ODD_TEXT), max_size=2
    )


@st.composite
def sampling(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "top_k": st.integers(-1, 50),
        "n": st.integers(1, 3),
        "max_tokens": st.integers(1, 24),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "seed": st.integers(-(2**63), 2**64 - 1),
        "stop": st.text(min_size=1, max_size=4)
        | st.lists(st.text(min_size=1, max_size=4), max_size=4),
        "stream": st.booleans(),
        "user": ODD_TEXT,
    }
    out = {k: draw(v) for k, v in fields.items() if draw(st.booleans())}
    if out.get("stream") and draw(st.booleans()):
        out["stream_options"] = {"include_usage": draw(st.booleans())}
    return out


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid chat request (as the schema defines validity)."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_content())})
    messages.append({"role": "user", "content": draw(_content())})
    if draw(st.booleans()):
        call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": "call_1", "content": draw(ODD_TEXT)})
        messages.append({"role": "user", "content": draw(ODD_TEXT)})
    body: dict[str, Any] = {"model": draw(MODEL), "messages": messages, **draw(sampling())}
    if draw(st.booleans()):
        body["tools"] = draw(tools())
        choice = draw(st.sampled_from(["none", "auto", "required", "named"]))
        body["tool_choice"] = (
            {"type": "function", "function": {"name": body["tools"][0]["function"]["name"]}}
            if choice == "named"
            else choice
        )
        if draw(st.booleans()):
            body["parallel_tool_calls"] = draw(st.booleans())
    if draw(st.booleans()):
        body["response_format"] = draw(
            st.sampled_from(
                [
                    {"type": "text"},
                    {"type": "json_object"},
                    {
                        "type": "json_schema",
                        "json_schema": {"name": "x", "schema": {"type": "object"}},
                    },
                ]
            )
        )
    if draw(st.booleans()):
        body["max_completion_tokens"] = body.get("max_tokens", draw(st.integers(1, 24)))
    if draw(st.integers(0, 9)) == 0:
        body["logprobs"] = True  # vLLM only: the simulator answers 400 naming it
    return body


TOKEN_IDS = st.lists(st.integers(0, 50_000), min_size=1, max_size=40)


@st.composite
def completion_bodies(draw: st.DrawFn) -> dict[str, Any]:
    prompt = draw(
        ODD_TEXT
        | st.lists(ODD_TEXT, min_size=1, max_size=4)
        | TOKEN_IDS
        | st.lists(TOKEN_IDS, min_size=1, max_size=4)
    )
    return {"model": draw(MODEL), "prompt": prompt, **draw(sampling())}


BAD_VALUES = (
    st.sampled_from(
        [
            None,
            True,
            -1,
            0,
            2**64,
            -(2**63) - 1,
            1e308,
            -1e308,
            0.5,
            "",
            "1",
            [],
            {},
            [[]],
            {"a": {}},
        ]
    )
    | JSON
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


def _set(body: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        body = body[part]
    body[path[-1]] = value


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid body with one to three changes: a value replaced by a wrong one, a key
    removed, an unknown key added, or a value wrapped in deep nesting."""
    body = copy.deepcopy(draw(valid))  # sampled values are shared objects: never edit them
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(body)
        kind = draw(st.sampled_from(["replace", "remove", "unknown", "nest"]))
        if kind == "unknown" or not paths:
            target = body
            if paths and draw(st.booleans()):
                parent = draw(st.sampled_from(paths))
                holder = body
                for part in parent:
                    holder = holder[part]
                target = holder if isinstance(holder, dict) else body
            target[draw(ODD_TEXT)] = copy.deepcopy(draw(BAD_VALUES))
            continue
        path = draw(st.sampled_from(paths))
        if kind == "remove":
            holder = body
            for part in path[:-1]:
                holder = holder[part]
            del holder[path[-1]]
        elif kind == "replace":
            _set(body, path, copy.deepcopy(draw(BAD_VALUES)))
        else:
            depth = draw(st.integers(10, 60))
            value: Any = 1
            for _ in range(depth):
                value = [value] if draw(st.booleans()) else {"a": value}
            _set(body, path, value)
    return body
