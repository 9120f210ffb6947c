"""What the simulator "generates": deterministic pseudo-text and tool calls, counted honestly.

The whole output of a request is planned when it is admitted, as a list of output tokens;
the engine streams one of them per generated token. The plan is a pure function of
(settings seed, the request's sampling seed, the prompt's token ids, and the sample's
index when temperature > 0) — the same request gives the same output — and of the
request's tools, tool choice, stop strings, other sampling parameters (`sampling`) and
token limit:

- Tool choice: a named function → call it; "required" → call the first tool; "auto" (or
  unset) with tools → call the first tool when the last message is from the user; "none"
  or no tools → no call. A call is streamed as one header token (its `id` "call_<hex>"
  and `name`) then its JSON arguments one token piece at a time; arguments come from the
  function's JSON-schema `parameters` (see `tool_args`). It ends with "tool_calls".
- Models with `reasoning_parser == "think_tags"` start with a raw `<think>…</think>` block in
  the text (the gateway parses it into `reasoning_content`).
- Models whose calls the core parses from the text (`text_tool_calls`, catalog
  `tool_parser: minimax_m1`) write the call as MiniMax-M1 does, raw in the text:
  `<tool_calls>\n{"name": …, "arguments": {…}}\n</tool_calls>`, one token piece at a time,
  finishing "stop" as vLLM does without a tool parser (the gateway parses the block into
  `tool_calls` and reports "tool_calls").
- Text is pseudo-words drawn from a fixed syllable set, 24-160 tokens long.
- `response_format` `json_object` → a JSON object `{"answer": "<pseudo-words>"}`;
  `json_schema` → a JSON value built from the schema by `tool_args` (as tool arguments
  are); either is cut by `max_tokens` like any text.
- Stop strings: the text is cut before the earliest occurrence (not included), no tool call
  follows, finish "stop". Then at most `limit` tokens are kept; if that cut anything, finish
  "length".

Every text token is one piece of `SimTokenizer`, so the streamed text re-tokenizes to
exactly `completion_tokens` pieces (tool-call tokens: 1 header + argument pieces).
"""

from __future__ import annotations

import hashlib
import json
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.api.messages import FunctionDefinition, NamedToolChoice, Tool, ToolChoice
from cluster.engine import EngineRequest, ToolCallDelta
from cluster.engine.types import FinishReason
from cluster.errors import InvalidRequest
from cluster.parsing.minimax_tools import CLOSE_TAG, OPEN_TAG
from deployments.engines.sim.sampling import TextStyle
from deployments.engines.sim.tokenizer import pieces
from deployments.engines.sim.tool_args import example_value

_SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "sen", "dor", "pal", "quin", "bre",
    "shu", "ter", "gal", "fi", "mon", "zer", "cal", "vi", "tor", "lan", "pe", "os",
)  # fmt: skip
MIN_TEXT_TOKENS = 24
MAX_TEXT_TOKENS = 160


@dataclass(frozen=True, slots=True)
class OutputToken:
    text: str = ""
    tool_call: ToolCallDelta | None = None


@dataclass(frozen=True, slots=True)
class OutputPlan:
    tokens: list[OutputToken] = field(default_factory=list)
    finish_reason: FinishReason = "stop"


def select_tool(request: EngineRequest) -> FunctionDefinition | None:
    """The function the simulated model calls, if any (rules in the module docstring).

    Raises InvalidRequest when `tool_choice` names a function that is not in `tools`, or
    asks for a call without tools.
    """
    tools: list[Tool] = request.tools or []
    choice: ToolChoice | None = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        for tool in tools:
            if tool.function.name == choice.function.name:
                return tool.function
        raise InvalidRequest(
            f"tool_choice names function {choice.function.name!r}, which is not in tools",
            param="tool_choice",
        )
    if choice == "required":
        if not tools:
            raise InvalidRequest("tool_choice 'required' needs tools", param="tool_choice")
        return tools[0].function
    if choice == "none" or not tools:
        return None
    messages = request.messages or []
    if messages and messages[-1].role == "user":
        return tools[0].function
    return None


def _rng(
    seed: int, request: EngineRequest, prompt_ids: Sequence[int], style: TextStyle
) -> random.Random:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{seed}|{request.sampling.seed}|".encode())
    if style.sample_key:
        digest.update(f"sample {style.sample_key}|".encode())
    digest.update(array("I", prompt_ids).tobytes())
    return random.Random(int.from_bytes(digest.digest(), "little"))  # nosec B311


def _words(rng: random.Random, count: int, vocabulary: int = len(_SYLLABLES)) -> list[str]:
    syllables = _SYLLABLES[:vocabulary]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(count)]


def _prose(rng: random.Random, tokens: int, style: TextStyle) -> str:
    """About `tokens` pieces of sentences: words, a '.' or ',' every 5-12 words, and a
    paragraph break after one sentence in five. Every word carries its leading space.
    Words follow `style` (vocabulary and penalties, `sampling`)."""
    out: list[str] = []
    used: set[str] = set()
    previous = ""
    capital = True
    in_clause = 0
    clause_len = rng.randint(5, 12)
    while len(out) < tokens:
        if in_clause >= clause_len:
            mark = rng.choice((".", ".", ","))
            out.append(mark)
            capital = mark == "."
            if capital and rng.random() < 0.2:
                out.append("\n\n")
            in_clause, clause_len = 0, rng.randint(5, 12)
            continue
        word = style.next_word(rng, lambda: _words(rng, 1, style.vocabulary)[0], used, previous)
        used.add(word)
        previous = word
        if capital:
            word = word.capitalize()
        space = "" if not out or out[-1] == "\n\n" else " "
        out.append(space + word)
        capital = False
        in_clause += 1
    while out and out[-1] == "\n\n":
        out.pop()
    return "".join(out)


def _structured(request: EngineRequest, rng: random.Random) -> str | None:
    """The answer under `response_format` json_object / json_schema, else None."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    schema: Any = {"type": "object", "properties": {"answer": {"type": "string"}}}
    schema["required"] = ["answer"]
    if fmt.json_schema is not None and fmt.json_schema.schema_ is not None:
        schema = fmt.json_schema.schema_
    return json.dumps(example_value(schema, rng, words=_words(rng, 16)), ensure_ascii=False)


def _call_id(request: EngineRequest, seed: int) -> str:
    digest = hashlib.blake2b(f"{seed}|{request.request_id}".encode(), digest_size=12)
    return "call_" + digest.hexdigest()


def plan_output(
    request: EngineRequest,
    *,
    prompt_ids: Sequence[int],
    limit: int,
    seed: int,
    think_tags: bool,
    text_tool_calls: bool = False,
) -> OutputPlan:
    """The tokens this request will stream and its finish reason (module docstring)."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    style = TextStyle.of(request, len(_SYLLABLES))
    rng = _rng(seed, request, prompt_ids, style)
    tool = select_tool(request)
    text = ""
    if think_tags:
        text = "<think>\n" + _prose(rng, rng.randint(12, 48), style) + "\n</think>\n\n"
    if tool is None:
        text += _structured(request, rng) or _prose(
            rng, rng.randint(MIN_TEXT_TOKENS, MAX_TEXT_TOKENS), style
        )
    elif text_tool_calls:
        arguments = example_value(tool.parameters or {}, rng, words=_words(rng, 16))
        line = json.dumps({"name": tool.name, "arguments": arguments}, ensure_ascii=False)
        text += f"{OPEN_TAG}\n{line}\n{CLOSE_TAG}"
        tool = None  # the call is text now; no structured call follows
    stopped = False
    for stop in request.sampling.stop:
        at = text.find(stop) if stop else -1
        if at >= 0:
            text, stopped = text[:at], True
    tokens = [OutputToken(text=p) for p in pieces(text)]
    if tool is not None and not stopped:
        arguments = json.dumps(example_value(tool.parameters or {}, rng, words=_words(rng, 16)))
        header = ToolCallDelta(index=0, id=_call_id(request, seed), name=tool.name)
        tokens.append(OutputToken(tool_call=header))
        tokens.extend(
            OutputToken(tool_call=ToolCallDelta(index=0, arguments=p)) for p in pieces(arguments)
        )
    if not tokens:  # a stop string at the very start: the model emits one empty token
        tokens = [OutputToken()]
    if len(tokens) > limit:
        return OutputPlan(tokens[:limit], "length")
    finish: FinishReason = "tool_calls" if tool is not None and not stopped else "stop"
    return OutputPlan(tokens, finish)
