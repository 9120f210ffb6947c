"""The bench's parts: trace loading, hit-rate references, baselines, the CLI's output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.bounds import (
    infinite_cache_hit_rate,
    pooled_belady_hit_rate,
    pooled_lru_hit_rate,
)
from bench.policies import LeastLoaded, PowerOfTwo, RoundRobin, make_policy
from bench.trace import TraceRequest, load_trace
from cluster.cli import bench_route
from cluster.errors import ConfigError
from cluster.routing import ReplicaLoad, RouteRequest


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _req(i: int, length: int, ids: list[int], t: float = 0.0) -> TraceRequest:
    return TraceRequest(i, t, length, 1, tuple(ids))


def test_trace_loads_sorted_and_limited(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        [
            {"timestamp": 2000, "input_length": 10, "output_length": 3, "hash_ids": [1]},
            {"timestamp": 1000, "input_length": 600, "output_length": 0, "hash_ids": [1, 2]},
            {"timestamp": 3000, "input_length": 10, "output_length": 3, "hash_ids": [9]},
        ],
    )
    trace = load_trace(path, limit=2)
    assert [r.index for r in trace] == [1, 0]  # the first two lines, by arrival
    assert trace[0].arrival_s == 1.0
    assert trace[0].output_length == 1  # at least one token is generated
    assert trace[0].full_blocks(512) == (1,)  # the partial last block is not cached


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "t.jsonl:1: not JSON"),
        ('{"timestamp": 0, "input_length": 5, "output_length": 1}', "missing field 'hash_ids'"),
        ('{"timestamp": 0, "input_length": "x", "output_length": 1, "hash_ids": []}', "numbers"),
        ('{"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": []}', "input >= 1"),
        ("[1, 2]", "expected an object"),
    ],
)
def test_bad_trace_lines_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_trace(path)


def test_missing_trace_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_trace(tmp_path / "absent.jsonl")


def test_hit_rate_references() -> None:
    # T = 10 tokens; requests of 31 tokens hold 3 full blocks (at most 3 hit: (31-1)//10).
    trace = [
        _req(0, 31, [1, 2, 3, 4]),
        _req(1, 31, [1, 2, 3, 4]),  # 3 blocks cached
        _req(2, 31, [5, 6, 7, 8]),
        _req(3, 31, [1, 2, 9, 9]),  # 2 blocks cached (if [1, 2] survived)
    ]
    total = 4 * 31
    assert infinite_cache_hit_rate(trace, 10) == pytest.approx(50 / total)
    # 3 blocks of room: request 2 evicts 1, 2, 3 under LRU; optimal eviction keeps 1, 2.
    assert pooled_lru_hit_rate(trace, 10, capacity=3) == pytest.approx(30 / total)
    assert pooled_belady_hit_rate(trace, 10, capacity=3) == pytest.approx(50 / total)
    assert pooled_lru_hit_rate(trace, 10, capacity=100) == pytest.approx(50 / total)


def _loads(outstanding: list[int]) -> list[ReplicaLoad]:
    return [ReplicaLoad(f"r{i}", running=n) for i, n in enumerate(outstanding)]


def test_baselines() -> None:
    req = RouteRequest("q", [], 10)
    rr = RoundRobin()
    assert [rr.choose(req, _loads([0, 0, 0]), 0.0) for _ in range(4)] == [0, 1, 2, 0]
    ll = LeastLoaded()
    assert ll.choose(req, _loads([3, 1, 2]), 0.0) == 1
    assert {ll.choose(req, _loads([1, 1]), 0.0) for _ in range(2)} == {0, 1}  # ties rotate
    p2 = PowerOfTwo(seed=1)
    picks = [p2.choose(req, _loads([5, 0, 5, 5]), 0.0) for _ in range(200)]
    assert picks.count(1) > 80  # replica 1 wins whenever it is drawn (half the draws)
    again = PowerOfTwo(seed=1)  # seeded: the same draws again
    assert [again.choose(req, _loads([5, 0, 5, 5]), 0.0) for _ in range(200)] == picks
    with pytest.raises(ConfigError, match="unknown policy"):
        make_policy("nope", block_tokens=512, seed=0)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    bench_route.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


@pytest.mark.sim
def test_cli_prints_json_for_every_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {
            "timestamp": 100 * i,
            "input_length": 2000,
            "output_length": 20,
            "hash_ids": [0, 1 + i % 3, 10 + i, 20 + i],
        }
        for i in range(40)
    ]
    path = _write(tmp_path / "t.jsonl", rows)
    plot = tmp_path / "img" / "p.png"
    args = ["--trace", str(path), "--replicas", "2", "--kv-blocks", "64", "--json"]
    code = _cli(["bench", "route", *args, "--no-progress", "--plot", str(plot), "--repeat", "2"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["policy"] for r in result["results"]] == [
        "modelyard",
        "round-robin",
        "power-of-two",
        "least-loaded",
    ]
    assert all(r["requests"] == 40 for r in result["results"])
    assert result["results"][1]["saving_vs_round_robin"] == 0.0
    assert result["repeats"] == 2
    assert plot.stat().st_size > 10_000


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["bench", "route", "--replicas", "2"]) == 2
    assert "--trace is required" in capsys.readouterr().err
    path = _write(
        tmp_path / "t.jsonl",
        [{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [1]}],
    )
    assert _cli(["bench", "route", "--trace", str(path), "--replicas", "0"]) == 2
    assert "--replicas must be >= 1" in capsys.readouterr().err


def test_decision_cost_mode_reports_percentiles(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--replicas", "8", "--prompt-tokens", "4096", "--decisions", "200", "--json"]
    code = _cli(["bench", "route", "--decision-cost", *args])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt_blocks"] == 8
    assert 0 < out["p50_us"] <= out["p99_us"] <= out["max_us"]
