"""Continuous batching: limits, chunked prefill, KV-bound admission, preemption, determinism."""

from __future__ import annotations

import pytest

from cluster.config import SimSettings, load_builtin_catalog
from deployments.engines.sim.kv_cache import BlockKVCache
from deployments.engines.sim.scheduler import Scheduler, SimSequence, StepResult
from deployments.engines.sim.timing import PerformanceModel

BS = 16
SPEC = load_builtin_catalog().find("qwen/qwen3-coder-flash")
assert SPEC is not None


def make(
    capacity: int = 1000, *, seqs: int = 256, budget: int = 8192, caching: bool = True
) -> Scheduler:
    cache = BlockKVCache(capacity, BS, caching=caching)
    return Scheduler(
        cache,
        PerformanceModel.for_gpu(SPEC, "h100"),
        max_num_seqs=seqs,
        max_num_batched_tokens=budget,
    )


def seq(
    seq_id: str, prompt: int = 40, output: int = 4, hashes: list[int] | None = None
) -> SimSequence:
    return SimSequence(seq_id, prompt, output, block_hashes=hashes or [])


def run(s: Scheduler, limit: int = 10_000) -> list[StepResult]:
    out = []
    while s.has_work and len(out) < limit:
        out.append(s.step())
    assert not s.has_work, "did not drain"
    return out


def emitted(results: list[StepResult], seq_id: str) -> int:
    return sum(r.emitted.get(seq_id, 0) for r in results)


@pytest.mark.parametrize(("max_num_seqs", "n"), [(1, 3), (2, 5), (4, 4), (8, 3)])
def test_max_num_seqs_bounds_running(max_num_seqs: int, n: int) -> None:
    s = make(seqs=max_num_seqs)
    for i in range(n):
        s.add(seq(f"s{i}", output=6))
    s.step()
    assert s.num_running == min(n, max_num_seqs)
    assert s.num_waiting == n - min(n, max_num_seqs)
    results = run(s)
    assert all(emitted(results, f"s{i}") >= 5 for i in range(n))


@pytest.mark.parametrize(("prompt", "budget", "steps"), [(100, 32, 4), (100, 100, 1), (64, 16, 4)])
def test_chunked_prefill_spreads_a_long_prompt(prompt: int, budget: int, steps: int) -> None:
    s = make(budget=budget)
    s.add(seq("a", prompt=prompt, output=1))
    results = run(s)
    assert len(results) == steps
    assert [r.emitted.get("a", 0) for r in results] == [0] * (steps - 1) + [1]
    assert sum(r.scheduled_tokens for r in results) == prompt


def test_decode_emits_one_token_per_step_and_finishes() -> None:
    s = make()
    s.add(seq("a", output=5))
    results = run(s)
    assert [r.emitted.get("a", 0) for r in results] == [1, 1, 1, 1, 1]
    assert results[-1].finished == ["a"]
    assert s.cache.used_blocks == 0, "a finished sequence releases its blocks"


def test_a_cached_prefix_is_not_recomputed() -> None:
    s = make(budget=64)
    hashes = list(range(100, 110))  # 10 full blocks = 160 tokens
    s.add(seq("a", prompt=170, output=1, hashes=hashes))
    first = run(s)
    s.add(seq("b", prompt=170, output=1, hashes=hashes))
    second = run(s)
    assert first[0].admitted[0].cached_tokens == 0
    assert second[0].admitted[0].cached_tokens == 160
    assert sum(r.scheduled_tokens for r in second) == 10
    assert sum(r.duration_s for r in second) < sum(r.duration_s for r in first)


def test_a_fully_cached_prompt_still_recomputes_its_last_token() -> None:
    s = make()
    s.add(seq("a", prompt=32, output=1, hashes=[1, 2]))
    run(s)
    s.add(seq("b", prompt=32, output=1, hashes=[1, 2]))
    assert s.step().admitted[0].cached_tokens == 16


def test_a_sequence_waits_while_the_kv_cache_is_full() -> None:
    s = make(capacity=6)
    s.add(seq("a", prompt=60, output=3))  # 4 blocks
    s.add(seq("b", prompt=60, output=3))  # 4 more: does not fit yet
    first = s.step()
    assert [a.seq_id for a in first.admitted] == ["a"]
    assert s.num_running == 1 and s.num_waiting == 1
    results = [first, *run(s)]
    b_admitted = next(i for i, r in enumerate(results) if any(a.seq_id == "b" for a in r.admitted))
    a_finished = next(i for i, r in enumerate(results) if "a" in r.finished)
    assert b_admitted == a_finished + 1
    assert emitted(results, "a") == emitted(results, "b") == 3


def test_decode_growth_preempts_the_newest_sequence() -> None:
    s = make(capacity=6)
    s.add(seq("a", prompt=48, output=20))  # 3 blocks, grows to 5
    s.add(seq("b", prompt=40, output=20))  # 3 blocks, grows to 4
    results = run(s)
    preempted = [p for r in results for p in r.preempted]
    assert preempted and set(preempted) == {"b"}
    resumed = [a for r in results for a in r.admitted if a.resumed]
    assert [a.seq_id for a in resumed] == ["b"] * len(preempted)
    assert emitted(results, "a") == 20 and emitted(results, "b") == 20
    assert s.cache.used_blocks == 0


def test_more_running_sequences_make_longer_steps() -> None:
    durations = []
    for n in (1, 16, 128):
        s = make()
        for i in range(n):
            s.add(seq(f"s{i}", prompt=500, output=50))
        s.step()  # prefill
        durations.append(s.step().duration_s)  # one decode step
    assert durations[0] < durations[1] < durations[2]


def test_abort_frees_blocks_wherever_the_sequence_is() -> None:
    s = make(capacity=8, seqs=1)
    s.add(seq("a", prompt=60))
    s.add(seq("b", prompt=60))
    s.step()
    assert s.cache.used_blocks == 4
    assert s.abort("a") and s.abort("b")
    assert not s.abort("a")
    assert s.cache.used_blocks == 0 and not s.has_work


@pytest.mark.parametrize(
    ("prompt", "output", "error"),
    [(0, 4, "at least one"), (40, 0, "at least one"), (120, 10, "cache holds 128")],
)
def test_add_rejects_impossible_sequences(prompt: int, output: int, error: str) -> None:
    s = make(capacity=8)
    with pytest.raises(ValueError, match=error):
        s.add(seq("a", prompt=prompt, output=output))


def test_duplicate_ids_are_rejected() -> None:
    s = make()
    s.add(seq("a"))
    with pytest.raises(ValueError, match="already"):
        s.add(seq("a"))


def test_same_inputs_give_the_same_steps() -> None:
    def trace() -> list[tuple[float, dict[str, int], list[str]]]:
        s = make(capacity=40, seqs=4, budget=128)
        for i in range(12):
            s.add(seq(f"s{i}", prompt=30 + 17 * i, output=3 + i % 5, hashes=[i % 3, 7]))
        return [(r.duration_s, r.emitted, r.finished) for r in run(s)]

    assert trace() == trace()


def test_without_prefix_caching_nothing_is_cached() -> None:
    s = make(caching=False)
    s.add(seq("a", prompt=64, output=1, hashes=[1, 2, 3, 4]))
    run(s)
    s.add(seq("b", prompt=64, output=1, hashes=[1, 2, 3, 4]))
    assert s.step().admitted[0].cached_tokens == 0


@pytest.mark.parametrize(
    ("model_id", "settings", "capacity", "caching"),
    [
        ("qwen/qwen3-coder-flash", {}, 52769, True),
        ("qwen/qwen3-coder-flash", {"kv_blocks": 100, "block_size": 32}, 100, True),
        ("minimax/minimax-m1", {"max_num_seqs": 3}, 366210, False),
    ],
)
def test_for_model_builds_the_replica_the_settings_describe(
    model_id: str, settings: dict[str, int], capacity: int, caching: bool
) -> None:
    spec = load_builtin_catalog().find(model_id)
    assert spec is not None
    s = Scheduler.for_model(spec, SimSettings.model_validate(settings))
    assert s.cache.capacity == capacity and s.cache.caching is caching
    assert s.cache.block_size == settings.get("block_size", 16)
    assert s.max_num_seqs == settings.get("max_num_seqs", 256)
