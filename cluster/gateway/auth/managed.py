"""`ManagedKeyAuthenticator`: managed keys from the ledger, and static digests beside them.

    myd-<id>-<secret>  → the ledger's key (`cluster.ledger.keys.KeyStore.verify`):
                         unknown or wrong secret 401, revoked or expired 403
    any other key      → the configured static digests (`StaticKeyAuthenticator`), if any;
                         else 401

The database lookup runs on a worker thread. Messages never contain the presented key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from cluster.config.settings import AuthSettings
from cluster.errors import PermissionDenied, Unauthenticated
from cluster.gateway.auth.keys import WRONG_KEY, bearer_token, configured_digests
from cluster.gateway.auth.protocol import KeyLimits, Principal
from cluster.gateway.auth.static_keys import StaticKeyAuthenticator
from cluster.ledger.keys import KeyStore, parse_key

_log = logging.getLogger(__name__)


class ManagedKeyAuthenticator:
    def __init__(
        self,
        store: KeyStore,
        static: StaticKeyAuthenticator | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._static = static
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return True

    async def authenticate(self, authorization: str | None) -> Principal:
        key = bearer_token(authorization)
        if parse_key(key) is None:
            if self._static is not None:
                return await self._static.authenticate(authorization)
            raise Unauthenticated(WRONG_KEY)
        info = await asyncio.to_thread(self._store.verify, key)
        if info is None:
            raise Unauthenticated(WRONG_KEY)
        if info.revoked_at is not None:
            raise PermissionDenied(f"The API key {info.id} has been revoked.", code="key_revoked")
        if info.expires_at is not None and info.expires_at <= self._clock():
            raise PermissionDenied(f"The API key {info.id} has expired.", code="key_expired")
        limits = KeyLimits(
            models=None if info.models is None else tuple(info.models),
            rpm=info.rpm,
            tpm=info.tpm,
            budgeted=info.budget is not None,
        )
        return Principal(key_id=info.id, name=info.name, limits=limits)


def build_key_authenticator(settings: AuthSettings, store: KeyStore) -> ManagedKeyAuthenticator:
    """Keys mode: managed keys, and the configured static digests beside them."""
    digests = configured_digests(settings)
    static = StaticKeyAuthenticator(digests) if digests else None
    _log.info(
        "authentication is on: managed keys (ledger)%s",
        f" and {len(digests)} static key digest(s)" if digests else "",
    )
    return ManagedKeyAuthenticator(store, static)
