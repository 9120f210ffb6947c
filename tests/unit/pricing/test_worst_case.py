"""The worst case a budget reserves: never below what the request can cost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cluster.api.validation import validate_chat, validate_completion
from cluster.config import ModelDeployment, ServedModel, load_builtin_catalog
from cluster.pricing import PriceBook
from cluster.pricing.worst_case import worst_case, worst_case_usage

QWEN = "qwen/qwen3-coder-flash"


def qwen() -> ServedModel:
    spec = load_builtin_catalog().find(QWEN)
    assert spec is not None
    return ServedModel(spec=spec, deployment=ModelDeployment(id=QWEN))


# (case, body, prompt bound at least, completion bound)
CASES = [
    ("max-tokens", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}, 2, 10),
    (
        "n-multiplies-completion",
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "n": 3},
        2,
        30,
    ),
    ("no-max-tokens-fills-window", {"messages": [{"role": "user", "content": "x"}]}, 1, None),
]


@pytest.mark.parametrize(
    ("body", "prompt", "completion"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bounds(body: dict[str, object], prompt: int, completion: int | None) -> None:
    model = qwen()
    usage = worst_case_usage(validate_chat({"model": QWEN, **body}), model)
    assert usage.prompt_tokens >= prompt
    window = model.spec.context_window
    expected = completion if completion is not None else window - usage.prompt_tokens
    assert usage.completion_tokens == expected
    assert usage.cached_tokens == 0


def test_completions_count_every_prompt_and_the_quote_is_priced() -> None:
    model = qwen()
    request = validate_completion({"model": QWEN, "prompt": ["a", "b"], "max_tokens": 5})
    assert worst_case_usage(request, model).completion_tokens == 10
    quote = worst_case(PriceBook([model]), request, model)
    assert quote is not None and quote.total > Decimal(0)


def test_prompt_bound_covers_the_characters() -> None:
    text = "word " * 1000
    usage = worst_case_usage(
        validate_chat({"model": QWEN, "messages": [{"role": "user", "content": text}]}), qwen()
    )
    assert usage.prompt_tokens >= len(text)
