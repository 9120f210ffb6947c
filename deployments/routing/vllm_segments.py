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

`SegmentBlocks` (a `deployments.routing.runs.RunBlocks`) keeps, per leading run of pieces
(and extra keys), the state after it:
tokens so far, the full blocks' chained hashes (`cluster.routing.hashing`), and the
tokens of the unfinished block. A prompt resumes from its longest cached run — found by
the text itself, never by message identity, so a template that re-renders earlier
messages simply misses — and tokenises and hashes only the rest. Runs are keyed by a
128-bit blake2b chain over the extra keys and the pieces' text. Bounded: at most
`max_entries` runs and `max_hashes` stored hashes (8 bytes each), least recently used out.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from deployments.routing.runs import Encode, RunBlocks


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


class SegmentBlocks(RunBlocks):
    def blocks(self, pieces: Sequence[str], extra_keys: Sequence[str]) -> tuple[int, list[int]]:
        """(prompt tokens, hashes of its full blocks) of the text `"".join(pieces)`; the
        whole prompt is the caller's cache entry."""
        return self.pieces_blocks(pieces, extra_keys, keep_whole=False)
