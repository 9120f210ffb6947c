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
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from openai import OpenAI

from bench.processes import free_port
from tests.integration.live import DEVSTRAL
from tests.integration.up_process import UpProcess
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


def session_dir(up: UpProcess) -> str:
    sessions = [line.split(": ", 1)[1] for line in up.seen if line.startswith("Ray session")]
    assert len(sessions) == 1, up.tail()
    return sessions[0]


@dataclass
class RunningUp:
    """The `modelyard up` process of this module and the port it serves on."""

    up: UpProcess
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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
def up() -> Iterator[RunningUp]:
    port = free_port()
    args = ["--port", str(port), "--grpc-port", str(free_port())]  # never local.yaml's 50051
    process = UpProcess(args, env_defaults=MAKE_ENV)
    try:
        assert process.read_until(READY_LINE, READY_TIMEOUT_S), process.tail()
        yield RunningUp(up=process, port=port)
    finally:
        if process.process.poll() is None:  # a test failed before the asserted stop
            process.process.send_signal(signal.SIGINT)
            try:
                process.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def client(up: RunningUp) -> OpenAI:
    return OpenAI(
        base_url=f"{up.base_url}/api/v1", api_key="any", timeout=REQUEST_TIMEOUT_S, max_retries=0
    )


def test_banner_lists_the_real_model_on_vllm(up: RunningUp) -> None:
    output = "\n".join(up.up.seen)
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


def test_repeated_long_prefix_is_served_from_vllms_cache(client: OpenAI, up: RunningUp) -> None:
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


def test_metrics_include_vllms_engine_metrics(up: RunningUp) -> None:
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


def test_sigint_stops_with_exit_0_and_leaves_nothing(up: RunningUp) -> None:
    session = session_dir(up.up)
    up.up.process.send_signal(signal.SIGINT)
    assert up.up.process.wait(timeout=STOP_TIMEOUT_S) == 0, up.up.tail()
    up.up.read_until("stopped in", 5.0)
    assert any(line.startswith("stopped in") for line in up.up.seen), up.up.tail()
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
