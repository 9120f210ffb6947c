"""PriceBook against the qwen/qwen3-coder-flash seed prices, both tiers, and the edge rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cluster.config import (
    ModelDeployment,
    PriceTable,
    PriceTier,
    ServedModel,
    load_builtin_catalog,
)
from cluster.engine import Usage
from cluster.errors import ModelNotFound
from cluster.pricing import PriceBook

QWEN = "qwen/qwen3-coder-flash"
MINIMAX = "minimax/minimax-m1"
DEVSTRAL = "mistralai/devstral-small"
MISTRAL_ALIAS = "casperhansen-mistral-small-24b-instruct-2501-awq"
OPERATOR_PRICES = PriceTable(
    tiers=[
        PriceTier(
            max_prompt_tokens=1000, input=Decimal(10), output=Decimal(20), cache_read=Decimal(1)
        ),
        PriceTier(input=Decimal(40), output=Decimal(80), cache_read=Decimal(4)),
    ]
)


def served(model_id: str, prices: PriceTable | None = None) -> ServedModel:
    spec = load_builtin_catalog().find(model_id)
    assert spec is not None
    return ServedModel(spec=spec, deployment=ModelDeployment(id=model_id, prices=prices))


@pytest.fixture
def book() -> PriceBook:
    return PriceBook(
        [
            served(QWEN),
            served(MINIMAX, OPERATOR_PRICES),
            served(DEVSTRAL),
            served("casperhansen/mistral-small-24b-instruct-2501-awq", OPERATOR_PRICES),
        ]
    )


# (case id, model, prompt, cached, completion, tier bound, input, cache_read, output, total)
# Expected amounts worked out by hand from the seed prices (RUB per 1M tokens): prompt <=
# 32,000: input 30, cache read 8, output 151; prompt > 32,000: 50, 12, 252. cache_read None:
# the quote has no cache-read line at all.
CASES = [
    ("qwen-short-no-cache", QWEN, 1000, 0, 500, 32000, "0.03", "0", "0.0755", "0.1055"),
    ("qwen-32000-no-cache", QWEN, 32000, 0, 1000, 32000, "0.96", "0", "0.151", "1.111"),
    ("qwen-boundary-cached", QWEN, 32000, 16000, 1000, 32000, "0.48", "0.128", "0.151", "0.759"),
    ("qwen-32001-no-cache", QWEN, 32001, 0, 1000, None, "1.60005", "0", "0.252", "1.85205"),
    ("qwen-32001-cached", QWEN, 32001, 16000, 1000, None, "0.80005", "0.192", "0.252", "1.24405"),
    ("qwen-long-no-cache", QWEN, 32001, 0, 0, None, "1.60005", "0", "0", "1.60005"),
    ("qwen-long-cached", QWEN, 100000, 64000, 2000, None, "1.8", "0.768", "0.504", "3.072"),
    ("qwen-cached-clamped", QWEN, 100, 500, 0, 32000, "0", "0.0008", "0", "0.0008"),
    # MiniMax has no prefix caching: a claimed cache hit is billed as plain input.
    ("minimax-never-cache-read", MINIMAX, 800, 640, 100, 1000, "0.008", None, "0.002", "0.01"),
    (
        "operator-table-alias",
        MISTRAL_ALIAS,
        2000,
        1000,
        10,
        None,
        "0.04",
        "0.004",
        "0.0008",
        "0.0448",
    ),
]


@pytest.mark.parametrize(
    ("model", "prompt", "cached", "completion", "bound", "inp", "cache", "out", "total"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_cost(
    book: PriceBook,
    model: str,
    prompt: int,
    cached: int,
    completion: int,
    bound: int | None,
    inp: str,
    cache: str | None,
    out: str,
    total: str,
) -> None:
    quote = book.cost(
        model, Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)
    )
    assert quote is not None
    assert quote.tier_max_prompt_tokens == bound
    amounts = {item.kind: item.amount for item in quote.items}
    if cache is None:
        assert [item.kind for item in quote.items] == ["input", "output"]
    else:
        assert [item.kind for item in quote.items] == ["input", "cache_read", "output"]
        assert amounts["cache_read"] == Decimal(cache)
    assert (amounts["input"], amounts["output"]) == (Decimal(inp), Decimal(out))
    assert quote.total == Decimal(total)
    # to the kopeck, as a client rounding the total would see it
    assert quote.total.quantize(Decimal("0.01")) == Decimal(total).quantize(Decimal("0.01"))
    assert all(isinstance(item.amount, Decimal) for item in quote.items)
    assert sum(item.tokens for item in quote.items if item.kind != "output") == prompt
    if model == QWEN:
        assert quote.tier == ("prompt_tokens<=32000" if bound else "prompt_tokens>32000")


def test_qwen_seed_unit_prices(book: PriceBook) -> None:
    short = book.cost(QWEN, Usage(prompt_tokens=1, completion_tokens=1))
    long = book.cost(QWEN, Usage(prompt_tokens=40_000, completion_tokens=1))
    assert short is not None and long is not None
    assert short.currency == "RUB"
    assert [i.unit_price for i in short.items] == [Decimal(30), Decimal(8), Decimal(151)]
    assert [i.unit_price for i in long.items] == [Decimal(50), Decimal(12), Decimal(252)]


def test_no_price_table_gives_no_quote(book: PriceBook) -> None:
    assert book.table(DEVSTRAL) is None
    assert book.cost(DEVSTRAL, Usage(prompt_tokens=10, completion_tokens=10)) is None


def test_deployment_prices_override_catalog() -> None:
    book = PriceBook([served(QWEN, OPERATOR_PRICES)])
    quote = book.cost(QWEN, Usage(prompt_tokens=1000, completion_tokens=0))
    assert quote is not None
    assert quote.items[0].unit_price == Decimal(10)


def test_unknown_model(book: PriceBook) -> None:
    with pytest.raises(ModelNotFound):
        book.cost("nope/nope", Usage(prompt_tokens=1, completion_tokens=1))
