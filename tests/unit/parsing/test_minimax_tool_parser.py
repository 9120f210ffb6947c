"""MiniMax-M1's `<tool_calls>` parser: a table of raw outputs, each fed in every chunking
(whole, every two-way split, one character at a time, seeded random cuts) must give the same
calls and the same content; calls stream as soon as they are complete."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable

import pytest

from cluster.api.messages import FunctionDefinition
from cluster.engine import EngineChunk, ToolCallDelta, Usage
from cluster.gateway.service.choices import ChoiceState
from cluster.parsing.minimax_tools import (
    CLOSE_TAG,
    OPEN_TAG,
    MiniMaxToolParser,
    ToolCallSplit,
    constrained_call_format,
)

# The guide's example output (MiniMax-M1-80k docs/function_call_guide.md, "Model Output
# Format"), after the reasoning parser took the <think> block: two calls, one per line.
GUIDE_CALLS = (
    "<tool_calls>\n"
    '{"name": "search_web", "arguments": {"query_tag": ["technology", "events"], '
    '"query_list": ["\\"OpenAI\\" \\"latest\\" \\"release\\""]}}\n'
    '{"name": "search_web", "arguments": {"query_tag": ["technology", "events"], '
    '"query_list": ["\\"Gemini\\" \\"latest\\" \\"release\\""]}}\n'
    "</tool_calls>"
)
GUIDE_ARGS = [
    {"query_tag": ["technology", "events"], "query_list": ['"OpenAI" "latest" "release"']},
    {"query_tag": ["technology", "events"], "query_list": ['"Gemini" "latest" "release"']},
]
WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}'
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}

# (case id, raw text, expected content, expected calls as (name, arguments object or text))
Call = tuple[str, object]
CASES: list[tuple[str, str, str, list[Call]]] = [
    ("plain-text", "Just an answer.", "Just an answer.", []),
    ("guide-output", GUIDE_CALLS, "", [("search_web", a) for a in GUIDE_ARGS]),
    (
        "one-call-one-line",
        f"<tool_calls>\n{WEATHER}\n</tool_calls>",
        "",
        [("get_weather", WEATHER_ARGS)],
    ),
    ("no-line-breaks", f"<tool_calls>{WEATHER}</tool_calls>", "", [("get_weather", WEATHER_ARGS)]),
    (
        "text-around-block",
        f"Let me check.\n\n<tool_calls>\n{WEATHER}\n</tool_calls>\n\nDone.",
        "Let me check.\nDone.",
        [("get_weather", WEATHER_ARGS)],
    ),
    (
        "pretty-printed-object",
        '<tool_calls>\n{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Paris",\n'
        '    "unit": "celsius"\n  }\n}\n</tool_calls>',
        "",
        [("get_weather", WEATHER_ARGS)],
    ),
    (
        "arguments-as-json-text",
        '<tool_calls>\n{"name": "f", "arguments": "{\\"a\\": 1}"}\n</tool_calls>',
        "",
        [("f", '{"a": 1}')],
    ),
    ("arguments-absent", '<tool_calls>\n{"name": "ping"}\n</tool_calls>', "", [("ping", {})]),
    (
        "unicode-arguments",
        '<tool_calls>\n{"name": "find", "arguments": {"q": "погода 🌦"}}\n</tool_calls>',
        "",
        [("find", {"q": "погода 🌦"})],
    ),
    (
        "junk-line-between-calls",
        f"<tool_calls>\n{WEATHER}\nI am not JSON\n{WEATHER}\n</tool_calls>",
        "I am not JSON",
        [("get_weather", WEATHER_ARGS), ("get_weather", WEATHER_ARGS)],
    ),
    (
        "json-that-is-not-a-call",
        '<tool_calls>\n{"tool": "f"}\n</tool_calls>',
        '{"tool": "f"}',
        [],
    ),
    (
        "empty-name-is-not-a-call",
        '<tool_calls>\n{"name": "", "arguments": {}}\n</tool_calls>',
        '{"name": "", "arguments": {}}',
        [],
    ),
    ("empty-block", "before <tool_calls>\n</tool_calls> after", "before\nafter", []),
    (
        "unterminated-block-cut-mid-call",
        f'<tool_calls>\n{WEATHER}\n{{"name": "get_weather", "argu',
        '{"name": "get_weather", "argu',
        [("get_weather", WEATHER_ARGS)],
    ),
    (
        "unterminated-block-complete-call",
        f"<tool_calls>\n{WEATHER}",
        "",
        [("get_weather", WEATHER_ARGS)],
    ),
    ("partial-open-tag-at-end", "text <tool_ca", "text <tool_ca", []),
    ("not-the-tag", "a <tool_callsX> b", "a <tool_callsX> b", []),
    ("less-than-signs", "a < b and c<d", "a < b and c<d", []),
    ("stray-close-tag-is-text", "oops</tool_calls> here", "oops</tool_calls> here", []),
    (
        "two-blocks",
        f"<tool_calls>{WEATHER}</tool_calls> then <tool_calls>\n{WEATHER}\n</tool_calls>",
        "then",
        [("get_weather", WEATHER_ARGS), ("get_weather", WEATHER_ARGS)],
    ),
    ("trailing-whitespace-kept", "answer \n", "answer \n", []),
    ("empty", "", "", []),
]


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count()
    return lambda: f"call_{next(numbers)}"


def run(pieces: list[str]) -> tuple[str, list[ToolCallDelta]]:
    parser = MiniMaxToolParser(new_id=counter_ids())
    content: list[str] = []
    calls: list[ToolCallDelta] = []
    for split in [*(parser.feed(piece) for piece in pieces), parser.finish()]:
        content.append(split.content)
        calls.extend(split.calls)
    return "".join(content), calls


def chunkings(text: str) -> list[list[str]]:
    """Whole, every two-way split, one character at a time, and seeded random cuts."""
    out = [[text], list(text)]
    out += [[text[:i], text[i:]] for i in range(1, len(text))]
    rng = random.Random(0)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(5, max(len(text) - 1, 0))))
        bounds = [0, *cuts, len(text)]
        out.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    return out


def expected_calls(calls: list[Call]) -> list[ToolCallDelta]:
    return [
        ToolCallDelta(
            index=i,
            id=f"call_{i}",
            name=name,
            arguments=args if isinstance(args, str) else json.dumps(args, ensure_ascii=False),
        )
        for i, (name, args) in enumerate(calls)
    ]


@pytest.mark.parametrize(
    ("text", "content", "calls"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_chunking_gives_the_same_calls_and_content(
    text: str, content: str, calls: list[Call]
) -> None:
    want = (content, expected_calls(calls))
    for pieces in chunkings(text):
        assert run(pieces) == want, pieces
    for call in want[1]:
        json.loads(call.arguments)  # always JSON text, as OpenAI's `arguments`


def test_a_call_streams_when_its_object_closes_not_at_the_close_tag() -> None:
    parser = MiniMaxToolParser(new_id=counter_ids())
    assert parser.feed("Checking.\n<tool") == ToolCallSplit(content="Checking.")
    assert parser.feed("_calls>\n" + WEATHER[:-1]) == ToolCallSplit()
    split = parser.feed("}\n" + WEATHER[:10])
    assert split.content == "" and [c.name for c in split.calls] == ["get_weather"]
    split = parser.feed(WEATHER[10:] + "\n</tool_")
    assert [(c.index, c.id) for c in split.calls] == [(1, "call_1")]
    assert parser.feed("calls>") == ToolCallSplit()
    assert parser.finish() == ToolCallSplit()
    assert parser.calls_found == 2


def test_plain_text_streams_with_only_a_possible_tag_held_back() -> None:
    parser = MiniMaxToolParser()
    assert parser.feed("Hello wor") == ToolCallSplit(content="Hello wor")
    assert parser.feed("ld <") == ToolCallSplit(content="ld")  # " <" may open a tag
    assert parser.feed("3") == ToolCallSplit(content=" <3")
    assert parser.finish() == ToolCallSplit()


def test_default_ids_are_fresh_openai_style() -> None:
    text = f"<tool_calls>\n{WEATHER}\n{WEATHER}\n</tool_calls>"
    split = MiniMaxToolParser().feed(text)
    ids = [call.id for call in split.calls]
    assert len(set(ids)) == 2
    assert all(i is not None and i.startswith("call_") and len(i) == 29 for i in ids)


# --- in the core: the reasoning parser first, then this one (ChoiceState) -------------------

RECORDED = (  # the guide's full output shape: reasoning, then the calls
    "<think>\nOkay, I will search for the OpenAI and Gemini latest release.\n</think>\n"
    + GUIDE_CALLS
)
USAGE = Usage(prompt_tokens=40, completion_tokens=60)


def feed_state(state: ChoiceState, pieces: list[str], finish: str = "stop") -> dict[str, object]:
    deltas = [state.step(EngineChunk(text=p)) for p in pieces[:-1]]
    deltas.append(state.step(EngineChunk(text=pieces[-1], finish_reason=finish, usage=USAGE)))  # type: ignore[arg-type]
    return {
        "reasoning": "".join(d.reasoning for d in deltas),
        "content": "".join(d.content for d in deltas),
        "calls": [(c.index, c.name, c.arguments) for d in deltas for c in d.tool_calls],
        "finish": deltas[-1].finish_reason,
    }


@pytest.mark.parametrize("size", [1, 3, 7, len(RECORDED)])
def test_recorded_output_through_the_core_gives_reasoning_and_calls(size: int) -> None:
    pieces = [RECORDED[i : i + size] for i in range(0, len(RECORDED), size)]
    got = feed_state(ChoiceState(think_tags=True, text_tool_calls=True), pieces)
    assert got["reasoning"] == "Okay, I will search for the OpenAI and Gemini latest release.\n"
    assert got["content"] == ""
    assert got["calls"] == [
        (i, "search_web", json.dumps(args, ensure_ascii=False)) for i, args in enumerate(GUIDE_ARGS)
    ]
    assert got["finish"] == "tool_calls"


@pytest.mark.parametrize(
    ("text_tool_calls", "parallel", "finish", "calls", "want_finish"),
    [
        (True, True, "stop", 2, "tool_calls"),  # calls found: finish says so
        (True, False, "stop", 1, "tool_calls"),  # parallel_tool_calls=false keeps index 0
        (True, True, "length", 2, "length"),  # cut short: the limit is the reason
        (False, True, "stop", 0, "stop"),  # parser off (no tools offered): raw text
    ],
)
def test_core_finish_reason_and_parallel_rule(
    text_tool_calls: bool, parallel: bool, finish: str, calls: int, want_finish: str
) -> None:
    state = ChoiceState(
        think_tags=True, text_tool_calls=text_tool_calls, parallel_tool_calls=parallel
    )
    got = feed_state(state, [RECORDED], finish)
    assert len(got["calls"]) == calls  # type: ignore[arg-type]
    assert got["finish"] == want_finish
    assert (OPEN_TAG in got["content"]) == (not text_tool_calls)  # type: ignore[operator]


def test_text_without_calls_still_finishes_with_stop() -> None:
    state = ChoiceState(think_tags=True, text_tool_calls=True)
    got = feed_state(state, ["<think>hm</think>", "Nothing to call."])
    assert got == {"reasoning": "hm", "content": "Nothing to call.", "calls": [], "finish": "stop"}


# --- the constrained format for a named / "required" tool_choice ----------------------------


def test_constrained_format_is_one_tagged_call_of_the_named_function() -> None:
    weather = FunctionDefinition(
        name="get_weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    tag = constrained_call_format([weather])
    fmt = tag["format"]
    assert tag["type"] == "structural_tag" and fmt["type"] == "tag"
    assert fmt["begin"] == OPEN_TAG + "\n" and fmt["end"] == "\n" + CLOSE_TAG
    schema = fmt["content"]["json_schema"]
    assert schema["properties"]["name"] == {"const": "get_weather"}
    assert schema["properties"]["arguments"] == weather.parameters
    assert schema["required"] == ["name", "arguments"]


def test_constrained_format_for_required_allows_any_offered_function() -> None:
    functions = [FunctionDefinition(name=n) for n in ("a", "b")]
    schema = constrained_call_format(functions)["format"]["content"]["json_schema"]
    assert [s["properties"]["name"]["const"] for s in schema["anyOf"]] == ["a", "b"]
    assert schema["anyOf"][0]["properties"]["arguments"]["type"] == "object"
    with pytest.raises(ValueError, match="at least one"):
        constrained_call_format([])
