"""Live replay: a Mooncake trace sent over HTTP or gRPC to a running server, at trace time.

    run = await replay_live(trace, target, settings, progress=bar)
    result = summarise_live(run, trace, settings, cost_of, currency)

Each request's prompt is its hash ids rendered as text (`bench.live_text`:
exactly `input_length` tokens under the simulator's tokenizer, shared ids → shared text),
sent with `max_tokens = output_length`, streamed, at

    send time (wall) = start + arrival_s / speedup / sim_speedup

`speedup` compresses the trace (as `bench route --speedup`); `sim_speedup` is the
`speedup` the target's simulated replicas run at (simulated seconds per wall second; 1 for
real engines), so a replay of simulated replicas can run slower or faster than real time
and still be reported in simulated seconds: every measured time is multiplied by it.

TTFT = first streamed token - scheduled send time (not the actual send, so a client that
falls behind, or the `concurrency` bound, counts against the server rather than hiding),
times `sim_speedup`. Send lag = actual - scheduled send, times `sim_speedup`: how far the
client itself fell behind (a loaded host), reported so TTFTs can be read against it; TTFT
after send (first token - actual send) leaves the client's lag out.
Token hit rate = Σ cached / Σ prompt tokens as the server reported them
(`usage.prompt_tokens_details.cached_tokens`), over completed requests. At most
`concurrency` requests are in flight; requests still unfinished `time_limit_s` after the
start are cancelled and counted as unfinished, never silently dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bench.bounds import infinite_cache_hit_rate
from bench.live_targets import Outcome, Target
from bench.live_text import BlockText
from bench.trace import TraceRequest
from cluster.engine import Usage

LATE_S = 0.1  # a send this much after its scheduled time (wall) counts as late


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LiveSettings(_Strict):
    target: str
    label: str = Field(default="live", description="the name this run is reported under")
    api: str = "completions"
    model: str
    trace: str
    requests: int
    block_tokens: int = Field(ge=1)
    speedup: float = Field(gt=0, description="trace time compression")
    sim_speedup: float = Field(default=1.0, gt=0, description="the replicas' clock speedup")
    concurrency: int = Field(ge=1)
    time_limit_s: float = Field(gt=0)


class LiveResult(_Strict):
    settings: LiveSettings
    sent: int
    completed: int
    failed: int
    unfinished: int
    late_sends: int = Field(description=f"requests sent more than {LATE_S}s (wall) late")
    send_lag_p50_s: float = Field(
        default=0.0, description="actual - scheduled send time, simulated seconds (client lag)"
    )
    send_lag_p99_s: float = 0.0
    token_hit_rate: float
    infinite_cache_hit_rate: float
    prompt_tokens: int
    cached_tokens: int
    ttft_p50_s: float
    ttft_p99_s: float
    ttft_mean_s: float
    ttft_after_send_p50_s: float = Field(
        default=float("nan"), description="first token - actual send: without the client's lag"
    )
    ttft_after_send_p99_s: float = float("nan")
    cost: Decimal
    currency: str
    wall_s: float
    prefill_tokens_per_replica: list[int] | None = None
    prefill_max_over_mean: float | None = None
    errors: list[str] = Field(default_factory=list, description="the first few, verbatim")


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...


@dataclass(slots=True)
class LiveRecord:
    index: int
    scheduled: float  # wall, monotonic
    sent: float = 0.0
    outcome: Outcome | None = None


@dataclass(slots=True)
class LiveRun:
    records: list[LiveRecord] = field(default_factory=list)
    wall_s: float = 0.0


async def replay_live(
    trace: Sequence[TraceRequest],
    target: Target,
    settings: LiveSettings,
    *,
    text: BlockText | None = None,
    progress: Progress | None = None,
) -> LiveRun:
    """Send every request of `trace` at its time (module docstring); wait for all."""
    text = text or BlockText(settings.block_tokens)
    scale = settings.speedup * settings.sim_speedup
    gate = asyncio.Semaphore(settings.concurrency)
    run = LiveRun()
    start = time.monotonic()
    deadline = start + settings.time_limit_s

    async def one(request: TraceRequest, record: LiveRecord) -> None:
        try:
            prompt = text.prompt(request)
            async with gate:
                record.sent = time.monotonic()
                record.outcome = await target.send(prompt, max_tokens=request.output_length)
        finally:
            if progress is not None:
                progress.update(1)

    tasks: list[asyncio.Task[None]] = []
    try:
        for request in trace:
            scheduled = start + request.arrival_s / scale
            if scheduled >= deadline:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            record = LiveRecord(index=request.index, scheduled=scheduled)
            run.records.append(record)
            tasks.append(asyncio.create_task(one(request, record)))
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        run.wall_s = time.monotonic() - start
    return run


CostFn = Callable[[Usage], Decimal]
MAX_ERRORS_KEPT = 5


def summarise_live(
    run: LiveRun,
    trace: Sequence[TraceRequest],
    settings: LiveSettings,
    cost_of: CostFn,
    currency: str,
) -> LiveResult:
    done = [r for r in run.records if r.outcome is not None and r.outcome.error is None]
    failed = [r for r in run.records if r.outcome is not None and r.outcome.error is not None]
    unfinished = len(trace) - len(done) - len(failed)
    usages = [r.outcome.usage for r in done if r.outcome is not None and r.outcome.usage]
    prompt = sum(u.prompt_tokens for u in usages)
    cached = sum(u.cached_tokens for u in usages)
    ttft = np.array(
        [
            (r.outcome.first_token - r.scheduled) * settings.sim_speedup
            for r in done
            if r.outcome is not None and r.outcome.first_token is not None
        ],
        dtype=float,
    )

    after_send = np.array(
        [
            (r.outcome.first_token - r.sent) * settings.sim_speedup
            for r in done
            if r.outcome is not None and r.outcome.first_token is not None
        ],
        dtype=float,
    )

    def stat(q: float, values: np.ndarray = ttft) -> float:
        return float(np.percentile(values, q)) if values.size else float("nan")

    lags = np.array([r.sent - r.scheduled for r in run.records if r.sent], dtype=float)
    late = int(np.sum(lags > LATE_S))
    lags *= settings.sim_speedup
    cost = sum((cost_of(u) for u in usages), Decimal(0))
    errors = [r.outcome.error for r in failed if r.outcome is not None and r.outcome.error]
    return LiveResult(
        settings=settings,
        sent=len(run.records),
        completed=len(done),
        failed=len(failed),
        unfinished=unfinished,
        late_sends=late,
        send_lag_p50_s=float(np.percentile(lags, 50)) if lags.size else 0.0,
        send_lag_p99_s=float(np.percentile(lags, 99)) if lags.size else 0.0,
        token_hit_rate=cached / prompt if prompt else 0.0,
        infinite_cache_hit_rate=infinite_cache_hit_rate(trace, settings.block_tokens),
        prompt_tokens=prompt,
        cached_tokens=cached,
        ttft_p50_s=stat(50),
        ttft_p99_s=stat(99),
        ttft_mean_s=float(ttft.mean()) if ttft.size else float("nan"),
        ttft_after_send_p50_s=stat(50, after_send),
        ttft_after_send_p99_s=stat(99, after_send),
        cost=cost.quantize(Decimal("0.01")),
        currency=currency,
        wall_s=run.wall_s,
        errors=errors[:MAX_ERRORS_KEPT],
    )


def with_prefill(result: LiveResult, prefill: Sequence[int]) -> LiveResult:
    """`result` with per-replica prefill tokens (e.g. scraped from each replica's /metrics)."""
    mean = sum(prefill) / len(prefill) if prefill else 0.0
    return result.model_copy(
        update={
            "prefill_tokens_per_replica": list(prefill),
            "prefill_max_over_mean": max(prefill) / mean if mean else None,
        }
    )


def render_live_table(results: Sequence[LiveResult]) -> str:
    """A Markdown table: one row per run."""
    lines = [
        "| run | requests done/sent | token hit rate | infinite-cache bound | TTFT p50 | "
        "TTFT p99 | max/mean prefill | cost | send lag p50/p99 |",
        "|" + "---|" * 9,
    ]
    for r in results:
        spread = "" if r.prefill_max_over_mean is None else f"{r.prefill_max_over_mean:.3f}"
        lines.append(
            f"| {r.settings.label} | {r.completed}/{r.sent} | {r.token_hit_rate:.3f} | "
            f"{r.infinite_cache_hit_rate:.3f} | {r.ttft_p50_s:.2f} s | {r.ttft_p99_s:.2f} s | "
            f"{spread} | {r.cost:,.2f} {r.currency} | "
            f"{r.send_lag_p50_s:.2f} / {r.send_lag_p99_s:.2f} s |"
        )
    return "\n".join(lines)
