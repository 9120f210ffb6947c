"""How far placement alone can lift the hit rate when every replica evicts by LRU.

    python -m bench.clairvoyant --trace FILE [--requests N] [--replicas R]
        [--kv-blocks B] [--block-tokens T] [--imbalance X|none ...] [--horizon N|none ...]
    [--json]

Issue 4 asks for a token hit rate of 0.257 on the first 1,500 requests of the
conversation trace with 4 replicas x 4,000 blocks; the one-infinite-cache bound is 0.270.
A router chooses only the replica; the replica's cache evicts least recently released
blocks first, as vLLM does. This tool measures what a placer that *knows the future* gets
under that rule, to tell a placement shortfall from an eviction one.

Model (no timing, the same as `bench.bounds`): requests are served one at a time
in arrival order, each replica is a `bench.lru.LRUBlockCache`, a request reuses its
leading cached blocks (at most (P - 1) // T), and its prefill is the rest of its prompt.

Placers, each among the replicas whose prefill tokens stay within `imbalance` x the mean
after this request (or, if none does, the one with the least prefill after it):
- `affinity`: the most leading cached blocks, then the least prefill (what a
  prefix-aware router does with perfect knowledge of the caches).
- `clairvoyant`: knows every block's next use. It scores a replica by hits minus the
  blocks its eviction would drop that some later request uses again, so it keeps
  one-shot prompts away from caches holding blocks still needed and spreads the damage
  where it costs least. Greedy, one request at a time: not an optimum, but a placer
  with far more knowledge than any online router has. `--horizon N` counts only blocks
  used again within the next N requests (farther ones LRU would likely drop anyway).
"""

from __future__ import annotations

import argparse
import json
import sys
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bench.bounds import (
    infinite_cache_hit_rate,
    pooled_belady_hit_rate,
    pooled_lru_hit_rate,
)
from bench.lru import LRUBlockCache
from bench.trace import TraceRequest, load_trace
from cluster.errors import ConfigError

Placer = Literal["affinity", "clairvoyant"]
PLACERS: tuple[Placer, ...] = ("affinity", "clairvoyant")


class RoutingOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    placer: Placer
    imbalance: float | None
    horizon: int | None
    hit_rate: float
    max_mean_prefill: float


class NextUses:
    """For each block, the indices of the requests whose full blocks contain it."""

    def __init__(self, trace: Sequence[TraceRequest], block_tokens: int) -> None:
        self._uses: dict[int, list[int]] = defaultdict(list)
        for position, req in enumerate(trace):
            for h in req.full_blocks(block_tokens):
                self._uses[h].append(position)

    def used_within(self, block: int, position: int, horizon: int | None) -> bool:
        """Whether a request after `position` (and within `horizon` requests) uses `block`."""
        uses = self._uses.get(block, ())
        later = bisect_right(uses, position)
        if later == len(uses):
            return False
        return horizon is None or uses[later] - position <= horizon


def _eviction_damage(
    cache: LRUBlockCache,
    blocks: Sequence[int],
    future: NextUses,
    position: int,
    horizon: int | None,
) -> int:
    """Blocks still needed (within `horizon` requests) that storing `blocks` in `cache`
    would evict."""
    overflow = len(cache) + cache.missing(blocks) - cache.capacity
    if overflow <= 0:
        return 0
    own = set(blocks)
    damage = 0
    for h in cache.eviction_order():
        if overflow == 0:
            break
        if h in own:  # re-released by this request, so not evicted now
            continue
        overflow -= 1
        damage += future.used_within(h, position, horizon)
    return damage


def place_all(
    trace: Sequence[TraceRequest],
    *,
    block_tokens: int,
    replicas: int,
    capacity: int,
    placer: Placer,
    imbalance: float | None,
    horizon: int | None = None,
) -> RoutingOutcome:
    caches = [LRUBlockCache(capacity) for _ in range(replicas)]
    prefill = [0] * replicas
    future = NextUses(trace, block_tokens) if placer == "clairvoyant" else None
    hit_tokens = total_tokens = 0
    for position, req in enumerate(trace):
        blocks = req.full_blocks(block_tokens)
        limit = (req.input_length - 1) // block_tokens
        hits = [c.hits(blocks, limit) for c in caches]
        after = [prefill[k] + req.input_length - hits[k] * block_tokens for k in range(replicas)]
        total_after = sum(prefill) + req.input_length
        eligible = [
            k
            for k in range(replicas)
            if imbalance is None
            or after[k] <= imbalance * (total_after - hits[k] * block_tokens) / replicas
        ]
        if not eligible:
            eligible = [min(range(replicas), key=after.__getitem__)]

        gains = list(hits)
        if future is not None and len(eligible) > 1:
            for k in eligible:
                gains[k] -= _eviction_damage(caches[k], blocks, future, position, horizon)
        ranking = [(gain, -tokens) for gain, tokens in zip(gains, after, strict=True)]
        chosen = max(eligible, key=ranking.__getitem__)
        hit_tokens += hits[chosen] * block_tokens
        total_tokens += req.input_length
        prefill[chosen] = after[chosen]
        caches[chosen].serve(blocks)
    mean = sum(prefill) / replicas
    return RoutingOutcome(
        placer=placer,
        imbalance=imbalance,
        horizon=horizon if placer == "clairvoyant" else None,
        hit_rate=hit_tokens / total_tokens if total_tokens else 0.0,
        max_mean_prefill=max(prefill) / mean if mean else 1.0,
    )


class ContinuationRate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    turn: str
    requests: int
    continued: float


def continuation_rates(trace: Sequence[TraceRequest], block_tokens: int) -> list[ContinuationRate]:
    """Share of requests whose own new blocks some later request reuses, by turn.

    A request's turn is its parent's plus one, its parent being the request that first
    stored the last already-seen block of its prompt (turn 0: nothing but blocks shared
    by everyone, such as a system prompt, was seen before). If the share is the same at
    every turn, nothing in a conversation's history tells a router whether it goes on.
    """
    first_stored: dict[int, int] = {}
    turn: list[int] = []
    continued = [False] * len(trace)
    shared = {h for h, n in _block_counts(trace, block_tokens).items() if n == len(trace)}
    for position, req in enumerate(trace):
        blocks = req.full_blocks(block_tokens)
        parent = next(
            (first_stored[h] for h in reversed(blocks) if h in first_stored and h not in shared),
            None,
        )
        turn.append(0 if parent is None else turn[parent] + 1)
        for h in blocks:
            owner = first_stored.setdefault(h, position)
            if owner != position and h not in shared:
                continued[owner] = True
    rows = []
    for label, members in (
        ("0", [i for i, t in enumerate(turn) if t == 0]),
        ("1", [i for i, t in enumerate(turn) if t == 1]),
        ("2+", [i for i, t in enumerate(turn) if t >= 2]),
        ("all", list(range(len(trace)))),
    ):
        if members:
            share = sum(continued[i] for i in members) / len(members)
            rows.append(ContinuationRate(turn=label, requests=len(members), continued=share))
    return rows


def _block_counts(trace: Sequence[TraceRequest], block_tokens: int) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for req in trace:
        for h in set(req.full_blocks(block_tokens)):
            counts[h] += 1
    return counts


class ClairvoyantReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int
    replicas: int
    kv_blocks: int
    block_tokens: int
    infinite_cache_hit_rate: float
    pooled_lru_hit_rate: float
    pooled_belady_hit_rate: float
    continuations: list[ContinuationRate]
    outcomes: list[RoutingOutcome]


def build_report(
    trace: Sequence[TraceRequest],
    *,
    replicas: int,
    kv_blocks: int,
    block_tokens: int,
    imbalances: Sequence[float | None],
    horizons: Sequence[int | None] = (None,),
) -> ClairvoyantReport:
    fleet = replicas * kv_blocks
    runs: list[tuple[Placer, float | None, int | None]] = []
    for imbalance in imbalances:
        runs.append(("affinity", imbalance, None))
        runs.extend(("clairvoyant", imbalance, horizon) for horizon in horizons)
    outcomes = [
        place_all(
            trace,
            block_tokens=block_tokens,
            replicas=replicas,
            capacity=kv_blocks,
            placer=placer,
            imbalance=imbalance,
            horizon=horizon,
        )
        for placer, imbalance, horizon in runs
    ]
    return ClairvoyantReport(
        requests=len(trace),
        replicas=replicas,
        kv_blocks=kv_blocks,
        block_tokens=block_tokens,
        infinite_cache_hit_rate=infinite_cache_hit_rate(trace, block_tokens),
        pooled_lru_hit_rate=pooled_lru_hit_rate(trace, block_tokens, fleet),
        pooled_belady_hit_rate=pooled_belady_hit_rate(trace, block_tokens, fleet),
        continuations=continuation_rates(trace, block_tokens),
        outcomes=outcomes,
    )


def render(report: ClairvoyantReport) -> str:
    fleet = report.replicas * report.kv_blocks
    lines = [
        f"{report.requests} requests, {report.replicas} replicas x {report.kv_blocks} blocks "
        f"of {report.block_tokens} tokens, LRU eviction on every replica",
        f"references: one infinite cache {report.infinite_cache_hit_rate:.3f}; one "
        f"{fleet}-block cache, LRU {report.pooled_lru_hit_rate:.3f}, optimal eviction "
        f"{report.pooled_belady_hit_rate:.3f}",
        "requests whose new blocks a later request reuses, by turn: "
        + ", ".join(f"{c.turn}: {c.continued:.1%} of {c.requests}" for c in report.continuations),
        f"{'placer':<12} {'imbalance':>9} {'horizon':>8} {'hit rate':>9} {'max/mean prefill':>17}",
    ]
    for o in report.outcomes:
        limit = "none" if o.imbalance is None else f"{o.imbalance:.2f}"
        horizon = "-" if o.placer == "affinity" else "any" if o.horizon is None else str(o.horizon)
        lines.append(
            f"{o.placer:<12} {limit:>9} {horizon:>8} {o.hit_rate:>9.4f} {o.max_mean_prefill:>17.3f}"
        )
    return "\n".join(lines)


def _imbalance(text: str) -> float | None:
    if text == "none":
        return None
    value = float(text)
    if value < 1.0:
        raise argparse.ArgumentTypeError("imbalance is max/mean prefill: 1.0 or more, or none")
    return value


def _horizon(text: str) -> int | None:
    return None if text == "none" else _positive(text)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clairvoyant", description=__doc__)
    parser.add_argument("--trace", required=True, help="Mooncake-format JSONL trace")
    parser.add_argument("--requests", type=_positive, default=None, help="first N requests")
    parser.add_argument("--replicas", type=_positive, default=4)
    parser.add_argument("--kv-blocks", type=_positive, default=4000)
    parser.add_argument("--block-tokens", type=_positive, default=512)
    parser.add_argument(
        "--imbalance",
        type=_imbalance,
        action="append",
        help="max/mean prefill a placement may reach, or `none` (repeatable; 1.10 and none)",
    )
    parser.add_argument(
        "--horizon",
        type=_horizon,
        action="append",
        help="clairvoyant: count only evicted blocks used again within N requests, or `none` "
        "(any later use; the default) (repeatable)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        trace = load_trace(args.trace, args.requests)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = build_report(
        trace,
        replicas=args.replicas,
        kv_blocks=args.kv_blocks,
        block_tokens=args.block_tokens,
        imbalances=args.imbalance or [1.10, None],
        horizons=args.horizon or [None],
    )
    print(json.dumps(report.model_dump(), indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
