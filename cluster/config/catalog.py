"""Model facts: what a model is, how it must be parallelised, how it is parsed and priced.

The built-in catalog (`catalog.yaml` beside this file) holds the four models of DESIGN.md.
Operators may add more under `catalog:` in the cluster file; entries are validated by the
same models.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cluster.config.vllm_args import VLLMModelArgs

#: Tool-call formats modelyard parses from the model's text itself (`cluster.parsing`)
#: because vLLM has no parser for them; vLLM is given no tool parser for these models.
CORE_TOOL_PARSERS = frozenset({"minimax_m1"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parallelism(_Strict):
    """How one replica is sharded. GPUs per replica = tensor x pipeline.

    Tensor-parallel groups never cross a node; pipeline stages may (see
    `cluster.placement`). `expert` turns on expert parallelism for MoE layers
    (experts are spread over the tensor x pipeline ranks instead of sliced).
    """

    tensor: int = Field(default=1, ge=1)
    pipeline: int = Field(default=1, ge=1)
    expert: bool = False

    @property
    def gpus(self) -> int:
        return self.tensor * self.pipeline


class PriceTier(_Strict):
    """Prices in currency units per 1M tokens for prompts up to `max_prompt_tokens`."""

    max_prompt_tokens: int | None = Field(
        default=None, ge=1, description="inclusive upper bound; null = no bound (last tier)"
    )
    # At most 3 decimal places: a request's cost then has at most 9, which the ledger
    # stores exactly (integer nano-units).
    input: Decimal = Field(ge=0, decimal_places=3)
    output: Decimal = Field(ge=0, decimal_places=3)
    cache_read: Decimal = Field(ge=0, decimal_places=3)


class PriceTable(_Strict):
    currency: str = "RUB"
    tiers: list[PriceTier] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered_tiers(self) -> PriceTable:
        bounds = [t.max_prompt_tokens for t in self.tiers]
        if bounds[-1] is not None:
            raise ValueError("the last tier must have no max_prompt_tokens (it covers the rest)")
        finite = [b for b in bounds[:-1] if b is not None]
        if len(finite) != len(bounds) - 1 or finite != sorted(set(finite)):
            raise ValueError("tiers must be ordered by strictly increasing max_prompt_tokens")
        return self

    def tier_for(self, prompt_tokens: int) -> PriceTier:
        for tier in self.tiers:
            if tier.max_prompt_tokens is None or prompt_tokens <= tier.max_prompt_tokens:
                return tier
        return self.tiers[-1]


class LoraSettings(_Strict):
    max_loras: int = Field(default=4, ge=1)
    max_lora_rank: int = Field(default=16, ge=1)


class ModelSpec(_Strict):
    """Facts about one servable model."""

    id: str = Field(min_length=1, description="public id, as clients send it")
    aliases: list[str] = Field(default_factory=list)
    display_name: str
    weights: str = Field(description="open-weight source (Hugging Face repo id or local path)")
    params_b: float = Field(gt=0, description="total parameters, billions")
    active_params_b: float = Field(gt=0, description="parameters used per token, billions")
    weight_bits: Literal[4, 8, 16] = 16
    num_layers: int = Field(ge=1)
    kv_bytes_per_token: int = Field(
        ge=0, description="KV cache bytes per token, summed over all layers (bf16)"
    )
    context_window: int = Field(ge=1)
    parallelism: Parallelism = Field(default_factory=Parallelism)
    tool_parser: str | None = Field(
        default=None,
        description="vLLM's tool parser for this model, or one of CORE_TOOL_PARSERS "
        "(parsed by modelyard's core)",
    )
    reasoning_parser: Literal["think_tags"] | None = None
    prefix_caching: bool = True
    quantization: Literal["awq_marlin", "gptq_marlin", "fp8"] | None = None
    lora: LoraSettings | None = None
    prices: PriceTable | None = None
    vllm: VLLMModelArgs = Field(
        default_factory=VLLMModelArgs, description="checkpoint facts vLLM must be told"
    )
    notes: str = ""

    @model_validator(mode="after")
    def _active_le_total(self) -> ModelSpec:
        if self.active_params_b > self.params_b:
            raise ValueError("active_params_b cannot exceed params_b")
        return self

    @property
    def names(self) -> list[str]:
        return [self.id, *self.aliases]

    @property
    def core_tool_parser(self) -> str | None:
        """The tool-call format the core parses from this model's text, if any."""
        return self.tool_parser if self.tool_parser in CORE_TOOL_PARSERS else None

    @property
    def vllm_tool_parser(self) -> str | None:
        """The tool parser vLLM itself applies (none for a format the core parses)."""
        return None if self.core_tool_parser else self.tool_parser


class Catalog(_Strict):
    models: list[ModelSpec]

    @model_validator(mode="after")
    def _unique_names(self) -> Catalog:
        seen: set[str] = set()
        for spec in self.models:
            for name in spec.names:
                if name in seen:
                    raise ValueError(f"model name {name!r} is defined twice")
                seen.add(name)
        return self

    def find(self, name: str) -> ModelSpec | None:
        for spec in self.models:
            if name in spec.names:
                return spec
        return None

    def merged(self, extra: list[ModelSpec]) -> Catalog:
        return Catalog(models=[*self.models, *extra])


def load_builtin_catalog() -> Catalog:
    text = resources.files("cluster.config").joinpath("catalog.yaml").read_text("utf-8")
    return Catalog.model_validate(yaml.safe_load(text))
