"""`usage.cost` and `usage.cost_details` in every response: whole, streamed, unpriced, MiniMax."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cluster.api.validation import validate_chat, validate_completion
from tests.unit.gateway.service.scripted import DEVSTRAL, MINIMAX, QWEN, build_rig, text_chunks


def chat(model: str = QWEN, **fields: Any):  # type: ignore[no-untyped-def]
    return validate_chat(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def qwen_cost(prompt: int, cached: int, completion: int) -> Decimal:
    """The DESIGN.md formula at the seed prices of the tier `prompt` selects."""
    inp, cache, out = (30, 8, 151) if prompt <= 32000 else (50, 12, 252)
    return (Decimal(prompt - cached) * inp + Decimal(cached) * cache + completion * out) / 10**6


async def test_whole_response_carries_exact_cost_in_both_tiers() -> None:
    for prompt, cached in ((32000, 0), (32000, 4096), (32001, 0), (32001, 4096)):
        rig = build_rig(lambda _r, p=prompt, c=cached: text_chunks("a", "b", prompt=p, cached=c))
        response = await rig.service.chat(chat())
        usage = response.usage
        assert usage.cost == qwen_cost(prompt, cached, 2)
        assert usage.cost_details is not None
        assert usage.cost_details.currency == "RUB"
        long = prompt > 32000
        assert usage.cost_details.tier == (
            "prompt_tokens>32000" if long else "prompt_tokens<=32000"
        )
        assert sum(line.amount for line in usage.cost_details.items) == usage.cost
        # JSON: a number, written from the exact decimal
        body = response.model_dump(mode="json")
        assert Decimal(repr(body["usage"]["cost"])) == usage.cost


async def test_stream_final_usage_chunk_carries_cost_and_no_other_chunk_does() -> None:
    rig = build_rig(lambda _r: text_chunks("a", "b", "c", prompt=100, cached=32))
    request = chat(stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in rig.service.stream_chat(request)]
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.usage is not None and not last.choices
    assert last.usage.cost == qwen_cost(100, 32, 3)


async def test_completions_carry_cost() -> None:
    rig = build_rig(lambda _r: text_chunks("a", prompt=5))
    response = await rig.service.complete(validate_completion({"model": QWEN, "prompt": "x"}))
    assert response.usage.cost == qwen_cost(5, 0, 1)


async def test_model_without_prices_says_so_and_has_no_cost() -> None:
    rig = build_rig(lambda _r: text_chunks("a", prompt=5))
    response = await rig.service.chat(chat(DEVSTRAL))
    body = response.model_dump(mode="json")["usage"]
    assert "cost" not in body
    assert body["cost_details"] == {
        "items": [],
        "reason": "no price table is configured for this model",
    }


async def test_minimax_never_gets_a_cache_read_line() -> None:
    from cluster.config import (
        ModelDeployment,
        PriceTable,
        PriceTier,
        ServedModel,
        TelemetrySettings,
        load_builtin_catalog,
    )
    from cluster.gateway.service import EngineBackend, GatewayService
    from cluster.gateway.telemetry import (
        GatewayMetrics,
        RequestObserver,
        build_tracer_provider,
        tracer_from,
    )
    from tests.unit.gateway.service.scripted import ScriptedEngine

    spec = load_builtin_catalog().find(MINIMAX)
    assert spec is not None
    prices = PriceTable(
        tiers=[PriceTier(input=Decimal(10), output=Decimal(20), cache_read=Decimal(1))]
    )
    model = ServedModel(spec=spec, deployment=ModelDeployment(id=MINIMAX, prices=prices))
    engine = ScriptedEngine(lambda _r: text_chunks("a", prompt=1000, cached=512))
    service = GatewayService(
        [model],
        EngineBackend({MINIMAX: engine}),
        RequestObserver(GatewayMetrics(), tracer_from(build_tracer_provider(TelemetrySettings()))),
    )
    response = await service.chat(chat(MINIMAX))
    details = response.usage.cost_details
    assert details is not None
    assert [line.kind for line in details.items] == ["input", "output"]
    assert response.usage.cost == (Decimal(1000) * 10 + 20) / 10**6
