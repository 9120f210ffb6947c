"""Session affinity: keep a conversation on the replica that served its previous turn.

    s_j = 1 if j is the replica the session was last routed to (within the session TTL)
          else 0

Useful where prompts are not tokenised before routing (no block hashes) but clients
send a session id. Off by default (weight 0): prefix affinity covers it when hashes exist.

Inputs: request.session_id, ctx.session_replica.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


class SessionScorer:
    name = "session"
    inputs = ("request.session_id", "ctx.session_replica")

    def score(
        self, request: RouteRequest, candidates: Sequence[ReplicaLoad], ctx: ScoreContext
    ) -> list[float]:
        target = ctx.session_replica
        if request.session_id is None or target is None:
            return [0.0] * len(candidates)
        return [1.0 if c.replica_id == target else 0.0 for c in candidates]
