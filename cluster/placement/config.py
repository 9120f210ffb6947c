"""Placement settings: scorer weights, the load guard, the prefix index bounds, the picker.

Defined once here and passed in (the router reads nothing global). Weights are relative:
the router uses the weighted sum of scorer scores, each in [0, 1].
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScorerWeights(_Strict):
    """Relative weight of each scorer; 0 switches a scorer off.

    `prefix` and `queue` share one token scale (see `scorers.prefix`), so at equal weights
    one cached prompt token offsets one queued prefill token: the sum then ranks replicas
    by expected prefill work (uncached prompt tokens + tokens already queued ahead).
    """

    prefix: float = Field(default=1.0, ge=0)
    queue: float = Field(default=1.0, ge=0)
    kv_usage: float = Field(default=0.05, ge=0)
    session: float = Field(default=0.0, ge=0)


class LoadGuard(_Strict):
    """Per-request guard: affinity does not pull a request onto an overloaded replica.

    A replica whose prefill backlog exceeds the least-loaded candidate's by more than
    `max_excess_tokens` has its prefix score multiplied by `discount` for this request only.
    Other requests (and the other replicas) are not affected: there is no fleet-wide switch.
    """

    max_excess_tokens: int = Field(default=262_144, ge=0)
    discount: float = Field(default=0.0, ge=0, le=1)


class IndexSettings(_Strict):
    """Bounds of the prefix index (see `cluster.placement.index`)."""

    block_tokens: int = Field(default=16, ge=1, description="tokens per KV block, as engines")
    max_blocks: int = Field(
        default=1_000_000, ge=1, description="cap on indexed block hashes (LRU eviction)"
    )
    provisional_ttl_s: float = Field(
        default=120.0, gt=0, description="life of an entry no KV event has confirmed"
    )
    provisional_weight: float = Field(
        default=1.0, ge=0, le=1, description="credit of a provisional match vs. an exact one"
    )
    reorder_window: int = Field(
        default=8, ge=0, description="KV event batches held waiting for a missing sequence"
    )


class PickerSettings(_Strict):
    kind: Literal["max", "softmax"] = "max"
    temperature: float = Field(default=0.05, gt=0, description="softmax temperature")
    seed: int = 0


class FilterSettings(_Strict):
    """Candidates: healthy replicas; replicas at `max_waiting` are skipped unless all are."""

    max_waiting: int | None = Field(default=None, ge=1)


class PlacementSettings(_Strict):
    weights: ScorerWeights = Field(default_factory=ScorerWeights)
    load_guard: LoadGuard = Field(default_factory=LoadGuard)
    index: IndexSettings = Field(default_factory=IndexSettings)
    picker: PickerSettings = Field(default_factory=PickerSettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)
    session_ttl_s: float = Field(default=600.0, gt=0)
    max_sessions: int = Field(default=100_000, ge=1)
