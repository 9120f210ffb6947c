"""How much one API request may ask for: choices, prompts, and the engine requests they make.

    choices      = n                       ≤ gateway.max_choices        else 400 param `n`
    prompts      = len(prompt)             ≤ gateway.max_prompts        else 400 param `prompt`
    generations  = prompts x n (chat: n)   ≤ gateway.max_generations    else 400 param `n`

Each engine request holds a batch slot and KV blocks on a replica, so the product is
bounded too. Defaults (cluster/config/settings.py): 16 choices, 32 prompts, 128 generations.
Checked by the core before any engine request is made, so both front doors refuse alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.config.settings import GatewaySettings
from cluster.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_choices: int = 16
    max_prompts: int = 32
    max_generations: int = 128

    @classmethod
    def of(cls, gateway: GatewaySettings) -> RequestLimits:
        return cls(gateway.max_choices, gateway.max_prompts, gateway.max_generations)

    def check(self, request: ChatCompletionRequest | CompletionRequest) -> None:
        if request.n > self.max_choices:
            raise InvalidRequest(
                f"Invalid value for 'n': at most {self.max_choices} choices per request "
                f"(got {request.n}).",
                param="n",
            )
        prompts = len(request.prompt) if isinstance(request, CompletionRequest) else 1
        if prompts > self.max_prompts:
            raise InvalidRequest(
                f"Invalid value for 'prompt': at most {self.max_prompts} prompts per request "
                f"(got {prompts}).",
                param="prompt",
            )
        if prompts * request.n > self.max_generations:
            raise InvalidRequest(
                f"Invalid value for 'n': {prompts} prompts x n={request.n} makes "
                f"{prompts * request.n} generations; at most {self.max_generations} per "
                "request.",
                param="n",
            )
