"""Exact prefix affinity for vLLM: the router's hashes of a request equal the hashes the
prefix index builds from the engine's own `stored` KV events after it served that request.

Real vLLM (CPU) on the tiny model: the session's engine (`conftest.tiny_engine`, ChatML
that ignores tools) serves the requests. A second renderer, of the same model under a
chat template that renders tools and refuses two messages of one role in a row, checks
that tools reach the prompt and that a request the renderer cannot render falls back to
provisional hashes (`test_vllm_exact_routing_live.py` serves that template for real,
through Ray Serve and the gateway's router). Assertions are on counts and hashes, never
on generated text.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.api.messages import AssistantMessage, SystemMessage, Tool, UserMessage
from cluster.config.settings import RoutingConfig, ServedModel
from cluster.engine import EngineChunk, EngineRequest
from cluster.routing import Router, RoutingSettings
from cluster.routing.hashing import block_hashes
from deployments.engines.vllm import VLLMEngine
from deployments.routing.prompts import ProxyPromptHasher, build_hasher, extra_keys
from deployments.routing.vllm_tokens import RendererLoader, VLLMPromptHasher
from tests.contract.engine_contract import shared_prefix
from tests.vllm.conftest import ADAPTER, MODEL_ID, TinyArtifacts, tiny_served

pytestmark = [pytest.mark.vllm, pytest.mark.asyncio(loop_scope="session")]

TIMEOUT_S = 60.0
TEMPLATE = (
    "{% for message in messages %}{% if loop.index0 > 0 and message['role'] == "
    "messages[loop.index0 - 1]['role'] %}{{ raise_exception('roles must alternate') }}"
    "{% endif %}{% endfor %}"
    "{% if tools %}<|im_start|>system\n<tools>{% for tool in tools %}{{ tool | tojson }}"
    "{% endfor %}</tools><|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] or '' }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WEATHER = Tool.model_validate(
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city, with the unit of temperature",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
)


@pytest.fixture(scope="module")
def exact_model(
    tiny_artifacts: TinyArtifacts, tmp_path_factory: pytest.TempPathFactory
) -> ServedModel:
    path: Path = tmp_path_factory.mktemp("template") / "chat_template.jinja"
    path.write_text(TEMPLATE, "utf-8")
    base = tiny_served(tiny_artifacts)
    vllm = base.spec.vllm.model_copy(update={"chat_template": str(path)})
    return ServedModel(spec=base.spec.model_copy(update={"vllm": vllm}), deployment=base.deployment)


@pytest.fixture
def engine(tiny_engine: VLLMEngine) -> VLLMEngine:
    return tiny_engine


@pytest.fixture(scope="module")
def loader(tiny_model: ServedModel) -> RendererLoader:
    """The served model's renderer, loaded the way a router loads it."""
    loaded = RendererLoader(tiny_model, background=False)
    assert loaded.renderer is not None, loaded.error
    return loaded


@pytest.fixture(scope="module")
def template_loader(exact_model: ServedModel) -> RendererLoader:
    loaded = RendererLoader(exact_model, background=False)
    assert loaded.renderer is not None, loaded.error
    return loaded


@pytest.fixture
def block(engine: VLLMEngine) -> int:
    return engine.stats().block_size


@pytest.fixture
def hasher(loader: RendererLoader, block: int) -> VLLMPromptHasher:
    return VLLMPromptHasher(loader, block_tokens=block, prefix_caching=True)


def chat(*messages: Any, **fields: Any) -> EngineRequest:
    return EngineRequest(
        request_id="x-" + uuid.uuid4().hex,
        model=MODEL_ID,
        messages=list(messages),
        max_tokens=2,
        **fields,
    )


def system(text: str) -> SystemMessage:
    return SystemMessage(role="system", content=text)


def user(text: str) -> UserMessage:
    return UserMessage(role="user", content=text)


class Indexed:
    """A placement router fed by the engine's KV events while requests are served."""

    def __init__(self, engine: VLLMEngine, hasher: VLLMPromptHasher) -> None:
        self.engine = engine
        self.hasher = hasher
        block = hasher.block_tokens
        self.router = Router(RoutingSettings.model_validate({"index": {"block_tokens": block}}))

    async def serve(self, *requests: EngineRequest) -> list[list[EngineChunk]]:
        """Serve `requests` in turn; return once their blocks are indexed (events arrive
        after the streams end) or after a bounded wait."""
        events = self.engine.kv_events()
        indexed = asyncio.Event()
        served: list[EngineRequest] = []

        def check() -> None:
            if served and all(self.exact(r) > 0 for r in served):
                indexed.set()

        async def pump() -> None:
            async for batch in events:
                self.router.on_kv_events(batch, time.monotonic())
                check()

        task = asyncio.create_task(pump())
        try:
            out = []
            for request in requests:
                async with asyncio.timeout(TIMEOUT_S):
                    out.append([c async for c in self.engine.generate(request)])
            served.extend(requests)
            check()
            async with asyncio.timeout(10.0):
                await indexed.wait()
            return out
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await events.aclose()  # type: ignore[attr-defined]

    def exact(self, request: EngineRequest) -> int:
        hashes = self.hasher.route_request(request).block_hashes
        found = self.router.index.match(hashes, time.monotonic()).get(self.engine.replica_id)
        return found.exact_blocks if found is not None else 0


@pytest.fixture
def indexed(engine: VLLMEngine, hasher: VLLMPromptHasher) -> Indexed:
    return Indexed(engine, hasher)


def completion(text: str) -> EngineRequest:
    return EngineRequest(
        request_id="x-" + uuid.uuid4().hex, model=MODEL_ID, prompt=text, max_tokens=2
    )


CASES: dict[str, Callable[[], EngineRequest]] = {
    "chat": lambda: chat(system(shared_prefix(400)), user("Say something.")),
    "chat-tools": lambda: chat(
        system(shared_prefix(300)), user("Weather in Paris?"), tools=[WEATHER], tool_choice="auto"
    ),
    "completion": lambda: completion(shared_prefix(400)),
    "adapter": lambda: chat(system(shared_prefix(400)), user("Hello."), adapter=ADAPTER),
    "salted": lambda: chat(system(shared_prefix(400)), user("Hello."), cache_salt="tenant-1"),
    "conversation": lambda: chat(
        system(shared_prefix(200)),
        user("first question about the city"),
        AssistantMessage(role="assistant", content="first answer " + shared_prefix(150)),
        user("second question"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_hashes_equal_the_index_built_from_the_engines_events(
    case: str, indexed: Indexed, hasher: VLLMPromptHasher, block: int
) -> None:
    request = CASES[case]()
    route = hasher.route_request(request)
    assert hasher.exact and hasher.fallbacks == 0
    [chunks] = await indexed.serve(request)
    usage = chunks[-1].usage
    assert usage is not None
    # The router counts the prompt vLLM tokenised: every full block of it is hashed ...
    assert route.prompt_tokens == usage.prompt_tokens
    assert len(route.block_hashes) == usage.prompt_tokens // block >= 2
    assert route.block_hashes == block_hashes(
        hasher.loader.renderer.prompt_ids(request),  # type: ignore[union-attr]
        block,
        extra_keys(request),
    )
    # ... and every one is held exactly by the replica that served it.
    assert indexed.exact(request) == len(route.block_hashes)


async def test_a_salted_prefix_is_no_exact_hit_for_others(
    indexed: Indexed, hasher: VLLMPromptHasher
) -> None:
    prefix = shared_prefix(380)
    await indexed.serve(chat(system(prefix), user("Hi."), cache_salt="tenant-a"))
    for fields in ({}, {"cache_salt": "tenant-b"}):
        other = chat(system(prefix), user("Hi."), **fields)
        assert len(hasher.route_request(other).block_hashes) >= 2
        assert indexed.exact(other) == 0
        # ... and vLLM agrees: it reuses nothing of the other salt's prefix.
        async with asyncio.timeout(TIMEOUT_S):
            chunks = [c async for c in indexed.engine.generate(other)]
        usage = chunks[-1].usage
        assert usage is not None and usage.cached_tokens == 0


async def test_tools_are_part_of_the_prompt(template_loader: RendererLoader) -> None:
    hasher = VLLMPromptHasher(template_loader, block_tokens=16, prefix_caching=True)
    request = CASES["chat-tools"]()
    without = request.model_copy(update={"tools": None, "tool_choice": None})
    with_tools, plain = hasher.route_request(request), hasher.route_request(without)
    assert with_tools.prompt_tokens > plain.prompt_tokens + 20
    assert not set(with_tools.block_hashes) & set(plain.block_hashes)


async def test_a_conversations_next_turn_reuses_its_earlier_pieces(
    hasher: VLLMPromptHasher, indexed: Indexed
) -> None:
    first = CASES["conversation"]()
    assert hasher.loader.renderer is not None and hasher.loader.renderer.cuts is not None
    await indexed.serve(first)
    assert first.messages is not None
    answer = AssistantMessage(role="assistant", content="second answer")
    second = first.model_copy(
        update={
            "request_id": "x-" + uuid.uuid4().hex,
            "messages": [*first.messages, answer, user("third question")],
        }
    )
    reused = hasher.reused_runs
    route = hasher.route_request(second)
    assert hasher.reused_runs == reused + 1  # resumed after the first turn's pieces
    ids = hasher.loader.renderer.prompt_ids(second)
    assert route.prompt_tokens == len(ids)
    assert route.block_hashes == block_hashes(ids, hasher.block_tokens)
    # The blocks the first turn left in the engine's cache match the second turn exactly.
    shared = indexed.exact(second)
    assert shared == indexed.exact(first) == len(hasher.route_request(first).block_hashes)


async def test_another_system_prompt_shares_no_exact_block(indexed: Indexed) -> None:
    question = user("What is the weather?")
    served = chat(system(shared_prefix(400)), question)
    other = chat(system(shared_prefix(400)), question)
    await indexed.serve(served)
    assert indexed.exact(served) >= 2
    assert indexed.exact(other) == 0
    assert not set(indexed.hasher.route_request(served).block_hashes) & set(
        indexed.hasher.route_request(other).block_hashes
    )


async def test_a_request_the_renderer_refuses_gets_provisional_hashes(
    template_loader: RendererLoader, block: int
) -> None:
    hasher = VLLMPromptHasher(template_loader, block_tokens=block, prefix_caching=True)
    # Two user messages in a row: this template raises; routing must not.
    refused = chat(system(shared_prefix(300)), user("one"), user("two"))
    route = hasher.route_request(refused)
    assert hasher.fallbacks == 1
    proxy = ProxyPromptHasher(block_tokens=block, prefix_caching=True).route_request(refused)
    assert (route.block_hashes, route.prompt_tokens) == (proxy.block_hashes, proxy.prompt_tokens)
    assert len(route.block_hashes) >= 1


async def test_no_tokenizer_here_means_provisional_hashes(exact_model: ServedModel) -> None:
    vllm = exact_model.deployment.vllm
    assert vllm is not None
    missing = exact_model.model_copy(
        update={
            "deployment": exact_model.deployment.model_copy(
                update={"vllm": vllm.model_copy(update={"model_path": "/nonexistent/model"})}
            )
        }
    )
    loader = RendererLoader(missing)
    assert loader.wait(TIMEOUT_S) is False
    assert loader.state == "failed" and loader.error
    hasher = build_hasher("vllm", block_tokens=128, prefix_caching=True, loader=loader)
    request = CASES["chat"]()
    proxy = ProxyPromptHasher(block_tokens=128, prefix_caching=True).route_request(request)
    assert hasher.exact is False
    assert hasher.route_request(request).block_hashes == proxy.block_hashes


async def test_the_serve_router_adopts_the_engines_block_size(
    tiny_model: ServedModel, hasher: VLLMPromptHasher, block: int
) -> None:
    from ray.serve._private.common import DeploymentHandleSource, DeploymentID

    from deployments.routing.config import router_kwargs
    from deployments.routing.request_router import RoutingRequestRouter

    router = RoutingRequestRouter(
        deployment_id=DeploymentID(name="exact", app_name="test"),
        handle_source=DeploymentHandleSource.UNKNOWN,
    )
    router.initialize_state(**router_kwargs(tiny_model, RoutingConfig()).model_dump(mode="json"))
    assert router.config.hashing == "vllm" and router.config.kv_events
    assert router.renderer is not None and router.renderer.wait(TIMEOUT_S)
    assert router.config.block_tokens != block
    # What `update_replicas` reads from each RunningReplica: its routing stats.
    router._adopt_block_size([SimpleNamespace(routing_stats={"block_size": block})])  # type: ignore[list-item]
    assert router.config.block_tokens == router.policy.settings.index.block_tokens == block
    request = CASES["chat"]()
    assert router.hasher.exact
    assert (
        router.hasher.route_request(request).block_hashes
        == hasher.route_request(request).block_hashes
    )
    snapshot = router.snapshot()
    assert snapshot["tokenizer"] == {"state": "ready", "error": None}
    assert (snapshot["hashing"], snapshot["block_tokens"]) == ("vllm", block)


async def test_new_prompts_hash_off_the_loop_to_the_same_hashes(loader: RendererLoader) -> None:
    """The real tokenizer on the router's worker threads: the loop keeps running while
    new prompts are tokenised (a ticker started after the requests ticks before they are
    all done; hashing on the loop would finish them first), and every request gets the
    hashes a lone synchronous call gives it."""
    from deployments.routing.offload import OffLoopHashing

    requests = [
        chat(system("You are terse."), user(f"Question {i}: " + "the router's words " * 150))
        for i in range(16)
    ]
    hasher = VLLMPromptHasher(loader, block_tokens=16, prefix_caching=True)
    hashing = OffLoopHashing(workers=2)
    finished = 0
    in_flight_ticks = 0

    async def route(request: EngineRequest) -> Any:
        nonlocal finished
        result = await hashing.route(hasher, request)
        finished += 1
        return result

    async def ticker() -> None:
        nonlocal in_flight_ticks
        while finished < len(requests):
            in_flight_ticks += 1
            await asyncio.sleep(0)

    try:
        tasks = [asyncio.ensure_future(route(r)) for r in requests]
        tick = asyncio.ensure_future(ticker())
        routes = await asyncio.gather(*tasks)
        await tick
    finally:
        hashing.close()
    assert in_flight_ticks > 0
    assert hashing.offloaded == len(requests)
    reference = VLLMPromptHasher(loader, block_tokens=16, prefix_caching=True)
    for request, got in zip(requests, routes, strict=True):
        expected = reference.route_request(request)
        assert got.request_id == request.request_id
        assert (got.prompt_tokens, list(got.block_hashes)) == (
            expected.prompt_tokens,
            list(expected.block_hashes),
        )
        assert got.prompt_tokens > 16 * 4
    # A repeat is a lookup, answered on the loop.
    again = await OffLoopHashing().route(hasher, requests[0])
    assert list(again.block_hashes) == list(routes[0].block_hashes)
