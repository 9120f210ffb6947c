"""Block hashes of a prompt given as text pieces, resumed from its longest seen run.

Both router-side tokenisations (the simulator's, `deployments.routing.tokens`, and
vLLM's, `deployments.routing.vllm_segments`) cut a prompt into pieces that tokenise
independently: tokens(prompt) = tokens(piece_1) + ... + tokens(piece_n). The hash chain
after pieces 1..k then depends on those pieces only, so `RunBlocks` keeps, per leading
run of pieces (and extra keys), the state after it: tokens so far, the full blocks'
chained hashes (`cluster.routing.hashing`), and the tokens of the unfinished block. A
prompt resumes from its longest cached run and tokenises and hashes only the rest. Runs
are keyed by a 128-bit blake2b chain over the extra keys and the pieces' text (constant
size per run). Bounded: at most `max_entries` runs and `max_hashes` stored hashes in all
(8 bytes each), least recently used first out.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cluster.routing.hashing import chain_hash, extra_bytes

Encode = Callable[[str], list[int]]


@dataclass(frozen=True, slots=True)
class _State:
    tokens: int
    hashes: array[int]  # 'Q': the full blocks' chained hashes (63-bit)
    partial: tuple[int, ...]  # tokens of the unfinished block


_EMPTY = _State(0, array("Q"), ())


def _run_key(previous: bytes, text: str) -> bytes:
    return hashlib.blake2b(previous + text.encode("utf-8"), digest_size=16).digest()


class RunBlocks:
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

    def pieces_blocks(
        self, pieces: Sequence[str], extra_keys: Sequence[str], *, keep_whole: bool
    ) -> tuple[int, list[int]]:
        """(prompt tokens, hashes of its full blocks) of the text `"".join(pieces)`.

        Every leading run but the whole prompt is kept; the whole prompt too when
        `keep_whole` and it is a single piece (callers that cache whole prompts
        themselves pass False)."""
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
            if k < len(pieces) - 1 or (keep_whole and len(pieces) == 1):
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
