"""Building blocks of the ledger tests: an engine over a test database, records, keys."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine

from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.records import RecordStatus, UsageRecord

PEPPER = b"test-pepper-not-a-secret"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def ledger_engine(url: str) -> Engine:
    engine = create_ledger_engine(url)
    migrate(engine)
    return engine


def record(
    request_id: str,
    *,
    key_id: str | None = None,
    model: str = "qwen/qwen3-coder-flash",
    cost: str | None = "0.001",
    status: RecordStatus = "completed",
    prompt: int = 10,
    completion: int = 5,
    when: datetime = NOW,
) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        key_id=key_id,
        model=model,
        prompt_tokens=prompt,
        cached_tokens=0,
        completion_tokens=completion,
        tier="prompt_tokens<=32000",
        currency="RUB",
        cost=None if cost is None else Decimal(cost),
        status=status,
        started_at=when,
        ended_at=when,
    )
