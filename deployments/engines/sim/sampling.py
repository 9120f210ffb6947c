"""How a request's sampling parameters shape the simulator's pseudo-text, deterministically.

The simulator has no logits, so each parameter gets a documented stand-in effect rather
than being ignored (docs/SIMULATOR.md, docs/API.md):

- `temperature`: 0 is greedy decoding: the `n` samples of one prompt are the same text.
  Above 0, sample j's text is seeded by j as well, so the samples differ (and the same
  request still gives the same samples).
- `top_k`, `top_p`: the words are built from the first V of the 24 syllables,
  V = min(24, top_k, ceil(24 * top_p)), at least 1 — a narrower nucleus, a smaller
  vocabulary.
- `presence_penalty`, `frequency_penalty` (p = their sum): p > 0 redraws a word already
  used, up to 8 times; p < 0 repeats the previous word with probability min(1, -p / 2).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from cluster.engine import EngineRequest

REDRAWS = 8


@dataclass(frozen=True, slots=True)
class TextStyle:
    sample_key: int
    vocabulary: int
    penalty: float

    @classmethod
    def of(cls, request: EngineRequest, syllables: int) -> TextStyle:
        sampling = request.sampling
        vocabulary = min(syllables, math.ceil(syllables * sampling.top_p))
        if sampling.top_k is not None and sampling.top_k > 0:
            vocabulary = min(vocabulary, sampling.top_k)
        return cls(
            sample_key=request.sample if sampling.temperature > 0 else 0,
            vocabulary=max(1, vocabulary),
            penalty=sampling.presence_penalty + sampling.frequency_penalty,
        )

    def next_word(
        self, rng: random.Random, make_word: Callable[[], str], used: set[str], previous: str
    ) -> str:
        """The next word of the text: `make_word()` draws one; the penalty may redraw it or
        repeat `previous` (empty at the start of the text)."""
        if previous and self.penalty < 0 and rng.random() < min(1.0, -self.penalty / 2):
            return previous
        word = make_word()
        if self.penalty > 0:
            for _ in range(REDRAWS):
                if word not in used:
                    break
                word = make_word()
        return word
