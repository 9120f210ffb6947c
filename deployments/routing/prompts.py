"""An `EngineRequest` as routing sees it: prompt length and chained block hashes.

The router runs in the caller's process (a gateway replica), before any engine has seen
the request, so it tokenises the prompt itself. How exact that is depends on the engine:

- `sim` (`SimPromptHasher`, exact): the simulator's own tokenizer and chat template
  (`deployments.engines.sim`: `prompt_text`, `SimTokenizer`), full blocks of the engine's
  `block_size`, chained with `cluster.routing.hashing`. The extra key is the LoRA
  adapter's name, the same key the prefix index uses when it re-hashes a `stored` KV event
  from its token ids (`cluster.routing.events`), so a request's hashes equal the hashes
  its prefix was indexed under: matches are exact.
- `vllm` (`deployments.routing.vllm_tokens.VLLMPromptHasher`, exact): the prompt token
  ids vLLM's serving layer produces, rendered router-side with vLLM's own chat-template
  and tokenizer functions on the model's own tokenizer (`deployments.routing.vllm_render`),
  full blocks of the engine's block size, the same extra keys. Routers subscribe to these
  replicas' KV events, so vLLM replicas are indexed exactly too. Until the tokenizer has
  loaded (a background thread, seconds), where it cannot load, and for a request it
  cannot render, the hasher falls back to `proxy`.
- `proxy` (`ProxyPromptHasher`, provisional only): the simulator's tokenisation of the
  same text, a stand-in where the engine's tokenizer is not available (and the kind of
  vLLM models without prefix caching, whose hashes are never used). Two requests that
  share a message prefix share these hashes, so affinity works through the provisional
  entries each routing decision inserts (they expire after
  `routing.index.provisional_ttl_s`), but no KV event can confirm them: their hashes
  live in another token space.

A request with a `cache_salt` adds `salt:<salt>` to the extra keys. A chain's first
`stored` event carries the salt (vLLM: among the first block's `extra_keys`; the
simulator does the same), and the index re-hashes the whole chain with it
(`cluster.routing.events`), so a salted request matches exactly the blocks of its own
salt and never another salt's or an unsalted cache, which is what the engine does too.

Models without prefix caching (MiniMax-M1) get no hashes (`prefix_caching=False`): they
are placed by load alone; their prompt length still counts as queued work.

Cost (sim, proxy): one regex pass and one memoised hash per token piece, then one blake2b
per block (about 0.5 us per token here), paid only for the part of a prompt after its
longest previously seen run of messages (`deployments.routing.tokens`). vllm: see
`deployments.routing.vllm_tokens`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from cluster.engine import EngineRequest
from cluster.routing import RouteRequest
from deployments.routing.tokens import PromptBlocks

if TYPE_CHECKING:
    from deployments.routing.vllm_tokens import RendererLoader

HashingKind = Literal["sim", "proxy", "vllm"]


class PromptHasher(Protocol):
    """Turns one engine request into what routing needs."""

    @property
    def exact(self) -> bool:
        """Whether the hashes equal those the engine's KV events are indexed under."""
        ...

    def route_request(self, request: EngineRequest) -> RouteRequest: ...

    def cached(self, request: EngineRequest) -> RouteRequest | None:
        """`route_request(request)` where that is cheap enough for the router's event loop
        (a lookup, or pure-Python work of a few ms at most); None where it would tokenise
        with the model's tokenizer (`deployments.routing.offload` runs that off the loop)."""
        ...


def extra_keys(request: EngineRequest) -> list[str]:
    """The adapter name (as the index re-hashes KV events), then `salt:<cache_salt>`."""
    keys = [request.adapter] if request.adapter else []
    if request.cache_salt:
        keys.append(f"salt:{request.cache_salt}")
    return keys


class _TokenisingHasher:
    """Tokenise as the simulator does; hash full blocks of `block_tokens` (prefix-cached,
    `deployments.routing.tokens`)."""

    exact = False

    def __init__(self, *, block_tokens: int, prefix_caching: bool) -> None:
        self.block_tokens = block_tokens
        self.prefix_caching = prefix_caching
        self._blocks = PromptBlocks(block_tokens)

    def cached(self, request: EngineRequest) -> RouteRequest | None:
        """Always answered here: the simulator's tokeniser is pure Python (it would hold
        the GIL on a thread too), run-cached, about 0.5 us per new token."""
        return self.route_request(request)

    def route_request(self, request: EngineRequest) -> RouteRequest:
        if not self.prefix_caching:
            return RouteRequest(
                request_id=request.request_id,
                block_hashes=(),
                prompt_tokens=self._blocks.count(request),
                prefix_caching=False,
            )
        tokens, hashes = self._blocks.blocks(request, extra_keys(request))
        return RouteRequest(
            request_id=request.request_id, block_hashes=hashes, prompt_tokens=tokens
        )


class SimPromptHasher(_TokenisingHasher):
    """Exact: the simulator tokenises and hashes exactly this way."""

    exact = True


class ProxyPromptHasher(_TokenisingHasher):
    """Provisional only: a stand-in tokenisation for engines whose tokenizer is elsewhere."""

    exact = False


def build_hasher(
    kind: HashingKind,
    *,
    block_tokens: int,
    prefix_caching: bool,
    loader: RendererLoader | None = None,
) -> PromptHasher:
    """The hasher of `kind`; `vllm` needs the `loader` of the model's renderer (shared by
    the hashers a router builds, e.g. when it learns the engine's block size)."""
    if kind == "sim":
        return SimPromptHasher(block_tokens=block_tokens, prefix_caching=prefix_caching)
    if kind == "vllm":
        if loader is None:
            raise ValueError("hashing 'vllm' needs the model's renderer loader")
        from deployments.routing.vllm_tokens import VLLMPromptHasher

        return VLLMPromptHasher(loader, block_tokens=block_tokens, prefix_caching=prefix_caching)
    return ProxyPromptHasher(block_tokens=block_tokens, prefix_caching=prefix_caching)
