"""The core's side of billing, against a recording meter: one record per request, written
before the end of the response reaches the client, with what a disconnected client got."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from cluster.api.validation import validate_chat
from cluster.config import ServedModel, TelemetrySettings
from cluster.engine import Usage
from cluster.errors import BudgetExhausted, LedgerUnavailable
from cluster.gateway.auth.protocol import Principal
from cluster.gateway.service import EngineBackend, GatewayService
from cluster.gateway.service.metering import RecordStatus, Ticket
from cluster.gateway.telemetry import (
    GatewayMetrics,
    RequestObserver,
    build_tracer_provider,
    tracer_from,
)
from cluster.pricing import Quote
from tests.unit.gateway.service.scripted import QWEN, ScriptedEngine, served_model, text_chunks


@dataclass
class RecordingMeter:
    records: list[tuple[str, Usage, RecordStatus]] = field(default_factory=list)
    refuse: bool = False
    fail: bool = False
    gate: asyncio.Event | None = None  # when set, record() waits for it

    async def admit(
        self, caller: Principal, model: ServedModel, request_id: str, worst: Quote | None
    ) -> Ticket:
        if self.refuse:
            raise BudgetExhausted("no budget")
        return Ticket(request_id, model.id, caller.key_id, datetime.now(UTC))

    async def record(
        self, ticket: Ticket, usage: Usage, quote: Quote | None, status: RecordStatus
    ) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise LedgerUnavailable("ledger down")
        self.records.append((ticket.request_id, usage, status))


def service(meter: RecordingMeter, engine: ScriptedEngine) -> GatewayService:
    tracer = tracer_from(build_tracer_provider(TelemetrySettings()))
    return GatewayService(
        [served_model(QWEN)],
        EngineBackend({QWEN: engine}),
        RequestObserver(GatewayMetrics(), tracer),
        meter=meter,
    )


def chat(**fields: object):  # type: ignore[no-untyped-def]
    body = {"model": QWEN, "messages": [{"role": "user", "content": "hi"}], **fields}
    return validate_chat(body)


async def test_one_completed_record_per_request() -> None:
    meter = RecordingMeter()
    svc = service(meter, ScriptedEngine(lambda _r: text_chunks("a", "b", prompt=9)))
    response = await svc.chat(chat())
    chunks = [c async for c in svc.stream_chat(chat(stream=True))]
    assert [(rid, status) for rid, _, status in meter.records] == [
        (response.id, "completed"),
        (chunks[0].id, "completed"),
    ]
    assert meter.records[0][1] == Usage(prompt_tokens=9, completion_tokens=2)


async def test_the_finishing_chunk_waits_for_the_record() -> None:
    meter = RecordingMeter(gate=asyncio.Event())
    svc = service(meter, ScriptedEngine(lambda _r: text_chunks("a", "b")))
    stream = svc.stream_chat(chat(stream=True))
    first = await anext(stream)
    second = await anext(stream)
    assert first.choices[0].finish_reason is None and second.choices[0].finish_reason is None
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert not pending.done()  # the finish chunk is held until the record is durable
    meter.gate.set()  # type: ignore[union-attr]
    assert (await pending).choices[0].finish_reason == "stop"
    await stream.aclose()


async def test_a_failed_record_replaces_the_answer_with_an_error() -> None:
    meter = RecordingMeter(fail=True)
    svc = service(meter, ScriptedEngine(lambda _r: text_chunks("a")))
    with pytest.raises(LedgerUnavailable):
        await svc.chat(chat())
    stream = svc.stream_chat(chat(stream=True))
    received = []
    with pytest.raises(LedgerUnavailable):
        async for chunk in stream:
            received.append(chunk)
    assert all(c.choices[0].finish_reason is None for c in received)  # never the end


async def test_a_client_that_leaves_is_billed_for_what_it_got() -> None:
    engine = ScriptedEngine(lambda _r: text_chunks("a", "b", "c", "d", "e"))
    engine.gate = asyncio.Event()
    meter = RecordingMeter()
    svc = service(meter, engine)
    stream = svc.stream_chat(chat(stream=True))
    await anext(stream)
    await stream.aclose()  # the client went away after the first token
    assert len(meter.records) == 1
    _, usage, status = meter.records[0]
    assert status == "client-aborted" and usage.completion_tokens == 1


async def test_a_refused_request_never_reaches_the_engine() -> None:
    engine = ScriptedEngine(lambda _r: text_chunks("a"))
    svc = service(RecordingMeter(refuse=True), engine)
    with pytest.raises(BudgetExhausted):
        await svc.chat(chat())
    assert engine.requests == []
