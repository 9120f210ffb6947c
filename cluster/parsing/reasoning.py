"""Split a model's raw text into reasoning and answer at `<think>…</think>` tags.

MiniMax-M1 writes its reasoning inline as `<think>…</think>` and vLLM has no parser for it,
so the core does it (`ModelSpec.reasoning_parser == "think_tags"`).

A streaming state machine with two states (outside / inside a think block). Text arrives
in arbitrary pieces, so a tag may be split across pieces: the parser holds back the longest
tail of what it has seen that is still the beginning of a tag, and decides once more text
arrives (or at `finish`, when the held tail is plain text after all). Hence feeding the same
text in any chunking gives the same concatenated result.

Rules:
- text inside `<think>…</think>` is reasoning, everything else is content;
- whitespace right after an opening or closing tag is dropped (the model's line breaks
  around the block are not part of either channel);
- a stray `</think>` outside a block is dropped; an unterminated block is reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.parsing.tags import held_tail, strip_leading

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


@dataclass(frozen=True, slots=True)
class ReasoningSplit:
    reasoning: str = ""
    content: str = ""

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content)


class ThinkTagParser:
    """Feed raw text deltas; get (reasoning, content) deltas. One parser per choice."""

    def __init__(self) -> None:
        self._inside = False
        self._held = ""
        self._strip_leading = False
        self._reasoning: list[str] = []
        self._content: list[str] = []

    def feed(self, text: str) -> ReasoningSplit:
        buf = self._held + text
        while True:
            tags = (CLOSE_TAG,) if self._inside else (OPEN_TAG, CLOSE_TAG)
            found = [(i, tag) for tag in tags if (i := buf.find(tag)) >= 0]
            if not found:
                break
            index, tag = min(found)
            self._emit(buf[:index])
            buf = buf[index + len(tag) :]
            if tag == OPEN_TAG:
                self._inside = True
            elif self._inside:
                self._inside = False
            # a stray closing tag outside a block is dropped without changing state
            self._strip_leading = True
        keep = held_tail(buf, (CLOSE_TAG,) if self._inside else (OPEN_TAG, CLOSE_TAG))
        self._emit(buf[: len(buf) - keep])
        self._held = buf[len(buf) - keep :]
        return self._take()

    def finish(self) -> ReasoningSplit:
        """Flush what was held back: at the end of the text, a partial tag is plain text."""
        self._emit(self._held)
        self._held = ""
        return self._take()

    def _emit(self, text: str) -> None:
        text, self._strip_leading = strip_leading(text, self._strip_leading)
        if text:
            (self._reasoning if self._inside else self._content).append(text)

    def _take(self) -> ReasoningSplit:
        split = ReasoningSplit("".join(self._reasoning), "".join(self._content))
        self._reasoning.clear()
        self._content.clear()
        return split
