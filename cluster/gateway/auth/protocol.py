"""Who is calling: the `Authenticator` interface both front doors use, and its result."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class Principal(BaseModel):
    """An authenticated caller.

    `key_id` is the first `KEY_ID_CHARS` hex characters of the key's SHA-256 digest: enough
    to tell keys apart in logs and usage records, and useless for recovering the key. It is
    None for the anonymous caller of a cluster with authentication off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str | None = None

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
