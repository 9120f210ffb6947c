"""One `Observation` per API request: its metrics and its span, finished exactly once.

Span name `"{operation} {model}"` with the OpenTelemetry gen_ai semantic conventions:
gen_ai.system / gen_ai.provider.name = "modelyard", gen_ai.operation.name ("chat" or
"text_completion"), gen_ai.request.{model,max_tokens,temperature,top_p,choice.count},
gen_ai.response.{id,model,finish_reasons,time_to_first_chunk},
gen_ai.usage.{input_tokens,output_tokens,cache_read.input_tokens}; failures set the span
status to ERROR and `error.type` to the error's code. modelyard.* attributes say which
engine answered and whether it is simulated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from cluster.engine.types import Usage
from cluster.errors import ModelyardError
from cluster.gateway.telemetry.metrics import UNKNOWN_MODEL, GatewayMetrics

Endpoint = Literal["chat", "completions"]
OPERATIONS: dict[Endpoint, str] = {"chat": "chat", "completions": "text_completion"}
CLIENT_CLOSED = "499"  # nginx's status for "the client went away before the answer"


class Observation:
    def __init__(
        self,
        metrics: GatewayMetrics,
        span: Span,
        endpoint: Endpoint,
        clock: Callable[[], float],
    ) -> None:
        self._metrics = metrics
        self._span = span
        self._endpoint = endpoint
        self._clock = clock
        self._started = clock()
        self._model = UNKNOWN_MODEL
        self._first_token_at: float | None = None
        self._done = False
        self._pending = False  # counted in the model's pending_requests gauge

    @property
    def done(self) -> bool:
        return self._done

    def bind(self, model_id: str, *, engine: str, simulated: bool) -> None:
        """The request resolved to a served model: label metrics with its public id."""
        self._unpend()
        self._model = model_id
        if not self._done and self._first_token_at is None:
            self._metrics.pending.labels(model_id).inc()
            self._pending = True
        self._span.set_attributes(
            {
                "gen_ai.response.model": model_id,
                "modelyard.engine": engine,
                "modelyard.simulated": simulated,
            }
        )

    def first_token(self) -> None:
        if self._first_token_at is not None or self._done:
            return
        self._first_token_at = self._clock()
        self._unpend()
        ttft = self._first_token_at - self._started
        self._metrics.ttft.labels(self._model).observe(ttft)
        self._span.set_attribute("gen_ai.response.time_to_first_chunk", ttft)

    def succeed(
        self,
        *,
        response_id: str,
        finish_reasons: Sequence[str],
        usage: Usage,
        cost: Decimal | None = None,
        currency: str | None = None,
    ) -> None:
        if not self._finish("200"):
            return
        model = self._model
        self._metrics.prompt_tokens.labels(model).inc(usage.prompt_tokens)
        self._metrics.completion_tokens.labels(model).inc(usage.completion_tokens)
        self._metrics.cached_tokens.labels(model).inc(usage.cached_tokens)
        if cost is not None and currency is not None:
            # A float for the dashboard's rate; the ledger keeps the exact Decimal amounts.
            self._metrics.cost.labels(model, currency).inc(float(cost))
        self._span.set_attributes(
            {
                "gen_ai.response.id": response_id,
                "gen_ai.response.finish_reasons": list(finish_reasons),
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
            }
        )
        self._span.set_status(Status(StatusCode.OK))
        self._span.end()

    def fail(self, err: ModelyardError) -> None:
        if not self._finish(str(err.http_status)):
            return
        code = err.code or err.error_type
        self._metrics.errors.labels(self._model, code).inc()
        self._span.set_attribute("error.type", code)
        self._span.set_status(Status(StatusCode.ERROR, err.message))
        self._span.end()

    def cancel(self) -> None:
        """The client went away (disconnect, closed stream): not an error of ours."""
        if not self._finish(CLIENT_CLOSED):
            return
        self._span.set_attribute("error.type", "cancelled")
        self._span.end()

    def _unpend(self) -> None:
        if self._pending:
            self._pending = False
            self._metrics.pending.labels(self._model).dec()

    def _finish(self, status: str) -> bool:
        if self._done:
            return False
        self._done = True
        self._unpend()
        self._metrics.requests.labels(self._model, self._endpoint, status).inc()
        elapsed = self._clock() - self._started
        self._metrics.duration.labels(self._model, self._endpoint).observe(elapsed)
        return True


class RequestObserver:
    """Starts observations; holds the metrics, the tracer and the clock they share."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        tracer: Tracer,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.metrics = metrics
        self._tracer = tracer
        self._clock = clock

    def start(
        self,
        endpoint: Endpoint,
        *,
        requested_model: str,
        n: int,
        stream: bool,
        max_tokens: int | None,
        temperature: float | None,
        top_p: float | None,
    ) -> Observation:
        operation = OPERATIONS[endpoint]
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.system": "modelyard",
            "gen_ai.provider.name": "modelyard",
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": requested_model,
            "gen_ai.request.choice.count": n,
            "modelyard.stream": stream,
        }
        optional = {
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
            "gen_ai.request.top_p": top_p,
        }
        attributes.update({key: value for key, value in optional.items() if value is not None})
        span = self._tracer.start_span(
            f"{operation} {requested_model[:128]}", kind=SpanKind.SERVER, attributes=attributes
        )
        return Observation(self.metrics, span, endpoint, self._clock)
