"""The clairvoyant-placement reference: what knowing the future buys under LRU eviction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.clairvoyant import Placer, build_report, continuation_rates, main, place_all
from bench.lru import LRUBlockCache
from bench.trace import TraceRequest

# T = 10 tokens; every prompt is 31 tokens: 3 full blocks, all 3 reusable ((31 - 1) // 10).
T = 10


def _req(i: int, ids: list[int]) -> TraceRequest:
    return TraceRequest(i, float(i), 31, 1, tuple(ids))


# Two replicas of 3 blocks. Requests 0 and 1 fill one replica each; request 2 must evict
# one of them. Only request 0's blocks come back (request 3).
TRACE = [_req(0, [1, 2, 3]), _req(1, [4, 5, 6]), _req(2, [7, 8, 9]), _req(3, [1, 2, 3])]


def _run(placer: Placer, imbalance: float | None, horizon: int | None = None) -> float:
    outcome = place_all(
        TRACE,
        block_tokens=T,
        replicas=2,
        capacity=3,
        placer=placer,
        imbalance=imbalance,
        horizon=horizon,
    )
    return outcome.hit_rate


def test_lru_cache_evicts_least_recently_released_tail_first() -> None:
    cache = LRUBlockCache(capacity=3)
    cache.serve([1, 2, 3])
    assert list(cache.eviction_order()) == [3, 2, 1]
    cache.serve([1, 4])  # block 1 is released again, 4 stored; 3 goes
    assert list(cache.eviction_order()) == [2, 4, 1]
    assert cache.hits([1, 4, 9], limit=5) == 2
    assert cache.hits([1, 4, 9], limit=1) == 1
    assert cache.missing([1, 3, 9]) == 2


def test_clairvoyant_keeps_the_blocks_that_come_back() -> None:
    # Affinity breaks the tie at request 2 by prefill and evicts [1, 2, 3]; the clairvoyant
    # placer evicts [4, 5, 6], which nobody uses again, and request 3 reuses 3 blocks.
    assert _run("affinity", None) == 0.0
    assert _run("clairvoyant", None) == pytest.approx(30 / (4 * 31))


def test_a_horizon_shorter_than_the_reuse_distance_sees_no_damage() -> None:
    # Request 3 reuses the blocks 1 request after request 2 is placed.
    assert _run("clairvoyant", None, horizon=1) == pytest.approx(30 / (4 * 31))
    assert _run("clairvoyant", None, horizon=0) == 0.0


def test_the_balance_limit_binds_the_clairvoyant_placer_too() -> None:
    # With max/mean prefill held at 1.0 request 2 has one legal replica: knowledge is useless.
    assert _run("clairvoyant", 1.0) == 0.0


def test_report_runs_every_placer_per_limit_and_horizon() -> None:
    report = build_report(
        TRACE, replicas=2, kv_blocks=3, block_tokens=T, imbalances=[1.1, None], horizons=[None, 1]
    )
    rows = [(o.placer, o.imbalance, o.horizon) for o in report.outcomes]
    assert rows == [
        ("affinity", 1.1, None),
        ("clairvoyant", 1.1, None),
        ("clairvoyant", 1.1, 1),
        ("affinity", None, None),
        ("clairvoyant", None, None),
        ("clairvoyant", None, 1),
    ]
    assert report.infinite_cache_hit_rate == pytest.approx(30 / (4 * 31))
    assert report.pooled_belady_hit_rate == pytest.approx(30 / (4 * 31))


def test_cli_json_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.jsonl"
    rows = [
        {
            "timestamp": r.arrival_s * 1000,
            "input_length": 31,
            "output_length": 1,
            "hash_ids": list(r.hash_ids),
        }
        for r in TRACE
    ]
    trace.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    argv = ["--trace", str(trace), "--replicas", "2", "--kv-blocks", "3", "--block-tokens", "10"]
    assert main([*argv, "--imbalance", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [o["placer"] for o in report["outcomes"]] == ["affinity", "clairvoyant"]
    assert report["outcomes"][1]["hit_rate"] > report["outcomes"][0]["hit_rate"]

    with pytest.raises(SystemExit):
        main([*argv, "--imbalance", "0.5"])
    assert "imbalance is max/mean prefill" in capsys.readouterr().err
    assert main(["--trace", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


def test_continuation_rates_by_turn() -> None:
    # Block 0 opens every prompt (a shared system prompt): it makes nobody a parent.
    trace = [
        _req(0, [0, 1, 2]),
        _req(1, [0, 3, 4]),
        _req(2, [0, 1, 2]),  # continues request 0: turn 1
        _req(3, [0, 1, 2]),  # continues request 0 again (its first storer): turn 1
        _req(4, [0, 5, 6]),
    ]
    rates = {r.turn: (r.requests, r.continued) for r in continuation_rates(trace, T)}
    assert rates == {"0": (3, pytest.approx(1 / 3)), "1": (2, 0.0), "all": (5, 0.2)}
