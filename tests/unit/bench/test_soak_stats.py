"""bench.soak's figures (`bench.soak.stats`) and its replica discovery (`bench.soak.memory`):
table-driven, on hand-made records and samples."""

from __future__ import annotations

from typing import Any

import pytest

from bench.soak.answers import check_body, has_text, read_stream
from bench.soak.memory import Replica, RssSample, replicas_in
from bench.soak.stats import memory_after_warmup, percentile, summarize, timeline

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 0.5, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),  # nearest rank: ceil(0.5 * 4) = 2nd
        ([1.0, 2.0, 3.0, 4.0], 0.9, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 0.25, 1.0),  # order of the input does not matter
        ([float(i) for i in range(1, 101)], 0.99, 99.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def _samples(deployment: str, pid: int, series: list[tuple[float, int]]) -> list[RssSample]:
    return [RssSample(t, deployment, pid, rss * MIB) for t, rss in series]


@pytest.mark.parametrize(
    ("series", "warmup_end", "growth", "peak_growth"),
    [
        # flat after the warm-up: the warm-up's own growth does not count
        ([(0, 100), (5, 150), (10, 200), (15, 200), (20, 200), (25, 200)], 10, 0.0, 0.0),
        # +10 % from the median of the first three to the median of the last three
        ([(10, 200), (15, 200), (20, 200), (25, 220), (30, 220), (35, 220)], 10, 0.10, 0.10),
        # a spike in the middle counts for the peak only
        ([(10, 200), (15, 200), (20, 300), (25, 200), (30, 200), (35, 200)], 10, 0.0, 0.5),
        # one odd sample at either end is damped by the medians
        ([(10, 250), (15, 200), (20, 200), (25, 200), (30, 200), (35, 100)], 10, 0.0, 0.25),
    ],
)
def test_rss_growth_after_warmup(
    series: list[tuple[float, int]], warmup_end: float, growth: float, peak_growth: float
) -> None:
    (memory,) = memory_after_warmup(_samples("gateway", 7, series), warmup_end)
    assert memory.growth == pytest.approx(growth)
    assert memory.peak_growth == pytest.approx(peak_growth)


def test_each_process_is_its_own_series_and_one_dead_in_the_warmup_has_none() -> None:
    samples = (
        _samples("gateway", 1, [(0, 100), (1, 100)])  # died during the warm-up
        + _samples("gateway", 2, [(3, 90), (20, 100), (25, 100), (30, 100), (35, 105), (40, 105)])
        + _samples("model-a", 3, [(20, 50), (30, 50)])
    )
    got = {(m.deployment, m.pid): m.growth for m in memory_after_warmup(samples, 10)}
    assert got == {("gateway", 2): pytest.approx(0.05), ("model-a", 3): 0.0}


def _record(
    t: float, kind: str, ok: bool = True, total: float = 0.1, ttft: Any = 0.05
) -> dict[str, Any]:
    return {"t": t, "kind": kind, "model": "m", "ok": ok, "status": 200 if ok else 503,
            "ttft_s": ttft if kind.endswith("-stream") else total, "total_s": total,
            "error": None if ok else "HTTP 503"}  # fmt: skip


def test_summary_counts_rate_errors_and_latencies() -> None:
    start = 1000.0
    records = [_record(start + i * 0.5, "chat-stream" if i % 2 else "chat") for i in range(20)]
    records.append(_record(start + 3.2, "completion", ok=False))
    records.append(_record(start + 10.5, "chat"))  # started after the run: not in the rate
    summary = summarize(
        records, [], started=start, duration_s=10.0, target_rate=2.0, warmup_share=0.2
    )
    assert summary.requests == 22 and summary.errors == 1
    assert summary.achieved_rate == pytest.approx(2.1)
    assert summary.error_kinds == {"HTTP 503": 1}
    assert summary.by_kind == {"chat": 11, "chat-stream": 10, "completion": 1}
    assert summary.ttft_s["p50"] == 0.05 and summary.total_s["max"] == 0.1


def test_timeline_buckets_by_start_time() -> None:
    start = 0.0
    records = [_record(0.5, "chat", total=0.2), _record(1.0, "chat-stream", ttft=None)]
    records += [_record(12.0, "chat", ok=False)]
    buckets = timeline(records, started=start, duration_s=20, bucket_s=10)
    assert [b.rate for b in buckets] == [0.2, 0.1]
    assert buckets[0].ttft_p50_s is None and buckets[0].total_p50_s == 0.1
    assert buckets[1].errors == 1 and buckets[1].total_p50_s is None


def test_replicas_are_read_from_the_actor_table() -> None:
    actors = {
        "a": {"ActorClassName": "ServeReplica:modelyard:gateway", "State": "ALIVE", "Pid": 11},
        "b": {"ActorClassName": "ServeReplica:modelyard:model-x", "State": "ALIVE", "Pid": 12},
        "c": {"ActorClassName": "ServeReplica:modelyard:model-x", "State": "DEAD", "Pid": 9},
        "d": {"ActorClassName": "ServeReplica:other:gateway", "State": "ALIVE", "Pid": 13},
        "e": {"ActorClassName": "ServeController", "State": "ALIVE", "Pid": 14},
    }
    assert replicas_in(actors, "modelyard") == [Replica("gateway", 11), Replica("model-x", 12)]


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            [
                b'data: {"choices":[{"delta":{"content":"a"}}]}',
                b'data: {"usage":{"cost":"1"}}',
                b"data: [DONE]",
            ],
            None,
        ),
        (
            [b'data: {"choices":[{"delta":{"reasoning":"a"}}]}', b"data: [DONE]"],
            "stream without a usage chunk",
        ),
        (
            [b'data: {"choices":[{"text":"a"}]}', b'data: {"usage":{"x":1}}'],
            "stream ended without [DONE]",
        ),
        ([b'data: {"error":{"code":"overloaded"}}'], "stream error: overloaded"),
    ],
)
def test_a_stream_is_ok_only_with_usage_and_done(lines: list[bytes], error: str | None) -> None:
    _, got = read_stream(lines, started=0.0)
    assert got == error


def test_token_fields_and_unary_bodies() -> None:
    assert has_text({"choices": [{"delta": {"role": "assistant"}}]}) is False
    assert has_text({"choices": [{"delta": {"reasoning_content": "x"}}]}) is True
    assert check_body({"choices": [{}], "usage": {"total_tokens": 1}}) is None
    assert check_body({"choices": [], "usage": {}}) == "answer without choices"
