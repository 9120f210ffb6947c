"""The scorer contract: one score in [0, 1] per candidate replica, higher is better."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


class Scorer(Protocol):
    """A routing scorer.

    `name` keys its weight in `ScorerWeights`; `inputs` declares what it reads (request
    fields, replica load fields, context facts) so operators know what must be reported.
    `score` is pure and returns one value in [0, 1] per candidate, in candidate order.
    """

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> tuple[str, ...]: ...

    def score(
        self, request: RouteRequest, candidates: Sequence[ReplicaLoad], ctx: ScoreContext
    ) -> list[float]: ...
