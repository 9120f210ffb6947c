"""Prompt length and block hashes as the simulator computes them, with a prefix cache.

Tokenising is most of a routing decision's cost (about 0.5 us per token here), and
conversations resend the same leading messages every turn. The simulator's chat template
renders each message (and the tools block, and the generation prompt) as its own
segment, each starting with a `<|...|>` marker; its tokenizer never makes a piece that
crosses such a boundary (`deployments.engines.sim.tokenizer`). So

    tokens(prompt) = tokens(segment_1) + ... + tokens(segment_n)

and the hash chain after segments 1..k depends on those segments only. `PromptBlocks`
keeps, per leading run of segments (and extra keys), the state after it: tokens so far,
the full blocks' hashes, and the tokens of the unfinished block. A request resumes from
its longest cached run and tokenises and hashes only the rest. Runs are keyed by a
128-bit blake2b chain over the extra keys and the segments' text (constant size per run).

The segmentation is checked on every request: if the segments do not join into exactly
the text `prompt_text` renders, the whole prompt is one segment (still correct, just not
shared). Bounded: at most `max_entries` runs and `max_hashes` stored hashes in all
(8 bytes each), least recently used first out.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.engine import EngineRequest
from deployments.engines.sim.engine import prompt_text
from deployments.engines.sim.tokenizer import SimTokenizer, render_chat
from deployments.routing.runs import RunBlocks

GENERATION_PROMPT = render_chat([], None)


def segments(request: EngineRequest) -> list[str]:
    """The prompt's text in template segments (joined: exactly `prompt_text(request)`)."""
    full = prompt_text(request)
    if request.messages is None:
        return [full]
    parts: list[str] = []
    if request.tools:
        parts.append(render_chat([], request.tools, add_generation_prompt=False))
    parts.extend(render_chat([m], None, add_generation_prompt=False) for m in request.messages)
    joined = "".join(parts)
    if joined == full:
        return parts
    if joined + GENERATION_PROMPT == full:
        return [*parts, GENERATION_PROMPT]
    return [full]


class PromptBlocks(RunBlocks):
    def __init__(
        self,
        block_tokens: int,
        *,
        max_entries: int = 4096,
        max_hashes: int = 1_000_000,
    ) -> None:
        self._tokenizer = SimTokenizer()
        super().__init__(
            block_tokens, self._tokenizer.encode, max_entries=max_entries, max_hashes=max_hashes
        )

    def count(self, request: EngineRequest) -> int:
        """Prompt tokens (no hashing, no cache): for models that cache nothing."""
        return self._tokenizer.count(prompt_text(request))

    def blocks(self, request: EngineRequest, extra_keys: Sequence[str]) -> tuple[int, list[int]]:
        """(prompt tokens, hashes of its full blocks)."""
        return self.pieces_blocks(segments(request), extra_keys, keep_whole=True)
