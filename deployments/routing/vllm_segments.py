"""Reuse the token ids of a chat prompt's leading pieces (conversations resend them).

Tokenising is most of an exact routing decision's cost (about 2 us per token on this
host's 2 shared cores), and each turn of a conversation resends every earlier message.
Chat templates cannot be cut per message safely (a template may render a message
differently once more follow), but the rendered TEXT can be cut where the tokenizer
itself cuts: a Hugging Face fast tokenizer first splits its input at added special
tokens (`<|im_start|>`, `[INST]`, ...) and tokenises the pieces between them on their
own. So for a cut just before such a token,

    tokens(text[:p] + text[p:]) = tokens(text[:p]) + tokens(text[p:])

provided the token does not absorb whitespace on its left (`lstrip`), is matched on the
raw text (`normalized=False`), is not `single_word`, and special tokens are not split
(`split_special_tokens`). `SegmentCuts.for_tokenizer` checks those flags and then
checks the identity on a rendered sample conversation; without both, no cuts (every
prompt is tokenised whole, still exact).

`SegmentBlocks` keeps, per leading run of pieces (and extra keys), the state after it:
tokens so far, the full blocks' chained hashes (`cluster.placement.hashing`), and the
tokens of the unfinished block. A prompt resumes from its longest cached run — found by
the text itself, never by message identity, so a template that re-renders earlier
messages simply misses — and tokenises and hashes only the rest. Runs are keyed by a
128-bit blake2b chain over the extra keys and the pieces' text. Bounded: at most
`max_entries` runs and `max_hashes` stored hashes (8 bytes each), least recently used out.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cluster.placement.hashing import chain_hash, extra_bytes

Encode = Callable[[str], list[int]]


class SegmentCuts:
    """Where rendered chat text may be cut: just before each special token it names."""

    def __init__(self, tokens: Sequence[str]) -> None:
        ordered = sorted(set(tokens), key=len, reverse=True)  # leftmost, then longest
        self.tokens = ordered
        self._pattern = re.compile("|".join(re.escape(t) for t in ordered))

    def split(self, text: str) -> list[str]:
        """`text` in pieces, each but the first starting with a cut token; joined: `text`."""
        starts = [m.start() for m in self._pattern.finditer(text) if m.start() > 0]
        bounds = [0, *starts, len(text)]
        return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, encode: Encode, sample: str) -> SegmentCuts | None:
        """Cuts for a HF fast tokenizer, if its flags allow them and `sample` (a rendered
        conversation) tokenises the same whole and in pieces; else None."""
        if not getattr(tokenizer, "is_fast", False) or getattr(
            tokenizer, "split_special_tokens", False
        ):
            return None
        added = getattr(tokenizer, "added_tokens_decoder", None)
        if not isinstance(added, dict):
            return None
        tokens = [
            str(t.content)
            for t in added.values()
            if getattr(t, "special", False)
            and not getattr(t, "lstrip", True)
            and not getattr(t, "normalized", True)
            and not getattr(t, "single_word", True)
            and str(getattr(t, "content", ""))
        ]
        if not tokens:
            return None
        cuts = cls(tokens)
        pieces = cuts.split(sample)
        if len(pieces) < 3:
            return None
        joined = [i for piece in pieces for i in encode(piece)]
        return cuts if joined == encode(sample) else None


@dataclass(frozen=True, slots=True)
class _State:
    tokens: int
    hashes: array[int]  # 'Q': the full blocks' chained hashes (63-bit)
    partial: tuple[int, ...]  # tokens of the unfinished block


_EMPTY = _State(0, array("Q"), ())


def _run_key(previous: bytes, text: str) -> bytes:
    return hashlib.blake2b(previous + text.encode("utf-8"), digest_size=16).digest()


class SegmentBlocks:
    def __init__(
        self,
        block_tokens: int,
        encode: Encode,
        *,
        max_entries: int = 4096,
        max_hashes: int = 1_000_000,
    ) -> None:
        if block_tokens < 1:
            raise ValueError("block_tokens must be at least 1")
        self.block_tokens = block_tokens
        self.encode = encode
        self.max_entries = max_entries
        self.max_hashes = max_hashes
        self._runs: OrderedDict[bytes, _State] = OrderedDict()
        self._stored_hashes = 0
        self.hits = 0

    def blocks(self, pieces: Sequence[str], extra_keys: Sequence[str]) -> tuple[int, list[int]]:
        """(prompt tokens, hashes of its full blocks) of the text `"".join(pieces)`."""
        key = _run_key(b"", "\x1f".join(extra_keys))
        keys = [key := _run_key(key, piece) for piece in pieces]
        start, state = 0, _EMPTY
        for k in range(len(keys) - 1, -1, -1):
            found = self._runs.get(keys[k])
            if found is not None:
                self._runs.move_to_end(keys[k])
                start, state = k + 1, found
                self.hits += 1
                break
        extra = extra_bytes(extra_keys)
        for k in range(start, len(pieces)):
            state = self._extend(state, self.encode(pieces[k]), extra)
            if k < len(pieces) - 1:  # the whole prompt is the caller's cache entry
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
