"""Routing policies the replay compares: modelyard's router and the usual baselines.

Every policy sees the same thing a production router sees at decision time: the request
(block hashes, prompt length) and each replica's last reported load. Baselines:

- `round-robin`: replicas in turn.
- `power-of-two`: two distinct replicas drawn with a seeded RNG; the one with fewer
  outstanding requests (running + waiting) wins, the first drawn on a tie.
- `least-loaded`: fewest outstanding requests; ties go round robin.

modelyard:

- `modelyard`: `cluster.routing.Router` with its default settings (cost-ranked prefix
  affinity + queue, per-request load guard), fed by the replicas' KV events.
- `prefix-only`: the same router with the queue and KV-usage scorers off (affinity and the
  load guard only) — the ablation showing what the load term buys.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import ValidationError

from cluster.engine import KVEventBatch
from cluster.errors import ConfigError
from cluster.routing import (
    IndexSettings,
    PickerSettings,
    ReplicaLoad,
    Router,
    RouteRequest,
    RoutingSettings,
    ScorerWeights,
)

BASELINES = ("round-robin", "power-of-two", "least-loaded")
POLICIES = ("modelyard", "prefix-only", *BASELINES)


class Policy(Protocol):
    name: str

    def choose(self, request: RouteRequest, loads: Sequence[ReplicaLoad], now: float) -> int:
        """Index of the chosen replica in `loads`."""
        ...

    def on_routed(self, request: RouteRequest, replica_id: str, now: float) -> None: ...

    def on_completed(self, request: RouteRequest, replica_id: str, now: float) -> None: ...

    def on_kv_events(self, batch: KVEventBatch, now: float) -> None: ...


class _Stateless:
    name = "stateless"

    def on_routed(self, request: RouteRequest, replica_id: str, now: float) -> None:
        return None

    def on_completed(self, request: RouteRequest, replica_id: str, now: float) -> None:
        return None

    def on_kv_events(self, batch: KVEventBatch, now: float) -> None:
        return None


def _outstanding(load: ReplicaLoad) -> int:
    return load.running + load.waiting


class RoundRobin(_Stateless):
    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, request: RouteRequest, loads: Sequence[ReplicaLoad], now: float) -> int:
        i = self._next % len(loads)
        self._next += 1
        return i


class PowerOfTwo(_Stateless):
    name = "power-of-two"

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)  # nosec B311

    def choose(self, request: RouteRequest, loads: Sequence[ReplicaLoad], now: float) -> int:
        if len(loads) == 1:
            return 0
        a, b = self._rng.sample(range(len(loads)), 2)
        return b if _outstanding(loads[b]) < _outstanding(loads[a]) else a


class LeastLoaded(_Stateless):
    name = "least-loaded"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, request: RouteRequest, loads: Sequence[ReplicaLoad], now: float) -> int:
        n = len(loads)
        start = self._next % n
        self._next += 1
        order = [(start + k) % n for k in range(n)]
        return min(order, key=lambda i: _outstanding(loads[i]))


class RouterPolicy:
    """`cluster.routing.Router` behind the replay's policy interface."""

    def __init__(self, name: str, router: Router) -> None:
        self.name = name
        self.router = router

    def choose(self, request: RouteRequest, loads: Sequence[ReplicaLoad], now: float) -> int:
        chosen = self.router.select(request, loads, now).replica_id
        for i, load in enumerate(loads):
            if load.replica_id == chosen:
                return i
        raise AssertionError("the router chose a replica it was not offered")

    def on_routed(self, request: RouteRequest, replica_id: str, now: float) -> None:
        self.router.on_routed(request, replica_id, now)

    def on_completed(self, request: RouteRequest, replica_id: str, now: float) -> None:
        self.router.on_completed(request, replica_id, now)

    def on_kv_events(self, batch: KVEventBatch, now: float) -> None:
        self.router.on_kv_events(batch, now)


def routing_settings(
    block_tokens: int,
    seed: int,
    *,
    prefix_only: bool = False,
    weights: Mapping[str, float] | None = None,
) -> RoutingSettings:
    """The router's settings for the bench: defaults, or `weights` overriding some."""
    base = ScorerWeights(queue=0.0, kv_usage=0.0) if prefix_only else ScorerWeights()
    if weights:
        try:
            base = ScorerWeights.model_validate({**base.model_dump(), **weights})
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"--weight {where}: {first['msg']}", param="--weight") from None
    return RoutingSettings(
        weights=base,
        index=IndexSettings(block_tokens=block_tokens),
        picker=PickerSettings(seed=seed),
    )


def make_policy(
    name: str, *, block_tokens: int, seed: int, weights: Mapping[str, float] | None = None
) -> Policy:
    """A fresh policy by name; `weights` applies to modelyard's router (both variants)."""
    if name == "round-robin":
        return RoundRobin()
    if name == "power-of-two":
        return PowerOfTwo(seed)
    if name == "least-loaded":
        return LeastLoaded()
    if name in ("modelyard", "prefix-only"):
        settings = routing_settings(
            block_tokens, seed, prefix_only=name == "prefix-only", weights=weights
        )
        return RouterPolicy(name, Router(settings))
    raise ConfigError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})", param="--policy")
