"""Values routing consumes and produces.

These sit on the per-request hot path (one decision must cost well under 200 µs among 64
replicas), so they are frozen slotted dataclasses rather than validated pydantic models;
they never cross a process boundary on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What routing needs to know about one request.

    `block_hashes`: chained hashes of the prompt's FULL blocks (see `hashing`), in order.
    `prompt_tokens`: the whole prompt length (the partial last block included).
    `prefix_caching`: False for models whose engine caches nothing (MiniMax-M1): such
    requests are placed by load alone.
    """

    request_id: str
    block_hashes: Sequence[int]
    prompt_tokens: int
    session_id: str | None = None
    prefix_caching: bool = True


@dataclass(frozen=True, slots=True)
class ReplicaLoad:
    """A replica as the router sees it at decision time (its last stats, plus routing).

    `queued_prefill_tokens`: prompt tokens routed to it that are not yet prefilled
    (waiting requests and the unfinished part of chunked prefills).
    `kv_usage`: blocks referenced by running requests / capacity (vLLM's
    `kv_cache_usage_perc`).
    """

    replica_id: str
    queued_prefill_tokens: int = 0
    running: int = 0
    waiting: int = 0
    kv_usage: float = 0.0
    healthy: bool = True


@dataclass(frozen=True, slots=True)
class ScoreContext:
    """Per-decision facts computed once by the router and shared by every scorer.

    Lists are aligned with the candidate list. `matched_tokens` already carries the load
    guard's discount for guarded replicas. `token_scale` = prompt tokens + the spread of
    the candidates' prefill backlogs (max - min): the common unit in which the prefix and
    queue scorers express tokens, so both stay in [0, 1] and trade one-for-one.
    """

    matched_tokens: Sequence[float]
    guarded: Sequence[bool]
    min_backlog: int
    token_scale: float
    session_replica: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen replica and why: its total score and the prefix it is expected to reuse."""

    replica_id: str
    score: float
    matched_tokens: float
    guarded: bool
    scores: dict[str, float] = field(default_factory=dict)
