"""A JSON value that satisfies a function's JSON-schema `parameters`, deterministically.

Rules (first match wins): `const` → it; `enum` → its first value; `anyOf`/`oneOf`/`allOf` →
the first subschema; a type list → its first non-"null" type; `object` (or a schema with
`properties`) → every REQUIRED property filled (optional ones left out); `array` → one item
(or `minItems` items, at most `maxItems`); `string` → pseudo-words, padded to `minLength`
and cut to `maxLength`, or a canned value for the common `format`s; `integer`/`number` →
1 clamped into [`minimum`, `maximum`]; `boolean` → true; `null` → null; anything else
(no type, `$ref`) → an empty object. Sizes are capped (`MAX_ITEMS` items, `MAX_CHARS`
characters) so that a schema asking for a billion items cannot stall the engine; past the
cap the value is shorter than the schema asks.
"""

from __future__ import annotations

import random
from typing import Any

_FORMATS = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}

MAX_DEPTH = 8
MAX_ITEMS = 8
MAX_CHARS = 256


def example_value(schema: Any, rng: random.Random, *, words: list[str], depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return {}
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_value(options[0], rng, words=words, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        props = schema.get("properties") or {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        return {
            name: example_value(props.get(name, {}), rng, words=words, depth=depth + 1)
            for name in required
        }
    if kind == "array":
        count = min(MAX_ITEMS, max(1, int(schema.get("minItems", 1))))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        item = schema.get("items", {"type": "string"})
        return [example_value(item, rng, words=words, depth=depth + 1) for _ in range(count)]
    if kind == "string":
        return _string(schema, rng, words)
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {}


def _string(schema: dict[str, Any], rng: random.Random, words: list[str]) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
    min_len = min(MAX_CHARS, int(schema.get("minLength", 0)))
    while len(text) < min_len:
        text += " " + rng.choice(words)
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    value: float = 1
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, int | float) and value < low:
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if isinstance(high, int | float) and value > high:
        value = high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    return int(value) if integer else float(value)
