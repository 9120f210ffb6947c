"""Replica load as one router sees it: its own in-flight requests plus what replicas report.

Every router (one per deployment handle, so one per gateway replica) knows its own
requests exactly and the others' only through shared numbers:

    own_j      = requests this router routed to replica j that have not completed
    t_j        = their prefill estimate, sum of (prompt tokens - matched tokens at decision)
    n_j        = requests replica j is serving for everyone: Serve's queue-length cache
                 (the replica's own count of ongoing requests, as it answered this
                 router's last send there, then +1 per send and -1 per completion),
                 else the replica's last `record_routing_stats` running + waiting
    others_j   = max(0, n_j - own_j)
    backlog_j  = t_j + others_j * p_mean                  (ReplicaLoad.queued_prefill_tokens)

p_mean is a moving average (weight 0.1) of this router's prefill estimates, standing in
for the size of requests it cannot see (before its first routed request: the prompt being
placed). A request counts until it completes (decode included): a router cannot see the
first token, and a decoding request still takes batch slots. `running`, `waiting` and
`kv_usage` are the replica's reported numbers (at most one `routing.stats_period_s` old).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster.routing import ReplicaLoad, RouteRequest

EWMA_ALPHA = 0.1


@dataclass(slots=True)
class InFlight:
    replica_id: str
    route: RouteRequest
    prefill: int


@dataclass(slots=True)
class _Own:
    count: int = 0
    tokens: int = 0


class LoadBook:
    def __init__(self) -> None:
        self._inflight: dict[str, InFlight] = {}
        self._own: dict[str, _Own] = {}
        self.mean_prefill = 0.0
        self.samples = 0

    def __len__(self) -> int:
        return len(self._inflight)

    def own(self, replica_id: str) -> tuple[int, int]:
        """(requests, prefill tokens) this router has in flight on the replica."""
        own = self._own.get(replica_id)
        return (0, 0) if own is None else (own.count, own.tokens)

    def routed(self, key: str, replica_id: str, route: RouteRequest, prefill: int) -> None:
        """Count a request routed to `replica_id` (`key`: Serve's internal request id)."""
        previous = self._inflight.pop(key, None)
        if previous is not None:
            self._release(previous)
        prefill = max(0, prefill)
        self._inflight[key] = InFlight(replica_id, route, prefill)
        own = self._own.setdefault(replica_id, _Own())
        own.count += 1
        own.tokens += prefill
        if self.samples == 0:
            self.mean_prefill = float(prefill)
        else:
            self.mean_prefill += EWMA_ALPHA * (prefill - self.mean_prefill)
        self.samples += 1

    def completed(self, key: str, replica_id: str) -> InFlight | None:
        """Stop counting it; None when it is not in flight on that replica (e.g. the
        completion of an attempt the replica rejected, after a retry went elsewhere)."""
        found = self._inflight.get(key)
        if found is None or found.replica_id != replica_id:
            return None
        del self._inflight[key]
        self._release(found)
        return found

    def forget(self, replica_id: str) -> list[InFlight]:
        """Drop a replica (it died or left); returns the requests that were on it."""
        gone = [k for k, f in self._inflight.items() if f.replica_id == replica_id]
        out = [self._inflight.pop(k) for k in gone]
        self._own.pop(replica_id, None)
        return out

    def load(
        self,
        replica_id: str,
        stats: Mapping[str, Any],
        ongoing: int | None,
        prior_prefill: int = 0,
    ) -> ReplicaLoad:
        """The replica's `ReplicaLoad` (module docstring); `ongoing`: Serve's cached count;
        `prior_prefill`: p_mean until this router has routed a request."""
        running = _int(stats.get("running"))
        waiting = _int(stats.get("waiting"))
        total = ongoing if ongoing is not None else running + waiting
        count, tokens = self.own(replica_id)
        others = max(0, total - count)
        mean = self.mean_prefill if self.samples else float(prior_prefill)
        return ReplicaLoad(
            replica_id=replica_id,
            queued_prefill_tokens=tokens + round(others * mean),
            running=running,
            waiting=waiting,
            kv_usage=_usage(stats.get("kv_usage")),
        )

    def _release(self, found: InFlight) -> None:
        own = self._own.get(found.replica_id)
        if own is None:
            return
        own.count -= 1
        own.tokens -= found.prefill
        if own.count <= 0:
            del self._own[found.replica_id]


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usage(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(1.0, max(0.0, float(value)))
    return 0.0
