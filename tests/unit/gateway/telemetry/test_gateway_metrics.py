"""GatewayMetrics owns its registry; observations count once and label by resolved model."""

from __future__ import annotations

from decimal import Decimal

from opentelemetry.trace import NoOpTracer
from prometheus_client import REGISTRY

from cluster.engine import Usage
from cluster.errors import ContextLengthExceeded, ModelNotFound
from cluster.gateway.telemetry import GatewayMetrics, Observation, RequestObserver


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def observer() -> tuple[RequestObserver, FakeClock]:
    clock = FakeClock()
    return RequestObserver(GatewayMetrics(), NoOpTracer(), clock), clock


def start(obs: RequestObserver, model: str = "m/x") -> Observation:
    return obs.start(
        "chat",
        requested_model=model,
        n=1,
        stream=False,
        max_tokens=None,
        temperature=None,
        top_p=None,
    )


def test_each_instance_has_its_own_registry() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.requests.labels("m", "chat", "200").inc()
    assert (
        a.sample("modelyard_requests_total", {"model": "m", "endpoint": "chat", "status": "200"})
        == 1
    )
    assert (
        b.sample("modelyard_requests_total", {"model": "m", "endpoint": "chat", "status": "200"})
        == 0
    )
    assert (
        REGISTRY.get_sample_value(
            "modelyard_requests_total", {"model": "m", "endpoint": "chat", "status": "200"}
        )
        is None
    )


def test_render_exposes_every_series() -> None:
    metrics = GatewayMetrics()
    text = metrics.render().decode()
    for name in (
        "modelyard_requests_total",
        "modelyard_errors_total",
        "modelyard_time_to_first_token_seconds",
        "modelyard_request_duration_seconds",
        "modelyard_prompt_tokens_total",
        "modelyard_completion_tokens_total",
        "modelyard_cached_tokens_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert metrics.content_type.startswith("text/plain")


def test_success_records_ttft_duration_and_tokens() -> None:
    obs, clock = observer()
    observation = start(obs)
    observation.bind("m/x", engine="sim", simulated=True)
    clock.now += 0.2
    observation.first_token()
    clock.now += 0.1
    observation.first_token()  # only the first one counts
    clock.now += 1.0
    observation.succeed(
        response_id="chatcmpl-1",
        finish_reasons=["stop"],
        usage=Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=64),
    )
    m = obs.metrics
    assert (
        m.sample("modelyard_requests_total", {"model": "m/x", "endpoint": "chat", "status": "200"})
        == 1
    )
    assert m.sample("modelyard_time_to_first_token_seconds_count", {"model": "m/x"}) == 1
    assert abs(m.sample("modelyard_time_to_first_token_seconds_sum", {"model": "m/x"}) - 0.2) < 1e-9
    assert (
        abs(
            m.sample("modelyard_request_duration_seconds_sum", {"model": "m/x", "endpoint": "chat"})
            - 1.3
        )
        < 1e-9
    )
    assert m.sample("modelyard_prompt_tokens_total", {"model": "m/x"}) == 100
    assert m.sample("modelyard_completion_tokens_total", {"model": "m/x"}) == 7
    assert m.sample("modelyard_cached_tokens_total", {"model": "m/x"}) == 64


def test_failure_counts_once_with_code_and_status() -> None:
    obs, _ = observer()
    observation = start(obs)
    observation.bind("m/x", engine="sim", simulated=True)
    observation.fail(ContextLengthExceeded("too long", param="messages"))
    observation.fail(ContextLengthExceeded("again"))
    observation.succeed(
        response_id="x", finish_reasons=[], usage=Usage(prompt_tokens=1, completion_tokens=1)
    )
    m = obs.metrics
    assert (
        m.sample("modelyard_requests_total", {"model": "m/x", "endpoint": "chat", "status": "400"})
        == 1
    )
    assert (
        m.sample("modelyard_errors_total", {"model": "m/x", "code": "context_length_exceeded"}) == 1
    )
    assert m.sample("modelyard_prompt_tokens_total", {"model": "m/x"}) == 0


def test_unresolved_model_is_labelled_unknown() -> None:
    obs, _ = observer()
    start(obs, model="client-chosen-garbage").fail(ModelNotFound("no such model"))
    m = obs.metrics
    assert m.sample("modelyard_errors_total", {"model": "unknown", "code": "model_not_found"}) == 1
    assert "client-chosen-garbage" not in m.render().decode()


def test_cancel_is_499_and_not_an_error() -> None:
    obs, _ = observer()
    observation = start(obs)
    observation.bind("m/x", engine="sim", simulated=True)
    observation.cancel()
    m = obs.metrics
    assert (
        m.sample("modelyard_requests_total", {"model": "m/x", "endpoint": "chat", "status": "499"})
        == 1
    )
    assert "modelyard_errors_total{" not in m.render().decode()


def test_pending_requests_count_until_the_first_token_or_the_end() -> None:
    obs, _ = observer()
    m = obs.metrics
    a, b, c = start(obs), start(obs), start(obs)
    for o in (a, b, c):
        o.bind("m/x", engine="sim", simulated=True)
    assert m.sample("modelyard_pending_requests", {"model": "m/x"}) == 3
    a.first_token()
    a.first_token()
    assert m.sample("modelyard_pending_requests", {"model": "m/x"}) == 2
    b.fail(ContextLengthExceeded("too long"))
    c.cancel()
    assert m.sample("modelyard_pending_requests", {"model": "m/x"}) == 0
    a.succeed(
        response_id="chatcmpl-1",
        finish_reasons=["stop"],
        usage=Usage(prompt_tokens=1, completion_tokens=1),
    )
    assert m.sample("modelyard_pending_requests", {"model": "m/x"}) == 0


def test_billed_cost_is_counted_per_model_and_currency() -> None:
    metrics = GatewayMetrics()
    obs = RequestObserver(metrics, NoOpTracer(), FakeClock())
    priced = start(obs)
    priced.bind("m/x", engine="sim", simulated=True)
    usage = Usage(prompt_tokens=10, completion_tokens=2)
    priced.succeed(
        response_id="a",
        finish_reasons=["stop"],
        usage=usage,
        cost=Decimal("0.0123"),
        currency="RUB",
    )
    unpriced = start(obs)
    unpriced.bind("m/x", engine="sim", simulated=True)
    unpriced.succeed(response_id="b", finish_reasons=["stop"], usage=usage)
    labels = {"model": "m/x", "currency": "RUB"}
    assert metrics.sample("modelyard_cost_total", labels) == 0.0123
    assert metrics.sample("modelyard_prompt_tokens_total", {"model": "m/x"}) == 20
