"""The router: filters → weighted scorers → picker, over a prefix index fed by hooks.

    select(request, replicas, now) -> Decision          pure: reads, never writes
    rank(request, replicas, now) -> [Decision]          pure: select's choice first, then
                                                        the rest by score (fallback order)
    exact_tokens(request, now) -> {replica: tokens}     pure: the engine's expected cache hit
                                                        by KV events (decision records)
    on_routed(request, replica_id, now)                 provisional prefix entries, session
    on_completed(request, replica_id, now)              refresh provisional entries, expire
    on_kv_events(batch, now) -> lost                    exact entries; on loss demote the
                                                        replica's, True: fetch a snapshot
    begin_snapshot(replica_id)                          buffer its batches until:
    on_kv_snapshot(replica_id, seq, events, now)        its exact entries := the snapshot,
                                                        then the buffered batches after seq
    snapshot_failed(replica_id, now)                    apply the buffered batches as they are
    remove_replica(replica_id)                          forget everything about it

Decision (one per request, O(prompt blocks + replicas)):

    candidates = filters(replicas)
    b_j        = candidate j's prefill backlog; S = P + max b - min b
    guarded_j  = b_j - min b > load_guard.max_excess_tokens   (this request only)
    m_j        = index match on j (exact blocks * T + provisional blocks * T * w_prov,
                 in units of `stride` blocks), times load_guard.discount when guarded_j
    total_j    = Σ_scorers weight * score_j                    (each score in [0, 1])
    choice     = picker(total)

The prefix and queue scores share the token scale S, so with weights w_p and w_q the pair
ranks replicas by w_q * b_j - w_p * m_j (see `config.ScorerWeights` for the default).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from cluster.engine import KVEvent, KVEventBatch
from cluster.errors import EngineUnavailable
from cluster.routing.config import RoutingSettings
from cluster.routing.events import EventApplier
from cluster.routing.filters import HealthyFilter, QueueLimitFilter, ReplicaFilter
from cluster.routing.index import PrefixIndex
from cluster.routing.picker import MaxPicker, Picker, SoftmaxPicker
from cluster.routing.scorers import (
    KVUsageScorer,
    PrefixScorer,
    QueueScorer,
    Scorer,
    SessionScorer,
)
from cluster.routing.sync import EventSequencer, SyncResult
from cluster.routing.types import Decision, ReplicaLoad, RouteRequest, ScoreContext

_REPLICA_ID = attrgetter("replica_id")
_BACKLOG = attrgetter("queued_prefill_tokens")


@dataclass(frozen=True, slots=True)
class _Scored:
    """One scoring pass over the candidates (shared by `select` and `rank`)."""

    ids: list[str]
    totals: list[float]
    ctx: ScoreContext
    per_scorer: list[tuple[str, list[float]]]

    def decision(self, i: int) -> Decision:
        return Decision(
            replica_id=self.ids[i],
            score=self.totals[i],
            matched_tokens=self.ctx.matched_tokens[i],
            guarded=self.ctx.guarded[i],
            scores={name: scores[i] for name, scores in self.per_scorer},
        )


def default_scorers(settings: RoutingSettings) -> list[tuple[Scorer, float]]:
    w = settings.weights
    return [
        (PrefixScorer(), w.prefix),
        (QueueScorer(), w.queue),
        (KVUsageScorer(), w.kv_usage),
        (SessionScorer(), w.session),
    ]


def default_filters(settings: RoutingSettings) -> list[ReplicaFilter]:
    filters: list[ReplicaFilter] = [HealthyFilter()]
    if settings.filters.max_waiting is not None:
        filters.append(QueueLimitFilter(settings.filters.max_waiting))
    return filters


def default_picker(settings: RoutingSettings) -> Picker:
    p = settings.picker
    if p.kind == "softmax":
        return SoftmaxPicker(p.temperature, seed=p.seed)
    return MaxPicker(seed=p.seed)


class Router:
    def __init__(
        self,
        settings: RoutingSettings,
        *,
        scorers: Sequence[tuple[Scorer, float]] | None = None,
        filters: Sequence[ReplicaFilter] | None = None,
        picker: Picker | None = None,
    ) -> None:
        self.settings = settings
        chosen = default_scorers(settings) if scorers is None else scorers
        self.scorers = [(s, w) for s, w in chosen if w > 0]
        self.filters = list(default_filters(settings) if filters is None else filters)
        self.picker = default_picker(settings) if picker is None else picker
        self.index = PrefixIndex(settings.index)
        self.sequencer = EventSequencer(
            settings.index.reorder_window, max_hold_s=settings.index.reorder_timeout_s
        )
        self.events = EventApplier(self.index)
        self.snapshots = 0
        self._sessions: OrderedDict[str, tuple[str, float]] = OrderedDict()

    # ---- the decision ----------------------------------------------------------------

    def select(
        self, request: RouteRequest, replicas: Sequence[ReplicaLoad], now: float
    ) -> Decision:
        scored = self._score(request, replicas, now)
        i = self.picker.pick(request.request_id, scored.ids, scored.totals)
        return scored.decision(i)

    def rank(
        self, request: RouteRequest, replicas: Sequence[ReplicaLoad], now: float
    ) -> list[Decision]:
        """Every replica, best first: the picker's choice (as `select` makes it), then the
        other candidates by total score, then replicas the filters set aside (score 0).

        For callers that fall back down a ranking (Ray Serve tries tiers in order when a
        replica is full). Pure, like `select`; O(prompt blocks + R log R).
        """
        scored = self._score(request, replicas, now)
        totals = scored.totals
        chosen = self.picker.pick(request.request_id, scored.ids, totals)
        order = sorted(range(len(totals)), key=lambda i: (i != chosen, -totals[i]))
        ranked = [scored.decision(i) for i in order]
        kept = set(scored.ids)
        ranked.extend(
            Decision(replica_id=r.replica_id, score=0.0, matched_tokens=0.0, guarded=False)
            for r in replicas
            if r.replica_id not in kept
        )
        return ranked

    def _score(self, request: RouteRequest, replicas: Sequence[ReplicaLoad], now: float) -> _Scored:
        candidates = replicas
        for f in self.filters:
            candidates = f.filter(request, candidates)
        if not candidates:
            raise EngineUnavailable("no healthy replica can take the request")
        ids = list(map(_REPLICA_ID, candidates))
        ctx = self._context(request, candidates, ids, now)
        totals: list[float] | None = None
        per_scorer: list[tuple[str, list[float]]] = []
        for scorer, weight in self.scorers:
            scores = scorer.score(request, candidates, ctx)
            per_scorer.append((scorer.name, scores))
            if totals is None:
                totals = [weight * s for s in scores]
            else:
                totals = [t + weight * s for t, s in zip(totals, scores, strict=True)]
        if totals is None:  # every weight is 0: all candidates are equal
            totals = [0.0] * len(candidates)
        return _Scored(ids, totals, ctx, per_scorer)

    def _context(
        self,
        request: RouteRequest,
        candidates: Sequence[ReplicaLoad],
        ids: list[str],
        now: float,
    ) -> ScoreContext:
        backlogs = list(map(_BACKLOG, candidates))
        low = min(backlogs)
        high = max(backlogs)
        limit = self.settings.load_guard.max_excess_tokens
        if high - low > limit:
            guarded = [b - low > limit for b in backlogs]
        else:
            guarded = [False] * len(candidates)
        matched = self._matched_tokens(request, ids, now)
        if any(guarded):
            discount = self.settings.load_guard.discount
            matched = [m * discount if g else m for m, g in zip(matched, guarded, strict=True)]
        return ScoreContext(
            matched_tokens=matched,
            guarded=guarded,
            min_backlog=low,
            token_scale=float(max(request.prompt_tokens, 1) + high - low),
            session_replica=self._session_replica(request.session_id, now),
        )

    def _matched_tokens(self, request: RouteRequest, ids: list[str], now: float) -> list[float]:
        """Cached-token credit per candidate: T * (exact + w_prov * provisional blocks)."""
        if not request.prefix_caching or not request.block_hashes:
            return [0.0] * len(ids)
        hashes = self._indexed(request.block_hashes)
        tokens = self.settings.index.block_tokens * self.settings.index.stride
        w_prov = self.settings.index.provisional_weight
        if w_prov == 1.0:
            lengths = self.index.match_blocks(hashes, now)
            if not lengths:
                return [0.0] * len(ids)
            get = lengths.get
            return [float(tokens * get(rid, 0)) for rid in ids]
        matches = self.index.match(hashes, now)
        out: list[float] = []
        for rid in ids:
            m = matches.get(rid)
            out.append(
                0.0
                if m is None
                else tokens * (m.exact_blocks + w_prov * (m.blocks - m.exact_blocks))
            )
        return out

    def exact_tokens(self, request: RouteRequest, now: float) -> dict[str, int]:
        """Cached tokens each replica's engine will report for `request`, by its KV events.

            exact_j = T * min(exact leading blocks of the prompt on j, (P - 1) // T)

        (in units of `stride` blocks). Engines (vLLM, the simulator) compute at least the
        prompt's last token, so a prompt whose every full block is cached hits one block
        less than it holds. Pure; call it at decision time: once the request has reached
        its replica, the engine's `stored` events for the request's own blocks may be
        indexed too, and the match then counts blocks the request brought itself.
        """
        if not request.prefix_caching or not request.block_hashes:
            return {}
        size = self.settings.index.block_tokens
        usable = max(0, request.prompt_tokens - 1) // size
        hashes = self._indexed(request.block_hashes[:usable])
        tokens = size * self.settings.index.stride
        matched = self.index.match_blocks(hashes, now, exact_only=True)
        return {rid: tokens * n for rid, n in matched.items()}

    def _indexed(self, hashes: Sequence[int]) -> Sequence[int]:
        """The prompt's block hashes the index keeps: every `stride`-th one."""
        stride = self.settings.index.stride
        return hashes if stride == 1 else hashes[stride - 1 :: stride]

    def _session_replica(self, session_id: str | None, now: float) -> str | None:
        if session_id is None:
            return None
        found = self._sessions.get(session_id)
        if found is None or found[1] <= now:
            return None
        return found[0]

    # ---- bookkeeping hooks -----------------------------------------------------------

    def on_routed(self, request: RouteRequest, replica_id: str, now: float) -> None:
        self.index.expire(now)
        if request.prefix_caching and request.block_hashes:
            self.index.insert_provisional(replica_id, self._indexed(request.block_hashes), now)
        if request.session_id is not None:
            self._sessions[request.session_id] = (replica_id, now + self.settings.session_ttl_s)
            self._sessions.move_to_end(request.session_id)
            while len(self._sessions) > self.settings.max_sessions:
                self._sessions.popitem(last=False)

    def on_completed(self, request: RouteRequest, replica_id: str, now: float) -> None:
        """The engine has just released the prompt's blocks: they are its most recent.

        Entries no event confirmed get a fresh TTL from now (exact ones are left alone).
        """
        self.index.expire(now)
        if request.prefix_caching and request.block_hashes:
            self.index.insert_provisional(replica_id, self._indexed(request.block_hashes), now)

    def on_kv_events(self, batch: KVEventBatch, now: float) -> bool:
        """Apply in order (`sync`); True when batches were lost (a snapshot would help)."""
        return self._applied(batch.replica_id, self.sequencer.accept(batch, now), now)

    def begin_snapshot(self, replica_id: str) -> None:
        self.sequencer.await_snapshot(replica_id)

    def on_kv_snapshot(
        self, replica_id: str, seq: int | None, events: Sequence[KVEvent], now: float
    ) -> bool:
        """The replica's whole cache after batch `seq`: it replaces the exact entries."""
        self.index.clear_exact(replica_id)
        self.events.forget(replica_id)
        for event in events:
            self.events.apply(replica_id, event)
        self.snapshots += 1
        return self._applied(replica_id, self.sequencer.rebase(replica_id, seq), now)

    def snapshot_failed(self, replica_id: str, now: float) -> bool:
        return self._applied(replica_id, self.sequencer.abandon(replica_id), now)

    def _applied(self, replica_id: str, result: SyncResult, now: float) -> bool:
        if result.resync:
            self.index.demote_replica(replica_id, now)
        for ordered in result.apply:
            for event in ordered.events:
                self.events.apply(ordered.replica_id, event)
        return result.resync

    def remove_replica(self, replica_id: str) -> None:
        self.index.remove_replica(replica_id)
        self.sequencer.forget(replica_id)
        self.events.forget(replica_id)
