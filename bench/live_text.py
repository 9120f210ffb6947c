"""Render a Mooncake trace's hash ids as text, so text-based routers see real shared prefixes.

A trace gives each prompt as `hash_ids`, one id per `block_tokens`-token block, equal ids
meaning equal content (and an id standing for its whole prefix). A live replay has to send
text, so each id becomes one deterministic block of words:

    block(h)   = `words_per_block` words drawn by random.Random(h) from a fixed vocabulary
    prompt(r)  = block(h_0) + block(h_1) + ... , the last block cut so that the prompt has
                 exactly `input_length` words (more ids than blocks: the rest are unused;
                 fewer: the tail is filled with words unique to the request, never shared)

Equal ids give equal text, so requests that share leading ids share a text prefix
character for character — which is what SGLang's or vLLM's cache-aware routers compare —
and, tokenised, a token prefix — which is what the engine's prefix cache compares.

Every vocabulary word is 2-3 consonant-vowel syllables (4-6 lowercase letters) written
with one leading space. Under the simulator's tokenizer (`deployments.engines.sim`:
a word of up to 10 letters with its leading space is one piece) a word is exactly one
token, so with the default `words_per_block = block_tokens` a prompt has exactly
`input_length` tokens and block boundaries fall where the trace puts them. For another
tokenizer, `calibrated_words_per_block(count_tokens, block_tokens)` picks the word count
whose token count is closest to the block size.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import OrderedDict
from collections.abc import Callable

from bench.trace import TraceRequest

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c, v in itertools.product(_CONSONANTS, _VOWELS)]
#: 70² two-syllable words and a deterministic 3,100 of the three-syllable ones: 8,000 words.
VOCABULARY: tuple[str, ...] = tuple(
    [" " + a + b for a, b in itertools.product(_SYLLABLES, repeat=2)]
    + [" " + a + b + c for a, b, c in itertools.product(_SYLLABLES, repeat=3)][::110][:3100]
)


def _seed(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class BlockText:
    """Text for hash ids (module docstring); keeps up to `memo_blocks` rendered blocks."""

    def __init__(
        self,
        block_tokens: int,
        *,
        words_per_block: int | None = None,
        salt: str = "",
        memo_blocks: int = 20_000,
    ) -> None:
        if block_tokens < 1:
            raise ValueError("block_tokens must be >= 1")
        self.block_tokens = block_tokens
        self.words_per_block = words_per_block or block_tokens
        self.salt = salt
        self._memo: OrderedDict[int, str] = OrderedDict()
        self._memo_blocks = memo_blocks

    def words(self, hash_id: int) -> list[str]:
        """The words of block `hash_id` (each with its leading space)."""
        rng = random.Random(_seed("block", self.salt, hash_id))  # nosec B311
        return rng.choices(VOCABULARY, k=self.words_per_block)

    def block(self, hash_id: int) -> str:
        """The text of block `hash_id` (memoised, least recently used dropped first)."""
        found = self._memo.get(hash_id)
        if found is not None:
            self._memo.move_to_end(hash_id)
            return found
        text = "".join(self.words(hash_id))
        self._memo[hash_id] = text
        if len(self._memo) > self._memo_blocks:
            self._memo.popitem(last=False)
        return text

    def prompt(self, request: TraceRequest) -> str:
        """`request.input_length` tokens' worth of words, built from its hash ids."""
        scale = self.words_per_block / self.block_tokens
        want = max(1, round(request.input_length * scale))
        parts: list[str] = []
        have = 0
        for hash_id in request.hash_ids:
            if have >= want:
                break
            take = min(self.words_per_block, want - have)
            text = self.block(hash_id)
            parts.append(text if take == self.words_per_block else _first_words(text, take))
            have += take
        if have < want:  # ids do not cover the prompt: a tail no other request shares
            rng = random.Random(_seed("tail", self.salt, request.index, request.hash_ids))  # nosec B311
            parts.extend(rng.choices(VOCABULARY, k=want - have))
        return "".join(parts)


def _first_words(text: str, count: int) -> str:
    """The first `count` words of `text` (every word starts with a space)."""
    at = 0
    for _ in range(count):
        at = text.find(" ", at + 1)
        if at < 0:
            return text
    return text[:at]


def calibrated_words_per_block(count_tokens: Callable[[str], int], block_tokens: int) -> int:
    """Words per block whose token count under `count_tokens` is closest to `block_tokens`.

    Measured on a sample of vocabulary text, assuming tokens grow linearly with words
    (true for whitespace-separated words under BPE tokenizers, to within a token or two).
    """
    sample = BlockText(block_tokens, salt="calibration")
    text = "".join(sample.block(h) for h in range(8))
    per_word = count_tokens(text) / (8 * block_tokens)
    return max(1, round(block_tokens / per_word))
