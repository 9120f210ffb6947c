"""`GatewayService`: the one core behind every front door (HTTP now, gRPC later).

A request runs: observe (metrics + span) → check its size (`limits`) and media URLs
(`media`) → resolve the model name → check `max_tokens` against the context window (the
engine checks the prompt, which only it can tokenise) → fan `n` out into EngineRequests →
merge the choice streams → per-choice deltas (reasoning split, tool calls) → the OpenAI
response, or its chunks. Chat and completions run that one path (`_respond`, `_stream`);
they differ only in the body class and in how one choice is assembled
(`bodies.chat_choice`, `text_choice`) or streamed (`chat_piece`, `text_piece`).

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
from typing import TypedDict, TypeVar

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
from cluster.gateway.auth.protocol import ANONYMOUS, Principal
from cluster.gateway.service.backend import ModelBackend
from cluster.gateway.service.billing import Billing, partial_usage
from cluster.gateway.service.bodies import chat_choice, chat_piece, text_choice, text_piece
from cluster.gateway.service.choices import (
    ChoiceState,
    Delta,
    combine_usage,
    require_finished,
)
from cluster.gateway.service.limits import RequestLimits
from cluster.gateway.service.media import MediaPolicy
from cluster.gateway.service.metering import Meter, NoMeter, Ticket
from cluster.gateway.service.requests import chat_engine_requests, completion_engine_requests
from cluster.gateway.service.resolver import ModelResolver, ResolvedModel
from cluster.gateway.service.streams import merge_choices
from cluster.gateway.telemetry.observer import Observation, RequestObserver
from cluster.pricing import PriceBook

AnyRequest = ChatCompletionRequest | CompletionRequest
#: A response or chunk class, and the choice type it holds.
B = TypeVar("B", ChatCompletion, ChatCompletionChunk, Completion, CompletionChunk)
C = TypeVar("C", ChatChoice, ChatChunkChoice, CompletionChoice)


class Header(TypedDict):
    """The fields every response body and chunk of one request starts with."""

    id: str
    created: int
    model: str
    system_fingerprint: str | None


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
    """One accepted request after resolution: its header, target, and its choices."""

    header: Header
    resolved: ResolvedModel
    requests: list[EngineRequest]
    group_size: int  # choices per prompt (n): they share one prompt, counted once
    states: list[ChoiceState] = field(default_factory=list)
    produced: list[int] = field(default_factory=list)  # engine chunks with text, per choice
    ticket: Ticket | None = None

    def usage(self) -> Usage:
        return combine_usage(require_finished(self.states), self.group_size)

    def used_so_far(self) -> Usage:
        return partial_usage(self.states, self.produced, self.group_size)

    def succeed(self, obs: Observation, usage: Usage, billed: CompletionUsage) -> None:
        reasons = [state.finish_reason or "" for state in self.states]
        details = billed.cost_details
        obs.succeed(
            response_id=self.header["id"],
            finish_reasons=reasons,
            usage=usage,
            cost=billed.cost,
            currency=None if details is None else details.currency,
        )


class GatewayService:
    def __init__(
        self,
        served: Sequence[ServedModel],
        backend: ModelBackend,
        observer: RequestObserver,
        *,
        timeout_s: float | None = None,
        stall_timeout_s: float | None = None,
        limits: RequestLimits | None = None,
        wall_clock: Callable[[], float] = time.time,
        meter: Meter | None = None,
        media: MediaPolicy | None = None,
    ) -> None:
        self.resolver = ModelResolver(served)
        self.billing = Billing(PriceBook(served), meter or NoMeter())
        self._backend = backend
        self._observer = observer
        self._timeout_s = timeout_s
        self._stall_timeout_s = stall_timeout_s
        self._limits = limits or RequestLimits()
        self._media = media or MediaPolicy()
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

    # ---- chat and completions ----------------------------------------------------------

    async def chat(
        self, request: ChatCompletionRequest, caller: Principal = ANONYMOUS
    ) -> ChatCompletion:
        return await self._respond(request, ChatCompletion, chat_choice, caller)

    def stream_chat(
        self, request: ChatCompletionRequest, caller: Principal = ANONYMOUS
    ) -> AsyncGenerator[ChatCompletionChunk, None]:
        return self._stream(request, ChatCompletionChunk, chat_piece, caller)

    async def complete(
        self, request: CompletionRequest, caller: Principal = ANONYMOUS
    ) -> Completion:
        return await self._respond(request, Completion, text_choice, caller)

    def stream_complete(
        self, request: CompletionRequest, caller: Principal = ANONYMOUS
    ) -> AsyncGenerator[CompletionChunk, None]:
        return self._stream(request, CompletionChunk, text_piece, caller)

    async def _respond(
        self,
        request: AnyRequest,
        body: type[B],
        choice: Callable[[int, list[Delta], ChoiceState], C],
        caller: Principal,
    ) -> B:
        """The whole response: every choice's deltas collected, then `choice` of each; the
        ledger record is durable before the response is returned."""
        obs = self._observe(request)
        call: _Call | None = None
        try:
            call = self._open(obs, request)
            call.ticket = await self._admit(call, request, caller)
            deltas: list[list[Delta]] = [[] for _ in call.requests]
            async with aclosing(self._deltas(obs, call, request)) as stream:
                async for index, delta in stream:
                    deltas[index].append(delta)
            usage = call.usage()
            choices = [
                choice(i, d, s) for i, (d, s) in enumerate(zip(deltas, call.states, strict=True))
            ]
            billed = await self._complete(call, usage)
            response = body(**call.header, choices=choices, usage=billed)
        except BaseException as exc:
            await self._abandon(call, exc)
            _settle(obs, exc)
            raise
        call.succeed(obs, usage, billed)
        return response

    async def _stream(
        self,
        request: AnyRequest,
        body: type[B],
        piece: Callable[[int, Delta], C | None],
        caller: Principal,
    ) -> AsyncGenerator[B, None]:
        """One chunk per delta `piece` keeps, then the usage-only chunk if asked for.

        A choice's finishing chunk is held back until the ledger record is durable, so no
        client sees the end of a response the ledger does not hold."""
        obs = self._observe(request)
        call: _Call | None = None
        try:
            call = self._open(obs, request)
            call.ticket = await self._admit(call, request, caller)
            held: list[B] = []
            async with aclosing(self._deltas(obs, call, request)) as deltas:
                async for index, delta in deltas:
                    kept = piece(index, delta)
                    if kept is None:
                        continue
                    chunk = body(**call.header, choices=[kept], usage=None)
                    if delta.finish_reason is not None:
                        held.append(chunk)
                    else:
                        yield chunk
            usage = call.usage()
            billed = await self._complete(call, usage)
            for chunk in held:
                yield chunk
            if request.include_usage:
                yield body(**call.header, choices=[], usage=billed)
        except BaseException as exc:
            await self._abandon(call, exc)
            _settle(obs, exc)
            raise
        call.succeed(obs, usage, billed)

    # ---- shared ------------------------------------------------------------------------

    async def _admit(self, call: _Call, request: AnyRequest, caller: Principal) -> Ticket:
        model = call.resolved.model
        return await self.billing.admit(caller, model, request, call.header["id"])

    async def _complete(self, call: _Call, usage: Usage) -> CompletionUsage:
        assert call.ticket is not None
        ticket, call.ticket = call.ticket, None  # recorded once, whatever happens next
        return await self.billing.complete(ticket, usage)

    async def _abandon(self, call: _Call | None, exc: BaseException) -> None:
        """Record a request that was admitted but did not complete (`Billing.abandon`)."""
        if call is None or call.ticket is None:
            return
        ticket, call.ticket = call.ticket, None
        await self.billing.abandon(ticket, call.used_so_far(), exc)

    def _observe(self, request: AnyRequest) -> Observation:
        asked = request.requested_max_tokens
        chat = isinstance(request, ChatCompletionRequest)
        return self._observer.start(
            "chat" if chat else "completions",
            requested_model=request.model,
            n=request.n,
            stream=request.stream,
            max_tokens=None if asked is None else asked[1],
            temperature=request.temperature,
            top_p=request.top_p,
        )

    def _open(self, obs: Observation, request: AnyRequest) -> _Call:
        self._limits.check(request)
        self._media.check(request)
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
        if isinstance(request, ChatCompletionRequest):
            response_id = f"chatcmpl-{uuid.uuid4().hex}"
            requests = chat_engine_requests(request, resolved, response_id)
        else:
            response_id = f"cmpl-{uuid.uuid4().hex}"
            requests = completion_engine_requests(request, resolved, response_id)
        header = Header(
            id=response_id,
            created=int(self._wall_clock()),
            model=resolved.public_name,
            system_fingerprint=system_fingerprint(model),
        )
        return _Call(header, resolved, requests, group_size=request.n)

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
        logprobs = request.logprobs_wanted is not None
        call.states = [
            ChoiceState(
                think_tags=think,
                parallel_tool_calls=parallel,
                text_tool_calls=text_tools,
                logprobs=logprobs,
            )
            for _ in call.requests
        ]
        call.produced = [0] * len(call.requests)
        model = call.resolved.model
        streams = [
            self._backend.generate(model, engine_request) for engine_request in call.requests
        ]
        merged_streams = merge_choices(
            streams, timeout_s=self._timeout_s, stall_timeout_s=self._stall_timeout_s
        )
        async with aclosing(merged_streams) as merged:
            async for index, chunk in merged:
                obs.first_token()
                if chunk.text or chunk.reasoning or chunk.tool_calls:
                    call.produced[index] += 1
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
