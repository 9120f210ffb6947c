"""ledger: managed keys, usage records, budget reservations

Revision ID: 0001_ledger
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("budget_nano", sa.BigInteger, nullable=True),
        sa.Column("spent_nano", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reserved_nano", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("models", sa.Text, nullable=True),
    )
    op.create_table(
        "usage_records",
        sa.Column("request_id", sa.String(80), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("tier", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(8), nullable=True),
        sa.Column("cost_nano", sa.BigInteger, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=False),
    )
    op.create_index("ix_usage_records_ended_at", "usage_records", ["ended_at"])
    op.create_index("ix_usage_records_key_started", "usage_records", ["key_id", "started_at"])
    op.create_table(
        "reservations",
        sa.Column("request_id", sa.String(80), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("amount_nano", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_index("ix_usage_records_key_started", "usage_records")
    op.drop_index("ix_usage_records_ended_at", "usage_records")
    op.drop_table("usage_records")
    op.drop_table("api_keys")
