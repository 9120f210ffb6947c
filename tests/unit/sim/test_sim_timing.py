"""The performance model: step time grows with load; KV capacity from GPU memory."""

from __future__ import annotations

import pytest

from cluster.config import ModelSpec, load_builtin_catalog
from cluster.errors import ConfigError
from deployments.engines.sim.timing import GPU_SPECS, PerformanceModel, StepLoad

CATALOG = load_builtin_catalog()


def spec(model_id: str) -> ModelSpec:
    found = CATALOG.find(model_id)
    assert found is not None
    return found


DEVSTRAL = "mistralai/devstral-small"
QWEN = "qwen/qwen3-coder-flash"
MINIMAX = "minimax/minimax-m1"
AWQ = "casperhansen/mistral-small-24b-instruct-2501-awq"
ALL = [DEVSTRAL, QWEN, MINIMAX, AWQ]


@pytest.mark.parametrize("model_id", ALL)
@pytest.mark.parametrize("gpu", ["h100", "h200", "a100"])
def test_more_running_sequences_make_a_longer_decode_step(model_id: str, gpu: str) -> None:
    perf = PerformanceModel(spec(model_id), GPU_SPECS[gpu])  # type: ignore[index]
    times = [perf.decode_step_time([2000] * n) for n in (1, 8, 64, 256)]
    assert times == sorted(times) and times[0] < times[-1]


@pytest.mark.parametrize("model_id", ALL)
def test_longer_context_makes_a_longer_decode_step(model_id: str) -> None:
    perf = PerformanceModel.for_gpu(spec(model_id), "h100")
    times = [perf.decode_step_time([c] * 16) for c in (100, 10_000, 100_000)]
    assert times[0] < times[1] < times[2]


@pytest.mark.parametrize("model_id", ALL)
def test_longer_uncached_prompt_makes_a_longer_prefill(model_id: str) -> None:
    perf = PerformanceModel.for_gpu(spec(model_id), "h100")
    times = [perf.prefill_time(n) for n in (128, 1024, 8192, 32768)]
    assert times[0] < times[1] < times[2] < times[3]
    # Cached tokens are not recomputed: the same prompt with most of it cached is cheaper.
    assert perf.prefill_time(1024, cached_tokens=7168) < perf.prefill_time(8192)


@pytest.mark.parametrize(("gpu_a", "gpu_b"), [("a100", "h100"), ("h100", "h200")])
def test_faster_gpus_decode_faster(gpu_a: str, gpu_b: str) -> None:
    s = spec(DEVSTRAL)
    slow = PerformanceModel(s, GPU_SPECS[gpu_a]).decode_step_time([4000] * 32)  # type: ignore[index]
    fast = PerformanceModel(s, GPU_SPECS[gpu_b]).decode_step_time([4000] * 32)  # type: ignore[index]
    assert fast < slow


def test_prefill_is_compute_bound_and_matches_the_formula() -> None:
    s = spec(DEVSTRAL)
    perf = PerformanceModel.for_gpu(s, "h100")
    n = 8192
    expected_compute = 2 * s.active_params_b * 1e9 * n / (2 * 989e12 * 0.5)
    t = perf.prefill_time(n)
    # Compute dominates; attention and KV reads add a little on top.
    assert expected_compute < t < expected_compute * 1.5


def test_single_sequence_decode_is_bandwidth_bound_on_weights() -> None:
    s = spec(DEVSTRAL)
    perf = PerformanceModel.for_gpu(s, "h100")
    weights_s = s.params_b * 1e9 * 2 / (2 * 3.35e12 * 0.8)
    t = perf.decode_step_time([1])
    assert weights_s < t < weights_s + 0.003
    # ~90 tokens/s for a 24B dense model on TP2 H100: the order of magnitude users see.
    assert 50 < 1 / t < 150


@pytest.mark.parametrize(("n", "lower", "upper"), [(1, 0.10, 0.11), (64, 0.99, 1.0)])
def test_moe_weight_reads_grow_with_the_batch(n: int, lower: float, upper: float) -> None:
    perf = PerformanceModel.for_gpu(spec(QWEN), "h100")
    fraction = perf.weight_bytes_read(n) / perf.weight_bytes
    assert lower <= fraction <= upper


def test_an_empty_step_takes_no_time() -> None:
    perf = PerformanceModel.for_gpu(spec(QWEN), "h100")
    assert perf.step_time(StepLoad(0, 0, 0, 0)) == 0.0


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], StepLoad(0, 0, 0, 0)),
        ([(1, 10)], StepLoad(1, 1, 11, 11)),
        ([(4, 0)], StepLoad(1, 4, 10, 4)),
        ([(4, 0), (1, 5)], StepLoad(2, 5, 16, 10)),
    ],
)
def test_step_load_sums_tokens_pairs_and_reads(
    items: list[tuple[int, int]], expected: StepLoad
) -> None:
    assert StepLoad.of(items) == expected


@pytest.mark.parametrize(
    ("model_id", "gpu", "blocks"),
    [
        # (2 x 80 GB x 0.9 - 47.2 GB) / (163840 B x 16)
        (DEVSTRAL, "h100", 36926),
        # (16 x 80 GB x 0.9 - 912 GB) / (40960 B x 16)
        (MINIMAX, "h100", 366210),
        # (1 x 80 GB x 0.9 - 11.8 GB) / (163840 B x 16)
        (AWQ, "h100", 22964),
        (DEVSTRAL, "h200", int((2 * 141e9 * 0.9 - 47.2e9) // (163840 * 16))),
    ],
)
def test_kv_capacity_from_gpu_memory(model_id: str, gpu: str, blocks: int) -> None:
    perf = PerformanceModel.for_gpu(spec(model_id), gpu)  # type: ignore[arg-type]
    assert perf.kv_capacity_blocks(16) == blocks


def test_weights_that_do_not_fit_are_a_config_error() -> None:
    big = spec(MINIMAX).model_copy(update={"parallelism": spec(AWQ).parallelism})
    with pytest.raises(ConfigError, match=r"sim\.gpu"):
        PerformanceModel.for_gpu(big, "h100").kv_capacity_blocks(16)
