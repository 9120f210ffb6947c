"""Pickers: turn the candidates' total scores into one choice.

- `MaxPicker`: the highest total; exact ties are broken by a hash of
  (seed, request id, replica id), so equal replicas share work evenly and the same
  request always lands on the same replica for the same scores.
- `SoftmaxPicker`: replica j with probability exp((t_j - t_max) / τ) / Σ_k exp(…); the
  uniform draw is derived from (seed, request id), so a decision is a pure function of
  its inputs (replayable) while different requests still spread.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Protocol


def _unit(seed: int, *parts: str) -> float:
    """A uniform number in [0, 1) from a seed and strings (stable across processes)."""
    hasher = hashlib.blake2b(digest_size=8)
    hasher.update(seed.to_bytes(8, "little", signed=True))
    for part in parts:
        hasher.update(part.encode("utf-8"))
        hasher.update(b"\x1f")
    return int.from_bytes(hasher.digest(), "little") / 2.0**64


class Picker(Protocol):
    def pick(self, request_id: str, replica_ids: Sequence[str], totals: Sequence[float]) -> int:
        """Index of the chosen candidate."""
        ...


class MaxPicker:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def pick(self, request_id: str, replica_ids: Sequence[str], totals: Sequence[float]) -> int:
        best = max(totals)
        if totals.count(best) == 1:
            return totals.index(best)
        tied = [i for i, t in enumerate(totals) if t == best]
        return min(tied, key=lambda i: _unit(self.seed, request_id, replica_ids[i]))


class SoftmaxPicker:
    def __init__(self, temperature: float, seed: int = 0) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.temperature = temperature
        self.seed = seed

    def pick(self, request_id: str, replica_ids: Sequence[str], totals: Sequence[float]) -> int:
        best = max(totals)
        weights = [math.exp((t - best) / self.temperature) for t in totals]
        draw = _unit(self.seed, request_id) * sum(weights)
        acc = 0.0
        for i, w in enumerate(weights):
            acc += w
            if draw < acc:
                return i
        return len(weights) - 1
