"""Managed API keys: created, listed, revoked and rotated in the ledger's database.

A key reads `myd-<id>-<secret>`: `id` (12 hex characters) is public — it names the key in
records, logs and `modelyard keys list` — and `secret` is 32 random bytes (base64url). Only
`HMAC-SHA256(pepper, key)` is stored (hex); the pepper is a server-side secret (an
environment variable, `auth.pepper_env`), so a copy of the database alone cannot be used
to test guesses. `verify` looks the row up by id and compares hashes with
`hmac.compare_digest`. The key itself is returned once, by `create` and `rotate`, and never
stored or logged.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from hashlib import sha256

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, Row, insert, select, update

from cluster.ledger.health import unavailable_on_outage
from cluster.ledger.records import from_nano, to_nano, utc
from cluster.ledger.schema import api_keys

KEY_PREFIX = "myd"
_KEY = re.compile(rf"{KEY_PREFIX}-([0-9a-f]{{12}})-([A-Za-z0-9_-]{{43}})")


class KeyInfo(BaseModel):
    """A managed key as `keys list|show` and `GET /api/v1/key` report it (never the key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    budget: Decimal | None
    spent: Decimal
    reserved: Decimal
    rpm: int | None
    tpm: int | None
    models: list[str] | None

    @property
    def remaining(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.spent - self.reserved


def key_hash(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode("utf-8"), sha256).hexdigest()


def parse_key(key: str) -> str | None:
    """The public id of a well-formed managed key, else None."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def _info(row: Row[tuple[object, ...]]) -> KeyInfo:
    m = row._mapping
    models = m["models"]
    return KeyInfo(
        id=m["id"],
        name=m["name"],
        created_at=utc(m["created_at"]),
        expires_at=None if m["expires_at"] is None else utc(m["expires_at"]),
        revoked_at=None if m["revoked_at"] is None else utc(m["revoked_at"]),
        budget=from_nano(m["budget_nano"]),
        spent=from_nano(m["spent_nano"]) or Decimal(0),
        reserved=from_nano(m["reserved_nano"]) or Decimal(0),
        rpm=m["rpm"],
        tpm=m["tpm"],
        models=None if models is None else list(json.loads(str(models))),
    )


class KeyStore:
    def __init__(self, engine: Engine, pepper: bytes) -> None:
        if not pepper:
            raise ValueError("the key pepper is empty")
        self._engine = engine
        self._pepper = pepper

    def _new_key(self, key_id: str) -> str:
        return f"{KEY_PREFIX}-{key_id}-{secrets.token_urlsafe(32)}"

    def create(
        self,
        name: str,
        *,
        now: datetime,
        budget: Decimal | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        models: Sequence[str] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[str, KeyInfo]:
        key_id = secrets.token_hex(6)
        key = self._new_key(key_id)
        with self._engine.begin() as connection:
            connection.execute(
                insert(api_keys).values(
                    id=key_id,
                    name=name,
                    secret_hash=key_hash(self._pepper, key),
                    created_at=now,
                    expires_at=expires_at,
                    budget_nano=None if budget is None else to_nano(budget),
                    rpm=rpm,
                    tpm=tpm,
                    models=None if models is None else json.dumps(list(models)),
                )
            )
        info = self.show(key_id)
        assert info is not None
        return key, info

    def show(self, key_id: str) -> KeyInfo | None:
        with unavailable_on_outage(), self._engine.connect() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return None if row is None else _info(row)

    def list(self) -> list[KeyInfo]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_info(row) for row in rows]

    def revoke(self, key_id: str, now: datetime) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return result.rowcount == 1

    def rotate(self, key_id: str) -> str | None:
        """A new secret for the same key id (limits, budget and spend kept); the old key
        stops working at once. None when there is no such active key."""
        key = self._new_key(key_id)
        with self._engine.begin() as connection:
            result = connection.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(secret_hash=key_hash(self._pepper, key))
            )
        return key if result.rowcount == 1 else None

    def verify(self, key: str) -> KeyInfo | None:
        """The key's row when `key` is a managed key whose hash matches, else None (whether
        it is revoked or expired is the caller's to judge)."""
        key_id = parse_key(key)
        if key_id is None:
            return None
        with unavailable_on_outage(), self._engine.connect() as connection:
            row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        presented = key_hash(self._pepper, key)
        stored = "0" * 64 if row is None else str(row._mapping["secret_hash"])
        if not hmac.compare_digest(presented, stored) or row is None:
            return None
        return _info(row)
