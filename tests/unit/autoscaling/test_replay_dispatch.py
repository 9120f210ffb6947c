"""The replay's gateway: which ready replica a queued request goes to, by each rule."""

from __future__ import annotations

from collections import deque

import pytest

from bench.autoscale.fleet import Replica, Request
from bench.autoscale.replay import DISPATCH_RULES, _dispatch
from bench.autoscale.run import replica_shape


def _replica(waiting_prompts: list[int]) -> Replica:
    shape = replica_shape("qwen/qwen3-coder-flash", "h100")
    rep = Replica(shape, launched_at=0.0, ready_at=0.0, state="ready")
    for i, prompt in enumerate(waiting_prompts):
        rep.waiting.append(Request(1000 + i, 0.0, prompt, 10))
    return rep


@pytest.mark.parametrize(
    ("rule", "fleet", "incoming", "expected"),
    [
        # one replica holds one 30,000-token prompt, the other four small ones
        ("prefill-backlog", [[30_000], [500] * 4], [800, 800, 800], [1, 1, 1]),
        ("fewest-ongoing", [[30_000], [500] * 4], [800, 800, 800], [0, 0, 0]),
        # the backlog grows with what each decision placed
        ("prefill-backlog", [[1_000], [1_500]], [1_000, 1_000, 1_000], [0, 1, 0]),
        # equal backlogs: fewest ongoing first, then the first replica
        ("prefill-backlog", [[1_000], [500, 500]], [10], [0]),
        ("fewest-ongoing", [[], []], [10, 10, 10, 10], [0, 1, 0, 1]),
    ],
)
def test_dispatch_table(
    rule: str, fleet: list[list[int]], incoming: list[int], expected: list[int]
) -> None:
    assert rule in DISPATCH_RULES
    replicas = [_replica(prompts) for prompts in fleet]
    pending = deque(Request(i, 1.0, prompt, 10) for i, prompt in enumerate(incoming))
    _dispatch(pending, replicas, max_ongoing=512, dispatch=rule)
    placed = {req.index: j for j, rep in enumerate(replicas) for req in rep.waiting}
    assert [placed[i] for i in range(len(incoming))] == expected
    assert not pending


def test_a_full_replica_takes_nothing_and_the_rest_stays_queued() -> None:
    replicas = [_replica([10] * 3), _replica([100_000])]
    pending = deque(Request(i, 1.0, 10, 10) for i in range(5))
    _dispatch(pending, replicas, max_ongoing=4, dispatch="prefill-backlog")
    assert [r.index for r in replicas[0].waiting][3:] == [0]  # its one free slot
    assert [r.index for r in replicas[1].waiting][1:] == [1, 2, 3]
    assert [r.index for r in pending] == [4]  # no room anywhere: it waits at the gateway


def test_the_cli_offers_exactly_the_replays_rules_and_its_default() -> None:
    import argparse

    from bench.autoscale.replay import ReplayConfig
    from cluster.cli.bench_autoscale import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    action = next(a for a in parser._actions if a.dest == "dispatch")
    assert tuple(action.choices or ()) == DISPATCH_RULES
    assert action.default == ReplayConfig().dispatch
