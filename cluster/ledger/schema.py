"""The ledger's tables (SQLAlchemy Core). Alembic's migrations create them (`migrations/`).

Money is stored as integer nano-units of the price table's currency (1 RUB = 10^9): sums are
exact in SQL on SQLite and PostgreSQL alike, and every cost the price book can produce fits
(prices have at most 3 decimal places, `PriceTier`, so tokens x price / 10^6 has at most 9).

- `api_keys`: managed keys. Only `secret_hash` (HMAC-SHA256 of the key under the pepper) is
  stored, never the key. `spent_nano` is settled spend; `reserved_nano` is the sum of open
  reservations; a request is admitted only if `spent + reserved + its worst case <= budget`,
  checked and applied by one conditional UPDATE.
- `usage_records`: one row per request that reached an engine, keyed by request id
  (inserts are ON CONFLICT DO NOTHING: a request is never recorded twice).
- `reservations`: open budget reservations, one per admitted request of a key with a
  budget; deleted in the same transaction that writes the request's record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    or_,
)

NANO = 10**9

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("budget_nano", BigInteger, nullable=True),
    Column("spent_nano", BigInteger, nullable=False, server_default="0"),
    Column("reserved_nano", BigInteger, nullable=False, server_default="0"),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("models", Text, nullable=True),  # JSON list of model ids; null: every model
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("request_id", String(80), primary_key=True),
    Column("key_id", String(32), nullable=True),
    Column("model", String(200), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("tier", String(64), nullable=True),
    Column("currency", String(8), nullable=True),
    Column("cost_nano", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Index("ix_usage_records_ended_at", "ended_at"),
    Index("ix_usage_records_key_started", "key_id", "started_at"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("request_id", String(80), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("amount_nano", BigInteger, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def budget_covers(amount: ColumnElement[Any]) -> ColumnElement[bool]:
    """The admission rule, as the WHERE of the conditional UPDATE that applies it (no
    read-then-write): `budget IS NULL OR spent + reserved + amount <= budget`."""
    k = api_keys.c
    return or_(k.budget_nano.is_(None), k.spent_nano + k.reserved_nano + amount <= k.budget_nano)
