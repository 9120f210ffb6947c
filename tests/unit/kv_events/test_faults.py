"""The KV event fault injector (`cluster.kv_events.faults`): what goes out, and when."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cluster.config.faults import KVEventFaults
from cluster.engine import KVEventBatch
from cluster.kv_events.faults import FaultInjector, inject


def _batch(seq: int) -> KVEventBatch:
    return KVEventBatch(replica_id="r", seq=seq, timestamp=0.0, events=[])


def _run(settings: KVEventFaults, times: list[float]) -> list[int]:
    injector = FaultInjector(settings)
    out: list[int] = []
    for seq, now in enumerate(times):
        out.extend(b.seq for b in injector.step(_batch(seq), now))
    return out


@pytest.mark.parametrize(
    ("settings", "times", "sent"),
    [
        # No probability: everything passes.
        (KVEventFaults(), [0, 1, 2, 3], [0, 1, 2, 3]),
        # Window [1, 3) after the first batch: seqs 1 and 2 are dropped.
        (KVEventFaults(start_s=1, duration_s=2, drop=1), [0, 1, 2, 3, 4], [0, 3, 4]),
        # Duplicated while active.
        (KVEventFaults(start_s=1, duration_s=2, duplicate=1), [0, 1, 2, 3], [0, 1, 1, 2, 2, 3]),
        # Delayed by 1 batch: 1 goes out after 2, 2 after 3 (the window closes: flushed).
        (
            KVEventFaults(start_s=1, duration_s=2, delay=1, delay_batches=1),
            [0, 1, 2, 3, 4],
            [0, 1, 2, 3, 4],
        ),
        # Delayed by 2 (all delayed): released in order, each two batches late.
        (
            KVEventFaults(start_s=0, duration_s=10, delay=1, delay_batches=2),
            [0, 1, 2, 3, 4],
            [0, 1, 2],
        ),
        # The window closes with batches still held: they go before the next batch.
        (
            KVEventFaults(start_s=0, duration_s=1, delay=1, delay_batches=5),
            [0, 0.5, 2],
            [0, 1, 2],
        ),
        # The window is measured from the first batch, not from zero.
        (KVEventFaults(start_s=0, duration_s=1, drop=1), [100, 100.5, 101], [2]),
    ],
)
def test_fault_schedule(settings: KVEventFaults, times: list[float], sent: list[int]) -> None:
    assert _run(settings, times) == sent


def test_a_delay_reorders_the_stream() -> None:
    injector = FaultInjector(KVEventFaults(delay=0.3, delay_batches=2, seed=3))
    out: list[int] = []
    for seq in range(200):
        out.extend(b.seq for b in injector.step(_batch(seq), 0.0))
    out.extend(b.seq for b in injector.step(_batch(200), 1e9))  # past the window: flush
    assert sorted(out) == list(range(201))  # nothing lost or duplicated
    assert out != sorted(out)  # but out of order
    assert injector.counts.delayed > 30
    late = [out.index(s) - s for s in range(200)]
    assert max(late) <= 2 * 3  # a batch held twice in a row is at most that late


def test_mixed_faults_are_counted_and_reproducible() -> None:
    settings = KVEventFaults(drop=0.2, duplicate=0.2, delay=0.2, seed=11)
    runs = []
    for _ in range(2):
        injector = FaultInjector(settings)
        out = [b.seq for s in range(300) for b in injector.step(_batch(s), 0.0)]
        out += [b.seq for b in injector.step(_batch(300), 1e9)]  # past the window: flush
        counts = injector.counts
        assert counts.dropped > 30 and counts.duplicated > 30 and counts.delayed > 30
        # Each batch goes out once, a duplicated one twice, a dropped one never.
        assert len(out) == 301 - counts.dropped + counts.duplicated
        runs.append(out)
    assert runs[0] == runs[1]


def test_probabilities_cannot_exceed_one() -> None:
    with pytest.raises(ValidationError, match="must not exceed 1"):
        KVEventFaults(drop=0.5, duplicate=0.3, delay=0.3)


async def test_inject_wraps_an_async_stream() -> None:
    async def batches():  # type: ignore[no-untyped-def]
        for seq in range(4):
            yield _batch(seq)

    injector = FaultInjector(KVEventFaults(duplicate=1))
    clock = iter([0.0, 0.0, 0.0, 0.0])
    got = [b.seq async for b in inject(batches(), injector, clock=lambda: next(clock))]
    assert got == [0, 0, 1, 1, 2, 2, 3, 3]
