"""`VLLMPromptHasher`: exact block hashes for models served by vLLM.

A request's hashes are `cluster.routing.hashing.block_hashes(ids, block_tokens, keys)`
where `ids` are the prompt token ids vLLM's serving layer produces for it (rendered
router-side by `deployments.routing.vllm_render`), `block_tokens` is the engine's KV
block size, and `keys` are `prompts.extra_keys(request)`: the adapter name, which is the
LoRA name vLLM's `BlockStored` events carry and the prefix index re-hashes them with
(`cluster.routing.events`), then `salt:<cache_salt>` (events carry no salt, so salted
prompts match only provisionally, as with the simulator). So a prompt's hashes are the
hashes its blocks were indexed under from the replica's KV events: matches are exact.

Loading (`RendererLoader`) imports vLLM and reads the tokenizer: seconds. It runs on a
daemon thread started with the router; until it is done, and for good if it fails (no
tokenizer where the router runs, a renderer mode we do not reproduce), requests are
hashed by the proxy tokenisation (`prompts.ProxyPromptHasher`: provisional only). A
request the renderer cannot handle (multimodal content, a template error) falls back
the same way, alone; routing never fails a request.

Cost (docs/ARCHITECTURE.md has the numbers, `python -m bench.vllm_bench`
measures them): rendering the chat template, tokenising, one blake2b per full block.
- A repeated prompt costs a lookup: results are kept in an LRU keyed by a 128-bit
  digest of everything that shapes the prompt (the request minus its id, sampling and
  max_tokens), bounded by `max_entries` prompts and `max_hashes` stored hashes.
- A new prompt of a conversation whose earlier turns were seen re-renders the template
  (a template may render earlier messages differently once more follow) but tokenises
  only the text after its longest known leading run of pieces, where the tokenizer
  allows cuts (`vllm_segments`); elsewhere it is tokenised whole. Tokenising dominates.

The router answers `cached` (no tokenising) on its event loop and runs `route_request`
for the rest on a worker thread (`deployments.routing.offload`): the LRU is shared
under a lock, the run cache is used by one tokenising caller at a time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from array import array
from collections import OrderedDict
from collections.abc import Mapping

from cluster.config.settings import ServedModel
from cluster.engine import EngineRequest
from cluster.routing import RouteRequest
from cluster.routing.hashing import block_hashes
from deployments.routing.prompts import ProxyPromptHasher, extra_keys
from deployments.routing.vllm_render import VLLMPromptRenderer
from deployments.routing.vllm_segments import SegmentBlocks

log = logging.getLogger(__name__)

#: Fields of an `EngineRequest` that do not change its prompt's token ids.
_NOT_PROMPT = {"request_id", "sampling", "max_tokens"}


def _key(request: EngineRequest) -> bytes:
    """128-bit digest of everything that shapes the request's prompt token ids."""
    text = request.model_dump_json(exclude=_NOT_PROMPT)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class RendererLoader:
    """Builds one `VLLMPromptRenderer` on a daemon thread; `renderer` is None until then."""

    def __init__(
        self,
        model: ServedModel,
        *,
        environ: Mapping[str, str] | None = None,
        background: bool = True,
    ) -> None:
        self.model_id = model.id
        self.renderer: VLLMPromptRenderer | None = None
        self.error: str | None = None
        self._done = threading.Event()
        if background:
            threading.Thread(
                target=self._load, args=(model, environ), name=f"tokenizer-{model.id}", daemon=True
            ).start()
        else:
            self._load(model, environ)

    def _load(self, model: ServedModel, environ: Mapping[str, str] | None) -> None:
        try:
            self.renderer = VLLMPromptRenderer.for_model(model, environ=environ)
        except Exception as err:
            first_line = (str(err).strip().splitlines() or [""])[0][:300]
            self.error = f"{type(err).__name__}: {first_line}"
            log.warning(
                "routing for %s hashes prompts provisionally: its tokenizer did not load here (%s)",
                model.id,
                self.error,
            )
        finally:
            self._done.set()

    @property
    def state(self) -> str:
        if not self._done.is_set():
            return "loading"
        return "ready" if self.renderer is not None else "failed"

    def wait(self, timeout: float) -> bool:
        """Block until loading ended (tests, tools); True if the renderer is ready."""
        self._done.wait(timeout)
        return self.renderer is not None


class VLLMPromptHasher:
    """Exact once the renderer is loaded; proxy hashes before that or when rendering fails."""

    def __init__(
        self,
        loader: RendererLoader,
        *,
        block_tokens: int,
        prefix_caching: bool,
        max_entries: int = 4096,
        max_hashes: int = 1_000_000,
    ) -> None:
        if block_tokens < 1:
            raise ValueError("block_tokens must be at least 1")
        self.loader = loader
        self.block_tokens = block_tokens
        self.prefix_caching = prefix_caching
        self.max_entries = max_entries
        self.max_hashes = max_hashes
        self.proxy = ProxyPromptHasher(block_tokens=block_tokens, prefix_caching=prefix_caching)
        self._cache: OrderedDict[bytes, tuple[int, array[int]]] = OrderedDict()
        self._segments: SegmentBlocks | None = None
        self._stored_hashes = 0
        self.hits = 0
        self.fallbacks = 0
        self._lock = threading.Lock()  # the LRU: the loop's lookups, a worker's stores
        self._work = threading.Lock()  # the run caches: one tokenising caller at a time

    @property
    def exact(self) -> bool:
        return self.loader.renderer is not None

    @property
    def reused_runs(self) -> int:
        """Prompts that resumed from a cached leading run of pieces (`vllm_segments`)."""
        return self._segments.hits if self._segments is not None else 0

    def cached(self, request: EngineRequest) -> RouteRequest | None:
        """The route without tokenising: proxy hashes until the renderer loads, a
        repeated prompt from the LRU; None for a prompt that needs the tokenizer."""
        if self.loader.renderer is None:
            return self.proxy.route_request(request)
        key = _key(request)
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                return None
            self._cache.move_to_end(key)
            self.hits += 1
        return self._route(request, found)

    def route_request(self, request: EngineRequest) -> RouteRequest:
        """Safe from several threads (the loop's `cached` and a worker's call of this)."""
        renderer = self.loader.renderer
        if renderer is None:
            return self.proxy.route_request(request)
        key = _key(request)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                self.hits += 1
        if found is None:
            with self._work:  # also keeps the proxy's run cache to one caller
                try:
                    tokens, hashes = self._blocks(renderer, request)
                except Exception:  # the replica judges the request; hash it provisionally
                    self.fallbacks += 1
                    return self.proxy.route_request(request)
            found = (tokens, array("Q", hashes))
            with self._lock:
                self._store(key, found)
        return self._route(request, found)

    def _route(self, request: EngineRequest, found: tuple[int, array[int]]) -> RouteRequest:
        tokens, hashes_array = found
        return RouteRequest(
            request_id=request.request_id,
            block_hashes=list(hashes_array),
            prompt_tokens=tokens,
            prefix_caching=self.prefix_caching,
        )

    def _blocks(
        self, renderer: VLLMPromptRenderer, request: EngineRequest
    ) -> tuple[int, list[int]]:
        """(prompt tokens, full blocks' hashes): by cached leading pieces where the
        tokenizer allows cuts (`vllm_segments`), else the whole prompt."""
        keys = extra_keys(request)
        if renderer.cuts is not None and request.messages is not None:
            text = renderer.chat_text(request)
            if text is not None:
                if self._segments is None:
                    self._segments = SegmentBlocks(
                        self.block_tokens,
                        renderer.encode,
                        max_entries=self.max_entries,
                        max_hashes=self.max_hashes,
                    )
                tokens, hashes = self._segments.blocks(renderer.cuts.split(text), keys)
                return tokens, hashes if self.prefix_caching else []
        ids = renderer.prompt_ids(request)
        hashes = block_hashes(ids, self.block_tokens, keys) if self.prefix_caching else []
        return len(ids), hashes

    def _store(self, key: bytes, entry: tuple[int, array[int]]) -> None:
        size = len(entry[1])
        if size > self.max_hashes:
            return
        self._cache[key] = entry
        self._stored_hashes += size
        while len(self._cache) > self.max_entries or self._stored_hashes > self.max_hashes:
            _, dropped = self._cache.popitem(last=False)
            self._stored_hashes -= len(dropped[1])

    def __len__(self) -> int:
        return len(self._cache)
