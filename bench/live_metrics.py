"""Per-replica prefill work read from each replica's Prometheus `/metrics`.

    prefill(replica) = modelyard_prompt_tokens_total - modelyard_cached_tokens_total

summed over the replica's models: the prompt tokens it had to compute, counted from the
usage it reported (the same definition as the in-process replay: prompt - cached at first
admission). Counters are cumulative since the replica started, so a run takes a snapshot
before and after and reports the difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

PROMPT = "modelyard_prompt_tokens_total"
CACHED = "modelyard_cached_tokens_total"


def prefill_from_text(text: str) -> int:
    """Prompt minus cached tokens in one Prometheus exposition."""
    totals = {PROMPT: 0.0, CACHED: 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return round(totals[PROMPT] - totals[CACHED])


async def scrape_prefill(urls: Sequence[str], *, timeout_s: float = 10.0) -> list[int]:
    """Current prefill counter of each replica (`url` is its base URL)."""
    async with httpx.AsyncClient(timeout=timeout_s) as client:

        async def one(url: str) -> int:
            response = await client.get(url.rstrip("/") + "/metrics")
            response.raise_for_status()
            return prefill_from_text(response.text)

        return list(await asyncio.gather(*(one(u) for u in urls)))
