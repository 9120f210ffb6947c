"""`modelyard sim serve` as a process: the OpenAI SDK talks to it, /metrics has vLLM's
gauges, KV events arrive over ZMQ and decode with `cluster.kv_events`, a live replay of a
trace with shared prefixes gets cached tokens back (directly, through `modelyard sim
front`, and through SGLang's router when it is installed), and SIGINT stops it cleanly.

Every process binds 127.0.0.1 and is stopped by the test (its whole session); every wait
is bounded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import zmq

from bench.live import LiveSettings, replay_live, summarise_live
from bench.live_targets import HttpTarget
from bench.processes import ManagedProcess, free_port, wait_http_ok
from bench.runner import cost_function
from bench.thirdparty import modelyard_bin
from bench.trace import TraceRequest
from cluster.config import load_builtin_catalog
from cluster.kv_events import decode_kv_frames

pytestmark = pytest.mark.integration

QWEN = "qwen/qwen3-coder-flash"
READY_S = 60.0
T = 64  # tokens per block in these replicas and traces


def sim_serve(tmp: Path, name: str, *extra: str) -> tuple[ManagedProcess, str, str]:
    port, events = free_port(), free_port()
    argv = [
        modelyard_bin(), "sim", "serve", "--port", str(port), "--block-size", str(T),
        "--kv-blocks", "4096", "--speedup", "20", "--kv-events-port", str(events), *extra,
    ]  # fmt: skip
    proc = ManagedProcess(argv, tmp / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(url + "/health", timeout_s=READY_S, process=proc)
    return proc, url, f"tcp://127.0.0.1:{events}"


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[tuple[str, str]]:
    proc, url, events = sim_serve(tmp_path, "replica")
    with proc:
        yield url, events


def test_openai_sdk_metrics_and_kv_events(replica: tuple[str, str]) -> None:
    url, events = replica
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"kv-events")
    sub.setsockopt(zmq.RCVTIMEO, 10_000)
    sub.connect(events)
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", timeout=30, max_retries=0)
    try:
        prompt = " shared" * (3 * T)
        frames: list[bytes] | None = None
        for _ in range(20):  # a fresh SUB misses what is published before it is attached
            client.completions.create(model=QWEN, prompt=prompt + " x", max_tokens=2)
            try:
                frames = sub.recv_multipart(flags=zmq.NOBLOCK)
                break
            except zmq.Again:
                pass
        if frames is None:
            frames = sub.recv_multipart()  # waits up to RCVTIMEO
        chat = client.chat.completions.create(
            model=QWEN, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        again = client.completions.create(model=QWEN, prompt=prompt + " x", max_tokens=2)
        metrics = client.with_options(base_url=url).get("/metrics", cast_to=str)
    finally:
        client.close()
        sub.close(linger=0)
        ctx.term()
    batch = decode_kv_frames(frames, replica_id="sim")
    assert batch is not None and any(e.type == "stored" for e in batch.events)
    assert chat.usage is not None and chat.usage.completion_tokens <= 3
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    assert again.usage.prompt_tokens_details.cached_tokens == 3 * T
    for name in (
        "vllm:num_requests_running{",
        "vllm:num_requests_waiting{",
        "vllm:kv_cache_usage_perc{",
        "vllm:prefix_cache_queries_total{",
        "vllm:prefix_cache_hits_total{",
    ):
        assert name in metrics


def conversation_trace() -> list[TraceRequest]:
    """Three conversations of three turns (each turn extends the last), interleaved."""
    out: list[TraceRequest] = []
    for turn in range(3):
        for conv in range(3):
            ids = tuple(100 * conv + k for k in range(2 + 2 * turn))
            out.append(TraceRequest(len(out), 0.5 * len(out), len(ids) * T, 8, ids))
    return out


def replay(url: str) -> tuple[int, int, int]:
    """(completed, cached tokens, prompt tokens) of the conversation trace through `url`."""
    trace = conversation_trace()
    settings = LiveSettings(
        target=url,
        model=QWEN,
        trace="conversations",
        requests=len(trace),
        block_tokens=T,
        speedup=1.0,
        sim_speedup=20.0,
        concurrency=8,
        time_limit_s=60.0,
    )

    async def go() -> tuple[int, int, int]:
        target = HttpTarget(url, model=QWEN)
        try:
            run = await replay_live(trace, target, settings)
        finally:
            await target.aclose()
        spec = load_builtin_catalog().find(QWEN)
        assert spec is not None
        result = summarise_live(run, trace, settings, *cost_function(spec))
        assert result.errors == []
        return result.completed, result.cached_tokens, result.prompt_tokens

    return asyncio.run(go())


def test_live_replay_direct_gets_cached_tokens(replica: tuple[str, str]) -> None:
    completed, cached, prompt = replay(replica[0])
    assert completed == 9 and prompt == sum(r.input_length for r in conversation_trace())
    assert cached >= 6 * 2 * T  # turns 2 and 3 of each conversation reuse the last prompt


def test_bench_route_live_cli(replica: tuple[str, str], tmp_path: Path) -> None:
    """`modelyard bench route --live URL` end to end: flags, JSON report, per-replica prefill."""
    url, _ = replica
    trace = tmp_path / "conversations.jsonl"
    rows = [
        {"timestamp": r.arrival_s * 1000, "input_length": r.input_length,
         "output_length": r.output_length, "hash_ids": list(r.hash_ids)}
        for r in conversation_trace()
    ]  # fmt: skip
    trace.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    argv = [
        modelyard_bin(), "bench", "route", "--trace", str(trace), "--block-tokens", str(T),
        "--speedup", "1", "--sim-speedup", "20", "--live", url, "--replica-metrics", url,
        "--record", str(tmp_path / "records.jsonl"), "--json", "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["completed"] == 9 and report["cached_tokens"] >= 6 * 2 * T
    prefill = report["prompt_tokens"] - report["cached_tokens"]
    assert report["prefill_tokens_per_replica"] == [prefill]
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 9


def test_live_replay_through_the_placement_front(tmp_path: Path) -> None:
    replicas = [sim_serve(tmp_path, f"replica-{i}") for i in range(2)]
    try:
        port = free_port()
        argv = [modelyard_bin(), "sim", "front", "--port", str(port), "--block-tokens", str(T)]
        argv += ["--sim-speedup", "20"]
        for _, url, events in replicas:
            argv += ["--replica", f"{url},{events}"]
        with ManagedProcess(argv, tmp_path / "front.log") as front:
            front_url = f"http://127.0.0.1:{port}"
            wait_http_ok(front_url + "/health", timeout_s=READY_S, process=front)
            completed, cached, _ = replay(front_url)
    finally:
        for proc, _, _ in replicas:
            proc.stop()
    assert completed == 9
    assert cached >= 6 * 2 * T  # affinity keeps each conversation with its cache


@pytest.mark.skipif(
    importlib.util.find_spec("sglang_router") is None,
    reason="sglang-router is a benchmark extra: pip install -e '.[bench]'",
)
def test_sglang_router_accepts_sim_serve_workers(tmp_path: Path) -> None:
    replicas = [sim_serve(tmp_path, f"replica-{i}") for i in range(2)]
    try:
        port = free_port()
        argv = [
            str(Path(modelyard_bin()).with_name("python")), "-m", "sglang_router.launch_router",
            "--host", "127.0.0.1", "--port", str(port), "--policy", "cache_aware",
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()),
            "--log-level", "warn", "--worker-urls", *[url for _, url, _ in replicas],
        ]  # fmt: skip
        with ManagedProcess(argv, tmp_path / "sglang.log") as router:
            router_url = f"http://127.0.0.1:{port}"
            wait_http_ok(router_url + "/v1/models", timeout_s=READY_S, process=router)
            completed, cached, _ = replay(router_url)
    finally:
        for proc, _, _ in replicas:
            proc.stop()
    assert completed == 9 and cached > 0


def test_sigint_stops_sim_serve(tmp_path: Path) -> None:
    proc, _, _ = sim_serve(tmp_path, "stopper")
    with proc:
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(timeout=20) == 0
    assert "replica sim-" in proc.log.read_text()
