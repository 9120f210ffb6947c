"""Issue 3's "Must show", against `make up` itself: `modelyard up` with the packaged
local.yaml serves smollm2-135m-instruct on real vLLM (CPU) beside the simulated catalog.

One `modelyard up` process for the module (its own HTTP and gRPC ports, its own Ray), then
the official OpenAI SDK: a real answer with usage, a cached long prefix, streaming, a named
tool_choice, vLLM's own metrics on /metrics, a simulated model in the same cluster, and
the OpenAI request surface (n > 1, prompt lists, token ids, logprobs:
tests/vllm/openai_surface_real.py), and finally Ctrl-C (SIGINT) → exit 0 with nothing left
behind.

The model comes from the model cache (`$MODELYARD_MODEL_CACHE`, else
~/.cache/modelyard/models); `up` prepares it when missing, which the start bound allows for
(~70 s on a busy 2-core machine; docs/VLLM_ON_CPU.md). Assertions are on structure, counts
and caching, never on generated text.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from openai import OpenAI

from tests.integration.live import DEVSTRAL, free_port
from tests.vllm.openai_surface_real import (  # collected here: they use this module's `up`
    test_real_model_chat_logprobs,
    test_real_model_completion_logprobs_and_logit_bias,
    test_real_model_n_choices,
    test_real_model_prompt_batches_and_token_ids,
)

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parents[2]
REAL_MODEL = "smollm2-135m-instruct"
#: Preparing the model on a cold cache (~70 s) + Ray, Serve and vLLM's start (~100 s).
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 120.0
READY_LINE = "Press Ctrl-C to stop."
#: vLLM's KV block size on CPU; only full blocks are cached.
CPU_BLOCK_SIZE = 128
#: The environment `make up` runs with (the Makefile exports it).
MAKE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "HF_HUB_OFFLINE": "1",
    "VLLM_HOST_IP": "127.0.0.1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "PYTHONHASHSEED": "0",
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}


@dataclass
class UpProcess:
    """A running `modelyard up` and the lines it printed so far."""

    process: subprocess.Popen[str]
    port: int
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)
    ready_s: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def read_until(self, marker: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.seen.append(line)
            if marker in line:
                return True
        return False

    def tail(self, count: int = 40) -> str:
        return "\n".join(self.seen[-count:])

    def session_dir(self) -> str:
        sessions = [line.split(": ", 1)[1] for line in self.seen if line.startswith("Ray session")]
        assert len(sessions) == 1, self.tail()
        return sessions[0]


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _session_pids(session_dir: str) -> list[int]:
    """Processes whose command line names the Ray session (raylet, gcs, workers)."""
    name = Path(session_dir).name.encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if name in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _metric_total(text: str, name: str) -> float:
    """Sum of every sample of `name` (any labels) in a Prometheus text exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$", re.MULTILINE)
    values = [float(m.group(1)) for m in pattern.finditer(text)]
    assert values, f"{name} is not in /metrics"
    return sum(values)


@pytest.fixture(scope="module")
def up() -> Iterator[UpProcess]:
    port = free_port()
    env = {**MAKE_ENV, **os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "cluster.cli.main", "up", "--port", str(port)]
    command += ["--grpc-port", str(free_port())]  # never local.yaml's fixed 50051
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    handle = UpProcess(process=process, port=port)
    threading.Thread(target=_pump, args=(process.stdout, handle.lines), daemon=True).start()
    try:
        assert handle.read_until(READY_LINE, READY_TIMEOUT_S), handle.tail()
        handle.ready_s = time.monotonic() - started
        yield handle
    finally:
        if process.poll() is None:  # a test failed before the asserted stop
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def client(up: UpProcess) -> OpenAI:
    return OpenAI(
        base_url=f"{up.base_url}/api/v1", api_key="any", timeout=REQUEST_TIMEOUT_S, max_retries=0
    )


def test_banner_lists_the_real_model_on_vllm(up: UpProcess) -> None:
    output = "\n".join(up.seen)
    assert f"model {REAL_MODEL}:" in output  # prepared now or found in the model cache
    assert "modelyard up: " in output and output.split("modelyard up: ")[1].startswith(
        str(ROOT / "cluster" / "config" / "local.yaml")
    )
    assert f"{REAL_MODEL}\n    engine: vllm   replicas: 1   no GPUs   ready in" in output
    assert f"{DEVSTRAL}\n    engine: sim [SIMULATED]" in output
    assert f"modelyard is ready at {up.base_url}/api/v1" in output


def test_sdk_gets_a_real_answer_with_usage(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
    )
    assert reply.model == REAL_MODEL
    assert reply.system_fingerprint is not None and "SIMULATED" not in reply.system_fingerprint
    [choice] = reply.choices
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage is not None
    assert 0 < usage.completion_tokens <= 16
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_repeated_long_prefix_is_served_from_vllms_cache(client: OpenAI, up: UpProcess) -> None:
    # ~600 tokens of fresh text (a nonce first: nothing earlier in the cluster shares it).
    facts = " ".join(f"Fact {i}: shelf {i} holds {i * 7} jars of plum jam." for i in range(45))
    prefix = f"Inventory {uuid.uuid4().hex}. {facts}"
    usages = []
    for question in ("How many jars are on shelf 3?", "How many jars are on shelf 9?"):
        reply = client.chat.completions.create(
            model=REAL_MODEL,
            messages=[
                {"role": "system", "content": prefix},
                {"role": "user", "content": question},
            ],
            max_tokens=4,
        )
        assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
        usages.append(reply.usage)
    first, second = usages
    assert first.prompt_tokens > 3 * CPU_BLOCK_SIZE
    assert first.prompt_tokens_details is not None and second.prompt_tokens_details is not None
    assert first.prompt_tokens_details.cached_tokens == 0
    cached = second.prompt_tokens_details.cached_tokens or 0
    # Every full block of the shared prefix is reused, whole blocks only.
    assert cached >= 3 * CPU_BLOCK_SIZE
    assert cached % CPU_BLOCK_SIZE == 0
    assert cached < second.prompt_tokens
    metrics = requests.get(f"{up.base_url}/metrics", timeout=30).text
    assert _metric_total(metrics, "vllm:prefix_cache_hits_total") >= cached


def test_streaming_yields_chunks_and_a_final_usage(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": "Count from one to ten."}],
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    with_text = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(with_text) >= 3
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
    assert len(finished) == 1
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert 0 < final.usage.completion_tokens <= 24
    assert len({c.id for c in chunks}) == 1


def test_named_tool_choice_returns_a_valid_tool_call(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=REAL_MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=96,
    )
    [choice] = reply.choices
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert isinstance(arguments, dict)
    assert {"city", "unit"} <= arguments.keys()
    assert arguments["unit"] in ("celsius", "fahrenheit")


def test_metrics_include_vllms_engine_metrics(up: UpProcess) -> None:
    metrics = requests.get(f"{up.base_url}/metrics", timeout=30).text
    for name in ("vllm:prefix_cache_hits_total", "vllm:num_requests_running"):
        samples = [line for line in metrics.splitlines() if line.startswith(name + "{")]
        assert samples, f"{name} is not in /metrics"
        assert all(f'model_name="{REAL_MODEL}"' in line for line in samples)
    # The earlier tests' prompts went through vLLM's prefix cache (it counts every query).
    assert _metric_total(metrics, "vllm:prefix_cache_queries_total") > 0


def test_a_simulated_model_answers_in_the_same_cluster(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=DEVSTRAL, messages=[{"role": "user", "content": "hi"}], max_tokens=8
    )
    assert reply.system_fingerprint is not None and "SIMULATED" in reply.system_fingerprint
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 8


def test_sigint_stops_with_exit_0_and_leaves_nothing(up: UpProcess) -> None:
    session = up.session_dir()
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=STOP_TIMEOUT_S) == 0, up.tail()
    up.read_until("stopped in", 5.0)
    assert any(line.startswith("stopped in") for line in up.seen), up.tail()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{up.base_url}/health", timeout=5)
    deadline = time.monotonic() + 20
    while _session_pids(session) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _session_pids(session) == []


__all__ = [  # the imported tests are meant to be collected here
    "test_real_model_chat_logprobs",
    "test_real_model_completion_logprobs_and_logit_bias",
    "test_real_model_n_choices",
    "test_real_model_prompt_batches_and_token_ids",
]
