"""Hypothesis strategies for protobuf messages, generated from their descriptors.

Every field of a message (recursively, depth-bounded) is set or left unset at random, with
values across its type's whole range: integers at their bounds, doubles including NaN and
±Infinity, strings with odd unicode, enums including numbers the proto does not define,
`google.protobuf.Struct` as arbitrary JSON objects, repeated and map fields of a few
entries. `repaired` then makes about half of the requests plausible (a served model, a user
message, a small `max_tokens`) so that generation reaches the engines, not only validation.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor as d
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from hypothesis import strategies as st

from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2, completion_pb2
from tests.unit.fuzz.gateway import MODELS

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30) | st.sampled_from(
    ["", "\u0000", "🦜🦜", "\u202e", "a" * 200]
)
F = d.FieldDescriptor
INTS: dict[int, st.SearchStrategy[int]] = {
    F.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    F.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    F.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    F.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    F.TYPE_UINT32: st.integers(0, 2**32 - 1) | st.integers(0, 8),
    F.TYPE_UINT64: st.integers(0, 2**64 - 1),
}
JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
MAX_DEPTH = 3


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _scalar(field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in INTS:
        return INTS[field.type]
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(
            allow_nan=True, allow_infinity=True, width=64 if field.type == F.TYPE_DOUBLE else 32
        )
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_STRING:
        return TEXT
    if field.type == F.TYPE_BYTES:
        return st.binary(max_size=20)
    if field.type == F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.sampled_from(numbers) | st.integers(-5, 99)
    raise TypeError(f"unhandled field type {field.type}")


def _value(field: d.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == F.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Struct":
            return st.dictionaries(TEXT, JSON, max_size=4).map(_struct)
        return messages(field.message_type, depth + 1)
    return _scalar(field)


@st.composite
def messages(draw: st.DrawFn, descriptor: d.Descriptor, depth: int = 0) -> Message:
    from google.protobuf import message_factory

    message = message_factory.GetMessageClass(descriptor)()
    if depth > MAX_DEPTH:
        return message
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = field.message_type.fields
            entries = draw(
                st.dictionaries(_scalar(key_field), _value(value_field, depth), max_size=3)
            )
            target = getattr(message, field.name)
            for key, value in entries.items():
                if value_field.type == F.TYPE_MESSAGE:
                    target[key].CopyFrom(value)
                else:
                    target[key] = value
        elif field.is_repeated:
            items = draw(st.lists(_value(field, depth), max_size=3))
            target = getattr(message, field.name)
            if field.type == F.TYPE_MESSAGE:
                for item in items:
                    target.add().CopyFrom(item)
            else:
                target.extend(items)
        elif field.type == F.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(draw(_value(field, depth)))
        else:
            setattr(message, field.name, draw(_value(field, depth)))
    return message


@st.composite
def repaired(draw: st.DrawFn, strategy: st.SearchStrategy[Message]) -> Message:
    """Half the time the generated message as it is; else a plausible request (a served
    model, one user message or prompt, a small `max_tokens`, maybe `n`) that keeps one
    field of the generated one, whatever its value."""
    generated = draw(strategy)
    if draw(st.booleans()):
        return generated
    message = type(generated)(
        model=draw(st.sampled_from(MODELS)), max_tokens=draw(st.integers(1, 16))
    )
    if draw(st.booleans()):
        message.n = draw(st.integers(1, 3))
    if isinstance(message, chat_pb2.ChatRequest):
        message.messages.add(role=chat_pb2.ROLE_USER, content=draw(TEXT))
    elif isinstance(message, completion_pb2.CompletionRequest):
        message.prompt.append(draw(TEXT))
    present = [
        field for field, _ in generated.ListFields() if field.name not in ("model", "max_tokens")
    ]
    if present:
        field = draw(st.sampled_from(present))
        message.ClearField(field.name)
        if field.is_repeated and field.type != field.TYPE_MESSAGE:
            getattr(message, field.name).extend(getattr(generated, field.name))
        elif field.is_repeated or field.type == field.TYPE_MESSAGE:
            getattr(message, field.name).MergeFrom(getattr(generated, field.name))
        else:
            setattr(message, field.name, getattr(generated, field.name))
    return message


CHAT_REQUESTS = repaired(messages(chat_pb2.ChatRequest.DESCRIPTOR))
COMPLETION_REQUESTS = repaired(messages(completion_pb2.CompletionRequest.DESCRIPTOR))
