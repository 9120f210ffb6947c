"""Who is calling: the `Authenticator` interface both front doors use, and its result."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class KeyLimits(BaseModel):
    """What a managed key may do (`modelyard keys create`): enforced by the ledger's meter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] | None = None  # None: every model
    rpm: int | None = None
    tpm: int | None = None
    budgeted: bool = False  # the key has a budget: each request reserves its worst case


class Principal(BaseModel):
    """An authenticated caller.

    `key_id` tells keys apart in logs and usage records and is useless for recovering the
    key: for a static key, the first `KEY_ID_CHARS` hex characters of its SHA-256 digest;
    for a managed key, its public id (`ledger.keys`). It is None for the anonymous caller of
    a cluster with authentication off. `limits` is set for managed keys only.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str | None = None
    name: str | None = None
    limits: KeyLimits | None = None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


ANONYMOUS = Principal()


@runtime_checkable
class Authenticator(Protocol):
    """Turns the value of an `authorization` header (HTTP) or metadata entry (gRPC) into a
    `Principal`, or raises `cluster.errors.Unauthenticated` with a message that never
    contains the presented key."""

    @property
    def enabled(self) -> bool:
        """False when every caller is accepted (local mode)."""
        ...

    async def authenticate(self, authorization: str | None) -> Principal: ...
