"""LoadBook: a router's own in-flight requests plus the counts replicas share."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.routing import RouteRequest
from deployments.routing.loads import LoadBook


def route(tokens: int) -> RouteRequest:
    return RouteRequest(request_id="r", block_hashes=(), prompt_tokens=tokens)


@pytest.mark.parametrize(
    ("own", "stats", "ongoing", "prior", "backlog"),
    [
        # nothing anywhere
        ([], {}, None, 0, 0),
        # own requests only: their prefill estimates, whatever the replica reports
        ([100, 50], {"running": 2}, 2, 0, 150),
        # Serve's count sees 3 more than ours: each costs the mean prefill (100, then 95)
        ([100, 50], {}, 5, 0, 150 + round(3 * 95.0)),
        # no Serve count: the replica's running + waiting
        ([100], {"running": 1, "waiting": 2}, None, 0, 100 + 2 * 100),
        # none of ours yet: the prompt being placed stands in for the unseen ones
        ([], {"running": 3}, None, 400, 3 * 400),
        # a replica reporting fewer than we sent (stale): never negative
        ([100, 100], {"running": 0}, 0, 0, 200),
    ],
    ids=["idle", "own-only", "others-by-serve", "others-by-stats", "prior", "stale"],
)
def test_backlog_formula(
    own: list[int], stats: dict[str, Any], ongoing: int | None, prior: int, backlog: int
) -> None:
    book = LoadBook()
    for i, prefill in enumerate(own):
        book.routed(f"k{i}", "a", route(prefill), prefill)
    load = book.load("a", stats, ongoing, prior)
    assert load.queued_prefill_tokens == backlog


@pytest.mark.parametrize(
    ("stats", "running", "waiting", "usage"),
    [
        ({"running": 2, "waiting": 1, "kv_usage": 0.25}, 2, 1, 0.25),
        ({"running": -1, "waiting": True, "kv_usage": 7}, 0, 0, 1.0),
        ({"running": "x", "kv_usage": None}, 0, 0, 0.0),
    ],
    ids=["reported", "out-of-range", "garbage"],
)
def test_reported_numbers_are_sanitised(
    stats: dict[str, Any], running: int, waiting: int, usage: float
) -> None:
    load = LoadBook().load("a", stats, None)
    assert (load.running, load.waiting, load.kv_usage) == (running, waiting, usage)


def test_completion_counts_only_on_the_replica_it_was_routed_to() -> None:
    book = LoadBook()
    book.routed("k", "a", route(100), 100)
    assert book.completed("k", "b") is None  # a rejected attempt's completion elsewhere
    assert book.own("a") == (1, 100)
    done = book.completed("k", "a")
    assert done is not None and done.prefill == 100
    assert book.own("a") == (0, 0)
    assert book.completed("k", "a") is None


def test_rerouting_a_key_moves_its_load() -> None:
    book = LoadBook()
    book.routed("k", "a", route(100), 100)
    book.routed("k", "b", route(100), 40)
    assert book.own("a") == (0, 0)
    assert book.own("b") == (1, 40)
    assert len(book) == 1


def test_forgetting_a_replica_drops_its_requests() -> None:
    book = LoadBook()
    book.routed("k1", "a", route(10), 10)
    book.routed("k2", "a", route(20), 20)
    book.routed("k3", "b", route(30), 30)
    gone = book.forget("a")
    assert sorted(f.prefill for f in gone) == [10, 20]
    assert book.own("a") == (0, 0)
    assert book.completed("k1", "a") is None
    assert book.own("b") == (1, 30)


def test_negative_prefill_counts_as_zero() -> None:
    book = LoadBook()
    book.routed("k", "a", route(10), -6)  # more matched than the prompt (cap rounding)
    assert book.own("a") == (1, 0)
