"""The live replay's parts: hash ids rendered as text (exact token counts, shared ids →
shared text), the replay against a `sim serve` app in-process (cached tokens come back for
shared prefixes), the summary arithmetic, and the /metrics readers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bench.front import gauges_from_metrics
from bench.live import (
    LiveRecord,
    LiveRun,
    LiveSettings,
    replay_live,
    summarise_live,
    with_prefill,
)
from bench.live_metrics import prefill_from_text
from bench.live_record import derive_trace, ttft_summary, write_records
from bench.live_targets import HttpTarget, Outcome
from bench.live_text import BlockText, calibrated_words_per_block
from bench.runner import cost_function
from bench.simserve import build_sim_serve_app
from bench.trace import TraceRequest
from cluster.config import ClusterConfig, ModelDeployment, SimSettings, load_builtin_catalog
from cluster.engine import Usage
from deployments.engines.sim import SimEngine, SimTokenizer, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
T = 64  # block tokens in these tests


def req(index: int, ids: tuple[int, ...], length: int, at: float = 0.0) -> TraceRequest:
    return TraceRequest(index, at, length, 4, ids)


@pytest.mark.parametrize(
    ("ids", "length"),
    [
        ((1, 2, 3), 3 * T),  # whole blocks
        ((1, 2, 3), 2 * T + 5),  # a partial last block
        ((7,), 1),
        ((1, 2), 5 * T),  # ids do not cover the prompt: a unique tail
        ((1, 2, 3, 4), 2 * T),  # more ids than the prompt needs
    ],
)
def test_prompt_has_exactly_input_length_sim_tokens(ids: tuple[int, ...], length: int) -> None:
    text = BlockText(T).prompt(req(0, ids, length))
    assert SimTokenizer().count(text) == length


def test_shared_ids_give_shared_text_and_tokens() -> None:
    blocks = BlockText(T)
    a = blocks.prompt(req(0, (1, 2, 3), 3 * T))
    b = blocks.prompt(req(1, (1, 2, 9), 3 * T))
    c = blocks.prompt(req(2, (5, 2, 3), 3 * T))
    shared = len(blocks.block(1) + blocks.block(2))
    assert a[:shared] == b[:shared]
    tok = SimTokenizer()
    ta, tb, tc = tok.encode(a), tok.encode(b), tok.encode(c)
    assert ta[: 2 * T] == tb[: 2 * T] and ta[2 * T :] != tb[2 * T :]
    assert ta[:T] != tc[:T]
    # Deterministic across instances (and processes: nothing depends on PYTHONHASHSEED).
    assert BlockText(T).prompt(req(0, (1, 2, 3), 3 * T)) == a


def test_unique_tails_differ_between_requests() -> None:
    blocks = BlockText(T)
    a = blocks.prompt(req(0, (1,), 3 * T))
    b = blocks.prompt(req(1, (1,), 3 * T))
    assert a[: len(blocks.block(1))] == b[: len(blocks.block(1))] and a != b


@pytest.mark.parametrize("tokens_per_word", [1, 2, 3])
def test_calibration_matches_the_tokenizer(tokens_per_word: int) -> None:
    def count(text: str) -> int:
        return tokens_per_word * SimTokenizer().count(text)

    assert calibrated_words_per_block(count, 512) == round(512 / tokens_per_word)


@pytest.fixture
async def sim_app() -> AsyncIterator[httpx.ASGITransport]:
    deployment = ModelDeployment(id=QWEN, sim=SimSettings(kv_blocks=4096, block_size=16))
    config = ClusterConfig(models=[deployment])
    (model,) = config.served_models(load_builtin_catalog())
    engine = SimEngine(model, replica_id="sim-0", clock=VirtualClock())
    await engine.start()
    yield httpx.ASGITransport(app=build_sim_serve_app(config, model, engine))
    await engine.shutdown()


@pytest.mark.parametrize("api", ["completions", "chat"])
async def test_replay_against_sim_serve_reads_cached_tokens(
    sim_app: httpx.ASGITransport, api: str
) -> None:
    # A conversation: each turn extends the previous prompt; plus one unrelated prompt.
    trace = [
        req(0, (1, 2), 2 * T, at=0.0),
        req(1, (1, 2, 3), 3 * T, at=1.0),
        req(2, (1, 2, 3, 4), 4 * T, at=2.0),
        req(3, (8, 9), 2 * T, at=3.0),
    ]
    settings = LiveSettings(
        target="in-process",
        api=api,
        model=QWEN,
        trace="synthetic",
        requests=len(trace),
        block_tokens=T,
        speedup=100.0,
        concurrency=4,
        time_limit_s=30.0,
    )
    target = HttpTarget("http://sim", model=QWEN, api=api, transport=sim_app)  # type: ignore[arg-type]
    try:
        run = await replay_live(trace, target, settings)
    finally:
        await target.aclose()
    cost_of, currency = cost_function(load_builtin_catalog().find(QWEN))  # type: ignore[arg-type]
    result = summarise_live(run, trace, settings, cost_of, currency)
    assert (result.sent, result.completed, result.failed, result.unfinished) == (4, 4, 0, 0)
    outcomes = [r.outcome for r in run.records]
    cached = [o.usage.cached_tokens for o in outcomes if o is not None and o.usage is not None]
    assert cached[0] == 0 and cached[3] == 0
    assert cached[1] >= 2 * T - 16 and cached[2] >= 3 * T - 16  # the previous turn's prompt
    assert result.cached_tokens == sum(cached) and result.token_hit_rate > 0
    if api == "completions":
        assert result.prompt_tokens == sum(r.input_length for r in trace)
    assert result.ttft_p50_s >= 0 and result.cost > 0 and result.currency == "RUB"


def _record(
    index: int,
    *,
    ttft: float | None,
    usage: Usage | None,
    error: str | None = None,
    lag: float = 0.0,
) -> LiveRecord:
    outcome = Outcome(first_token=None if ttft is None else 10.0 + ttft, usage=usage, error=error)
    return LiveRecord(index=index, scheduled=10.0, sent=10.0 + lag, outcome=outcome)


def test_summary_counts_and_scales_times() -> None:
    trace = [req(i, (i,), T) for i in range(4)]
    run = LiveRun(
        records=[
            _record(0, ttft=0.5, usage=Usage(prompt_tokens=100, completion_tokens=4)),
            _record(
                1,
                ttft=1.5,
                usage=Usage(prompt_tokens=100, completion_tokens=4, cached_tokens=50),
                lag=0.25,
            ),
            _record(2, ttft=None, usage=None, error="HTTP 503: busy"),
        ],
        wall_s=3.0,
    )
    settings = LiveSettings(
        target="x",
        model=QWEN,
        trace="t",
        requests=4,
        block_tokens=T,
        speedup=1.0,
        sim_speedup=2.0,
        concurrency=1,
        time_limit_s=1.0,
    )
    result = summarise_live(run, trace, settings, lambda u: Decimal(u.prompt_tokens), "RUB")
    assert (result.completed, result.failed, result.unfinished) == (2, 1, 1)
    assert result.token_hit_rate == 50 / 200
    assert result.ttft_p50_s == pytest.approx(2.0)  # (0.5 + 1.5) / 2 wall s x sim speedup 2
    assert result.ttft_after_send_p50_s == pytest.approx(1.75)  # the 0.25 s lag left out
    assert (result.send_lag_p50_s, result.send_lag_p99_s) == pytest.approx((0.0, 0.49))
    assert result.cost == Decimal("200.00") and result.errors == ["HTTP 503: busy"]
    spread = with_prefill(result, [30, 10])
    assert spread.prefill_max_over_mean == pytest.approx(1.5)


METRICS = """\
# TYPE modelyard_prompt_tokens_total counter
modelyard_prompt_tokens_total{model="a"} 1000.0
modelyard_prompt_tokens_total{model="b"} 500.0
# TYPE modelyard_cached_tokens_total counter
modelyard_cached_tokens_total{model="a"} 300.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="a"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="a"} 2.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.25
"""


def test_metrics_readers() -> None:
    assert prefill_from_text(METRICS) == 1200
    assert gauges_from_metrics(METRICS) == (3, 2, 0.25)


def test_records_and_the_derived_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    rows = [
        {"timestamp": 1000 * i, "input_length": 64, "output_length": 500, "hash_ids": [i]}
        for i in range(4)
    ]
    trace.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run = LiveRun(
        records=[
            _record(0, ttft=0.5, usage=Usage(prompt_tokens=64, completion_tokens=40)),
            _record(1, ttft=None, usage=None, error="HTTP 503: busy"),
            _record(2, ttft=0.25, usage=Usage(prompt_tokens=64, completion_tokens=7)),
        ]
    )
    records = tmp_path / "records.jsonl"
    write_records(run, records, sim_speedup=4.0)
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [line["ttft_s"] for line in lines] == [2.0, None, 1.0]
    assert lines[1]["error"] == "HTTP 503: busy"
    summary = ttft_summary(records, scale=2.0)
    assert summary["completed"] == 2 and summary["ttft_p50_s"] == pytest.approx(3.0)
    out = tmp_path / "derived.jsonl"
    assert derive_trace(trace, records, out) == 3
    derived = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["output_length"] for d in derived] == [40, 500, 7]  # failed: the trace's own
    assert [d["hash_ids"] for d in derived] == [[0], [1], [2]]
