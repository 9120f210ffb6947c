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

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.engine import EngineRequest
from cluster.placement.hashing import chain_hash, extra_bytes
from deployments.engines.sim.engine import prompt_text
from deployments.engines.sim.tokenizer import SimTokenizer, render_chat

GENERATION_PROMPT = render_chat([], None)


@dataclass(frozen=True, slots=True)
class _State:
    tokens: int
    hashes: array[int]  # 'Q': the full blocks' chained hashes (63-bit)
    partial: tuple[int, ...]  # tokens of the unfinished block


_EMPTY = _State(0, array("Q"), ())


def _run_key(previous: bytes, text: str) -> bytes:
    return hashlib.blake2b(previous + text.encode("utf-8"), digest_size=16).digest()


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


class PromptBlocks:
    def __init__(
        self,
        block_tokens: int,
        *,
        max_entries: int = 4096,
        max_hashes: int = 1_000_000,
    ) -> None:
        if block_tokens < 1:
            raise ValueError("block_tokens must be at least 1")
        self.block_tokens = block_tokens
        self.max_entries = max_entries
        self.max_hashes = max_hashes
        self._tokenizer = SimTokenizer()
        self._runs: OrderedDict[bytes, _State] = OrderedDict()
        self._stored_hashes = 0
        self.hits = 0

    def count(self, request: EngineRequest) -> int:
        """Prompt tokens (no hashing, no cache): for models that cache nothing."""
        return self._tokenizer.count(prompt_text(request))

    def blocks(self, request: EngineRequest, extra_keys: Sequence[str]) -> tuple[int, list[int]]:
        """(prompt tokens, hashes of its full blocks)."""
        parts = segments(request)
        key = _run_key(b"", "\x1f".join(extra_keys))
        keys = [key := _run_key(key, part) for part in parts]
        start, state = 0, _EMPTY
        for k in range(len(keys) - 1, -1, -1):
            found = self._runs.get(keys[k])
            if found is not None:
                self._runs.move_to_end(keys[k])
                start, state = k + 1, found
                self.hits += 1
                break
        extra = extra_bytes(extra_keys)
        for k in range(start, len(parts)):
            state = self._extend(state, self._tokenizer.encode(parts[k]), extra)
            if k < len(parts) - 1 or len(parts) == 1:
                self._store(keys[k], state)
        return state.tokens, list(state.hashes)

    def _extend(self, state: _State, ids: list[int], extra: bytes) -> _State:
        bs = self.block_tokens
        pending = [*state.partial, *ids]
        hashes = array("Q", state.hashes)
        parent = hashes[-1] if hashes else None
        full = len(pending) - len(pending) % bs
        for i in range(0, full, bs):
            parent = chain_hash(parent, pending[i : i + bs], extra)
            hashes.append(parent)
        return _State(state.tokens + len(ids), hashes, tuple(pending[full:]))

    def _store(self, key: bytes, state: _State) -> None:
        size = len(state.hashes)
        if key in self._runs or size > self.max_hashes:
            return
        self._runs[key] = state
        self._stored_hashes += size
        while len(self._runs) > self.max_entries or self._stored_hashes > self.max_hashes:
            _, dropped = self._runs.popitem(last=False)
            self._stored_hashes -= len(dropped.hashes)

    def __len__(self) -> int:
        return len(self._runs)
