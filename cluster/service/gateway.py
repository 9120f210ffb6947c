"""`GatewayService`: the one core behind every front door (HTTP now, gRPC later).

A request runs: observe (metrics + span) → resolve the model name → check `max_tokens`
against the context window (the engine checks the prompt, which only it can tokenise) →
fan `n` out into EngineRequests → merge the choice streams → per-choice deltas (reasoning
split, tool calls) → the OpenAI response, or its chunks.

Streaming methods are async generators that do all of that lazily: an error the engine
raises before its first chunk surfaces on the first `anext()`, before a front door has
committed to a 200, so it can still answer with the error's status. Every request ends its
observation exactly once: success, typed error, internal error (500), or the consumer going
away (closed generator / cancelled task).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from cluster.api.responses import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionUsage,
    ModelCard,
    ModelList,
)
from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.config.settings import ServedModel
from cluster.engine import EngineRequest, Usage
from cluster.errors import ContextLengthExceeded, ModelNotFound, ModelyardError
from cluster.service.backend import ModelBackend
from cluster.service.choices import (
    ChoiceState,
    Delta,
    MessageBuilder,
    combine_usage,
    require_finished,
)
from cluster.service.requests import chat_engine_requests, completion_engine_requests
from cluster.service.resolver import ModelResolver, ResolvedModel
from cluster.service.streams import merge_choices
from cluster.telemetry.observer import Endpoint, Observation, RequestObserver

AnyRequest = ChatCompletionRequest | CompletionRequest


def engine_label(model: ServedModel) -> str:
    """The `x-modelyard-engine` header: says plainly when answers are simulated."""
    engine = model.deployment.engine
    return f"{engine} (simulated)" if engine == "sim" else engine


def system_fingerprint(model: ServedModel) -> str:
    engine = model.deployment.engine
    return "modelyard-sim-SIMULATED" if engine == "sim" else f"modelyard-{engine}"


def internal_error() -> ModelyardError:
    """What a client learns about a bug: nothing but that it happened."""
    return ModelyardError("The server had an error while processing your request.")


@dataclass(slots=True)
class _Call:
    """One accepted request after resolution: ids, target, and its choices."""

    response_id: str
    created: int
    resolved: ResolvedModel
    requests: list[EngineRequest]
    group_size: int  # choices per prompt (n): they share one prompt, counted once
    states: list[ChoiceState] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return self.resolved.public_name

    @property
    def fingerprint(self) -> str:
        return system_fingerprint(self.resolved.model)

    def usage(self) -> Usage:
        return combine_usage(require_finished(self.states), self.group_size)

    def finish_reasons(self) -> list[str]:
        return [state.finish_reason or "" for state in self.states]


class GatewayService:
    def __init__(
        self,
        served: Sequence[ServedModel],
        backend: ModelBackend,
        observer: RequestObserver,
        *,
        timeout_s: float | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = ModelResolver(served)
        self._backend = backend
        self._observer = observer
        self._timeout_s = timeout_s
        self._wall_clock = wall_clock
        self._created = int(wall_clock())

    # ---- models ------------------------------------------------------------------------

    def _card(self, model: ServedModel) -> ModelCard:
        owner, sep, _ = model.id.partition("/")
        return ModelCard(
            id=model.id,
            created=self._created,
            owned_by=owner if sep else "modelyard",
            context_window=model.spec.context_window,
            aliases=list(model.spec.aliases),
            engine=model.deployment.engine,
            simulated=model.deployment.engine == "sim",
        )

    def list_models(self) -> ModelList:
        return ModelList(data=[self._card(model) for model in self.resolver.models])

    def get_model(self, name: str) -> ModelCard:
        resolved = self.resolver.resolve(name)
        if resolved.adapter is not None:
            raise ModelNotFound(f"The model '{name}' is an adapter; adapters are not listed.")
        return self._card(resolved.model)

    def engine_label(self, name: str) -> str | None:
        """The engine header for a model name, or None when it does not resolve."""
        try:
            return engine_label(self.resolver.resolve(name).model)
        except ModelNotFound:
            return None

    # ---- chat --------------------------------------------------------------------------

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletion:
        obs = self._observe("chat", request)
        try:
            call = self._open(obs, request, "chatcmpl-")
            builders = [MessageBuilder() for _ in call.requests]
            async with aclosing(self._deltas(obs, call, request)) as deltas:
                async for index, delta in deltas:
                    builders[index].add(delta)
            usage = call.usage()
            response = ChatCompletion(
                id=call.response_id,
                created=call.created,
                model=call.model_name,
                system_fingerprint=call.fingerprint,
                choices=[
                    ChatChoice(index=i, message=b.message(), finish_reason=s.finish_reason)
                    for i, (b, s) in enumerate(zip(builders, call.states, strict=True))
                ],
                usage=CompletionUsage.of(usage),
            )
        except BaseException as exc:
            _settle(obs, exc)
            raise
        obs.succeed(response_id=call.response_id, finish_reasons=call.finish_reasons(), usage=usage)
        return response

    async def stream_chat(
        self, request: ChatCompletionRequest
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        obs = self._observe("chat", request)
        try:
            call = self._open(obs, request, "chatcmpl-")

            def chunk(
                choices: list[ChatChunkChoice], usage: Usage | None = None
            ) -> ChatCompletionChunk:
                return ChatCompletionChunk(
                    id=call.response_id,
                    created=call.created,
                    model=call.model_name,
                    system_fingerprint=call.fingerprint,
                    choices=choices,
                    usage=None if usage is None else CompletionUsage.of(usage),
                )

            async with aclosing(self._deltas(obs, call, request)) as deltas:
                async for index, delta in deltas:
                    if delta.first or not delta.empty:
                        yield chunk(
                            [
                                ChatChunkChoice(
                                    index=index,
                                    delta=delta.chat_delta(),
                                    finish_reason=delta.finish_reason,
                                )
                            ]
                        )
            usage = call.usage()
            if request.include_usage:
                yield chunk([], usage)
        except BaseException as exc:
            _settle(obs, exc)
            raise
        obs.succeed(response_id=call.response_id, finish_reasons=call.finish_reasons(), usage=usage)

    # ---- completions -------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> Completion:
        obs = self._observe("completions", request)
        try:
            call = self._open(obs, request, "cmpl-")
            texts: list[list[str]] = [[] for _ in call.requests]
            async with aclosing(self._deltas(obs, call, request)) as deltas:
                async for index, delta in deltas:
                    texts[index].append(delta.content)
            usage = call.usage()
            response = Completion(
                id=call.response_id,
                created=call.created,
                model=call.model_name,
                system_fingerprint=call.fingerprint,
                choices=[
                    CompletionChoice(index=i, text="".join(t), finish_reason=s.finish_reason)
                    for i, (t, s) in enumerate(zip(texts, call.states, strict=True))
                ],
                usage=CompletionUsage.of(usage),
            )
        except BaseException as exc:
            _settle(obs, exc)
            raise
        obs.succeed(response_id=call.response_id, finish_reasons=call.finish_reasons(), usage=usage)
        return response

    async def stream_complete(
        self, request: CompletionRequest
    ) -> AsyncGenerator[CompletionChunk, None]:
        obs = self._observe("completions", request)
        try:
            call = self._open(obs, request, "cmpl-")

            def chunk(
                choices: list[CompletionChoice], usage: Usage | None = None
            ) -> CompletionChunk:
                return CompletionChunk(
                    id=call.response_id,
                    created=call.created,
                    model=call.model_name,
                    system_fingerprint=call.fingerprint,
                    choices=choices,
                    usage=None if usage is None else CompletionUsage.of(usage),
                )

            async with aclosing(self._deltas(obs, call, request)) as deltas:
                async for index, delta in deltas:
                    if delta.content or delta.finish_reason:
                        yield chunk(
                            [
                                CompletionChoice(
                                    index=index,
                                    text=delta.content,
                                    finish_reason=delta.finish_reason,
                                )
                            ]
                        )
            usage = call.usage()
            if request.include_usage:
                yield chunk([], usage)
        except BaseException as exc:
            _settle(obs, exc)
            raise
        obs.succeed(response_id=call.response_id, finish_reasons=call.finish_reasons(), usage=usage)

    # ---- shared ------------------------------------------------------------------------

    def _observe(self, endpoint: Endpoint, request: AnyRequest) -> Observation:
        asked = request.requested_max_tokens
        return self._observer.start(
            endpoint,
            requested_model=request.model,
            n=request.n,
            stream=request.stream,
            max_tokens=None if asked is None else asked[1],
            temperature=request.temperature,
            top_p=request.top_p,
        )

    def _open(self, obs: Observation, request: AnyRequest, prefix: str) -> _Call:
        resolved = self.resolver.resolve(request.model)
        model = resolved.model
        obs.bind(
            model.id, engine=model.deployment.engine, simulated=model.deployment.engine == "sim"
        )
        asked = request.requested_max_tokens
        window = model.spec.context_window
        if asked is not None and asked[1] > window:
            param, value = asked
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {value} tokens in '{param}' alone. Please reduce '{param}'.",
                param=param,
            )
        response_id = prefix + uuid.uuid4().hex
        if isinstance(request, ChatCompletionRequest):
            requests = chat_engine_requests(request, resolved, response_id)
        else:
            requests = completion_engine_requests(request, resolved, response_id)
        return _Call(
            response_id=response_id,
            created=int(self._wall_clock()),
            resolved=resolved,
            requests=requests,
            group_size=request.n,
        )

    async def _deltas(
        self, obs: Observation, call: _Call, request: AnyRequest
    ) -> AsyncGenerator[tuple[int, Delta], None]:
        spec = call.resolved.model.spec
        think, parallel, text_tools = False, True, False
        if isinstance(request, ChatCompletionRequest):
            think = spec.reasoning_parser == "think_tags"
            parallel = request.parallel_tool_calls is not False
            # Calls written in the text are parsed when the request offers tools (as vLLM
            # does with its own tool parsers).
            text_tools = (
                spec.core_tool_parser == "minimax_m1"
                and bool(request.tools)
                and request.tool_choice != "none"
            )
        call.states = [
            ChoiceState(think_tags=think, parallel_tool_calls=parallel, text_tool_calls=text_tools)
            for _ in call.requests
        ]
        model = call.resolved.model
        streams = [
            self._backend.generate(model, engine_request) for engine_request in call.requests
        ]
        async with aclosing(merge_choices(streams, timeout_s=self._timeout_s)) as merged:
            async for index, chunk in merged:
                obs.first_token()
                yield index, call.states[index].step(chunk)


def _settle(obs: Observation, exc: BaseException) -> None:
    """End the observation for a request that did not succeed."""
    if isinstance(exc, ModelyardError):
        obs.fail(exc)
    elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
        obs.cancel()
    elif isinstance(exc, Exception):
        obs.fail(internal_error())
    else:
        obs.cancel()
