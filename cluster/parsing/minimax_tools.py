"""MiniMax-M1's tool calls, parsed out of the model's text into OpenAI tool calls.

MiniMax-M1 writes its calls inline (its function-call guide, "Model Output Format"):

    <think>…</think>
    <tool_calls>
    {"name": "search_web", "arguments": {"query_list": ["OpenAI"]}}
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_calls>

vLLM 0.32 has no parser for this format (its `minimax_m2` / `minimax_m3` parsers read the
later XML format), so, as with `<think>` (`reasoning.py`), the core parses it: catalog
`tool_parser: minimax_m1` (`cluster.config.catalog.CORE_TOOL_PARSERS`). The reasoning
parser runs first, so a `<tool_calls>` written inside `<think>` stays reasoning.

A streaming state machine with two states (outside / inside a block). Text arrives in
arbitrary pieces, so a tag may be split across pieces; the parser holds back the longest
tail that is still the beginning of a tag and decides when more text arrives (or at
`finish`). Feeding the same text in any chunking gives the same calls and the same
concatenated content.

Rules:
- outside a block, text is content; `<tool_calls>` opens a block;
- inside, each complete JSON object `{"name": <non-empty string>, "arguments": …}` is one
  call, streamed whole as soon as its closing brace arrives: `index` counts calls from 0,
  `id` is fresh (`call_<24 hex>`), `arguments` is the JSON text of an object argument
  (re-serialised), a string argument as is, `{}` when absent. Objects may span lines (the
  guide writes one per line; structured output may pretty-print);
- anything in a block that is not such an object is content, verbatim (nothing the model
  wrote is lost); it is judged when the block closes or the text ends, so a block cut short
  by `max_tokens` keeps its complete calls and returns the unfinished one as content;
- whitespace touching a tag (before `<tool_calls>`, after `</tool_calls>`) and between calls
  is dropped; content after a block (or a verbatim piece of one) starts on a new line when
  content precedes it.

`constrained_call_format(functions)` is the other direction: the structured-output grammar
(an xgrammar structural tag) that makes an engine write exactly one call in this format,
for a named or "required" `tool_choice`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cluster.api.messages import FunctionDefinition
from cluster.engine.types import ToolCallDelta
from cluster.parsing.tags import held_tail, strip_leading

OPEN_TAG = "<tool_calls>"
CLOSE_TAG = "</tool_calls>"
#: Whitespace the constrained grammar allows between JSON tokens (bounded, so a weak model
#: cannot stall in whitespace).
MAX_GRAMMAR_WHITESPACE = 1

_DECODER = json.JSONDecoder()


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, slots=True)
class ToolCallSplit:
    """What one piece of text turned into: content to show, and whole tool calls."""

    content: str = ""
    calls: tuple[ToolCallDelta, ...] = ()


def _as_call(value: object) -> tuple[str, str] | None:
    """(name, arguments JSON) if `value` is a call object, else None."""
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = value.get("arguments")
    if arguments is None:
        return name, "{}"
    if isinstance(arguments, str):
        return name, arguments
    return name, json.dumps(arguments, ensure_ascii=False)


class MiniMaxToolParser:
    """Feed raw content deltas; get (content, tool calls) deltas. One parser per choice."""

    def __init__(self, *, new_id: Callable[[], str] = new_call_id) -> None:
        self._new_id = new_id
        self._inside = False
        self._held = ""
        self._strip_leading = False
        self._break = False  # a block (or a verbatim piece of one) ends the current line
        self._last = ""  # the last character of content emitted so far
        self._content: list[str] = []
        self._calls: list[ToolCallDelta] = []
        self.calls_found = 0

    def feed(self, text: str) -> ToolCallSplit:
        buf = self._held + text
        while True:
            if self._inside:
                end = buf.find(CLOSE_TAG)
                if end < 0:
                    buf = self._decode_calls(buf, final=False)
                    break
                self._decode_calls(buf[:end], final=True)
                buf = buf[end + len(CLOSE_TAG) :]
                self._inside, self._strip_leading = False, True
                continue
            start = buf.find(OPEN_TAG)
            if start < 0:
                keep = held_tail(buf, (OPEN_TAG,))
                cut = len(buf) - keep
                while cut > 0 and buf[cut - 1].isspace():  # may touch a tag still to come
                    cut -= 1
                self._emit(buf[:cut])
                buf = buf[cut:]
                break
            self._emit(buf[:start].rstrip())
            buf = buf[start + len(OPEN_TAG) :]
            self._inside, self._break = True, True
        self._held = buf
        return self._take()

    def finish(self) -> ToolCallSplit:
        """End of the text: an unclosed block is judged as it stands, a held tail is text."""
        if self._inside:
            self._decode_calls(self._held, final=True)
        else:
            self._emit(self._held)
        self._held, self._inside = "", False
        return self._take()

    def _decode_calls(self, block: str, *, final: bool) -> str:
        """Take every complete call at the front of `block`; return the undecided rest.

        With `final`, the rest is decided now: text up to each line break that does not
        start a call object becomes content, and decoding resumes after it.
        """
        rest = block
        while True:
            stripped = rest.lstrip()
            if not stripped:
                return "" if final else rest
            try:
                value, end = _DECODER.raw_decode(stripped)
            except json.JSONDecodeError:
                value, end = None, 0
            if end and not final and not isinstance(value, dict | list | str):
                end = 0  # a bare number or literal may still grow ("1" -> "12")
            call = _as_call(value) if end else None
            if call is not None:
                name, arguments = call
                self._calls.append(
                    ToolCallDelta(
                        index=self.calls_found, id=self._new_id(), name=name, arguments=arguments
                    )
                )
                self.calls_found += 1
                rest = stripped[end:]
                continue
            if end:  # complete JSON, but not a call: the model's text, verbatim
                self._emit_verbatim(stripped[:end])
                rest = stripped[end:]
                continue
            if not final:
                return rest
            line_end = stripped.find("\n")
            junk = stripped if line_end < 0 else stripped[:line_end]
            self._emit_verbatim(junk.rstrip())
            rest = stripped[len(junk) :]

    def _emit_verbatim(self, text: str) -> None:
        """A piece of a block that is not a call: content on a line of its own."""
        self._break = True
        self._emit(text)
        self._break = True

    def _emit(self, text: str) -> None:
        text, self._strip_leading = strip_leading(text, self._strip_leading)
        if not text:
            return
        if self._break and self._last and self._last != "\n":
            self._content.append("\n")
        self._break = False
        self._content.append(text)
        self._last = text[-1]

    def _take(self) -> ToolCallSplit:
        split = ToolCallSplit("".join(self._content), tuple(self._calls))
        self._content.clear()
        self._calls.clear()
        return split


def _call_schema(function: FunctionDefinition) -> dict[str, Any]:
    arguments = function.parameters or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": function.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def constrained_call_format(functions: Sequence[FunctionDefinition]) -> dict[str, Any]:
    """An xgrammar structural tag: exactly one call to one of `functions`, in this format.

    `<tool_calls>\\n{"name": <one of the names>, "arguments": <its parameters>}\\n</tool_calls>`
    (vLLM's `structured_outputs.structural_tag`). One function for a named `tool_choice`,
    all of them for "required".
    """
    if not functions:
        raise ValueError("a constrained call needs at least one function")
    schemas = [_call_schema(function) for function in functions]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {
        "type": "structural_tag",
        "format": {
            "type": "tag",
            "begin": OPEN_TAG + "\n",
            "content": {
                "type": "json_schema",
                "json_schema": schema,
                "max_whitespace_cnt": MAX_GRAMMAR_WHITESPACE,
            },
            "end": "\n" + CLOSE_TAG,
        },
    }
