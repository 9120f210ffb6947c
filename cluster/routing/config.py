"""Routing settings: scorer weights, the load guard, the prefix index bounds, the picker.

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

    The prefix and queue scorers share one token scale (`ScoreContext.token_scale`), so
    their weights are an exchange rate: the pair ranks replicas by

        queued prefill tokens - (prefix / queue) * cached prompt tokens

    At 1:1 that is the expected prefill ahead of the first token, which is myopic: a
    conversation moved away from its cached prefix is stored a second time, evicting as
    many cached tokens elsewhere, and is then missing where its next turn looks. 64 cached
    tokens per queued token was chosen on the Mooncake conversation trace
    (docs/BENCHMARKS.md has the sweep): conversations stay with their prefix until the load
    guard intervenes, while new prompts (which match only a shared system prefix at most)
    still go to the shortest queue. `kv_usage` (free KV memory) is a small tie-breaker.
    """

    prefix: float = Field(default=64.0, ge=0)
    queue: float = Field(default=1.0, ge=0)
    kv_usage: float = Field(default=0.5, ge=0)
    session: float = Field(default=0.0, ge=0)


class LoadGuard(_Strict):
    """Per-request guard: affinity does not pull a request onto an overloaded replica.

    A replica whose prefill backlog exceeds the least-loaded candidate's by more than
    `max_excess_tokens` has its matched tokens (what the prefix and KV-usage scorers see)
    multiplied by `discount` for this request only.
    Other requests (and the other replicas) are not affected: there is no fleet-wide switch.
    """

    max_excess_tokens: int = Field(default=262_144, ge=0)
    discount: float = Field(default=0.0, ge=0, le=1)


class IndexSettings(_Strict):
    """Bounds of the prefix index (see `cluster.routing.index`)."""

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
    reorder_timeout_s: float = Field(
        default=0.5,
        gt=0,
        description="a KV event sequence gap older than this (seen at the next batch) is a "
        "loss: the replica is resynchronised",
    )
    stride: int = Field(
        default=1,
        ge=1,
        description="index every stride-th block (a chained hash stands for its whole "
        "prefix): matches keep stride * block_tokens resolution, the walk is stride x shorter",
    )


class PickerSettings(_Strict):
    kind: Literal["max", "softmax"] = "max"
    temperature: float = Field(default=0.05, gt=0, description="softmax temperature")
    seed: int = 0


class FilterSettings(_Strict):
    """Candidates: healthy replicas; replicas at `max_waiting` are skipped unless all are."""

    max_waiting: int | None = Field(default=None, ge=1)


class RoutingSettings(_Strict):
    weights: ScorerWeights = Field(default_factory=ScorerWeights)
    load_guard: LoadGuard = Field(default_factory=LoadGuard)
    index: IndexSettings = Field(default_factory=IndexSettings)
    picker: PickerSettings = Field(default_factory=PickerSettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)
    session_ttl_s: float = Field(default=600.0, gt=0)
    max_sessions: int = Field(default=100_000, ge=1)
