"""A deterministic stand-in tokenizer and chat template for the simulator.

Text is cut into pieces by one regular expression, tried left to right:

    <|name|>            a chat-template marker (one token)
     ?letters{1,10}     a word (or up to 10 letters of a longer one), with one leading space
     ?digits{1,3}       up to three digits, with one leading space
     ?symbol            one punctuation / symbol character, with one leading space
     ?_                 an underscore
    whitespace+         any other run of whitespace (newlines, indentation)

Every character belongs to exactly one piece, so `"".join(pieces(text)) == text`. The regex
has no look-ahead, so cutting a text at a piece boundary keeps the pieces before the cut:
truncating a generation to `max_tokens` pieces and re-tokenizing it gives the same count.

A piece's token id is `blake2b(piece) mod vocab_size`: the same text always gives the same
ids in every process (no dependence on `PYTHONHASHSEED`), which is what makes prefix-cache
hits, KV events and usage counts honest and reproducible.

The chat template renders each message as `<|role|>\\n content <|end|>\\n` (tools first, as
sorted JSON under `<|tools|>`), and the generation prompt as `<|assistant|>\\n`. A message
always ends with a newline piece and the next starts with a marker, so two conversations
that share their first messages share the prompt's leading tokens exactly, and a turn's
prompt (with its generation prompt) is a token prefix of the next turn's prompt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from cluster.api.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    Tool,
    ToolMessage,
    UserMessage,
    content_text,
)

DEFAULT_VOCAB_SIZE = 131072  # the size of Mistral's Tekken vocabulary (2**17)

_PIECE = re.compile(r"<\|[a-z_]{1,24}\|>| ?[^\W\d_]{1,10}| ?\d{1,3}| ?[^\w\s]| ?_|\s+")


def pieces(text: str) -> list[str]:
    """Cut `text` into token pieces; their concatenation is `text`."""
    return _PIECE.findall(text)


class SimTokenizer:
    """Pieces → ids through a stable hash; keeps a bounded memo of piece ids."""

    def __init__(self, vocab_size: int = DEFAULT_VOCAB_SIZE, *, memo_size: int = 65536) -> None:
        if vocab_size < 256:
            raise ValueError("vocab_size must be at least 256")
        self.vocab_size = vocab_size
        self._memo: dict[str, int] = {}
        self._memo_size = memo_size

    def token_id(self, piece: str) -> int:
        cached = self._memo.get(piece)
        if cached is not None:
            return cached
        digest = hashlib.blake2b(piece.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little") % self.vocab_size
        if len(self._memo) < self._memo_size:
            self._memo[piece] = value
        return value

    def encode(self, text: str) -> list[int]:
        return [self.token_id(p) for p in pieces(text)]

    def count(self, text: str) -> int:
        return len(pieces(text))


def _render_tool_calls(message: AssistantMessage) -> str:
    calls = [
        {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
        for c in message.tool_calls or []
    ]
    return "<|tool_calls|>" + json.dumps(calls, sort_keys=True) if calls else ""


def _render_message(message: Message) -> str:
    if isinstance(message, SystemMessage | UserMessage):
        head = f"<|{message.role}|>"
        body = content_text(message.content)
    elif isinstance(message, AssistantMessage):
        head = "<|assistant|>"
        body = content_text(message.content) + _render_tool_calls(message)
    elif isinstance(message, ToolMessage):
        head = "<|tool|>"
        body = f"[{message.tool_call_id}] " + content_text(message.content)
    else:  # pragma: no cover - the Message union is closed
        raise TypeError(type(message).__name__)
    name = f" {message.name}" if message.name else ""
    return f"{head}{name}\n{body}<|end|>\n"


def render_chat(
    messages: Sequence[Message],
    tools: Sequence[Tool] | None = None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text for a chat: tools (sorted JSON), each message, the generation prompt.

    A trailing assistant message with `prefix=True` is continued rather than closed
    (Mistral's prefix mode), so no generation prompt follows it.
    """
    out: list[str] = []
    if tools:
        specs = [t.function.model_dump(exclude_none=True) for t in tools]
        out.append("<|tools|>\n" + json.dumps(specs, sort_keys=True) + "<|end|>\n")
    continue_last = (
        bool(messages) and isinstance(messages[-1], AssistantMessage) and bool(messages[-1].prefix)
    )
    for i, message in enumerate(messages):
        if continue_last and i == len(messages) - 1:
            assert isinstance(message, AssistantMessage)
            out.append("<|assistant|>\n" + content_text(message.content))
        else:
            out.append(_render_message(message))
    if add_generation_prompt and not continue_last:
        out.append("<|assistant|>\n")
    return "".join(out)
