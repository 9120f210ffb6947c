"""Authenticators of static API keys, and the choice between them at start.

A presented key is hashed and its digest compared with every configured digest using
`hmac.compare_digest` (constant time, and the loop never stops early), so response timing
says nothing about how close a guess was or which key matched.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

from cluster.config.settings import AuthSettings
from cluster.errors import Unauthenticated
from cluster.gateway.auth.keys import (
    WRONG_KEY,
    bearer_token,
    configured_digests,
    digest_key,
    key_id,
)
from cluster.gateway.auth.protocol import ANONYMOUS, Authenticator, Principal

_log = logging.getLogger(__name__)


class StaticKeyAuthenticator:
    """Accepts `Bearer <key>` when SHA-256(key) is one of `digests` (lowercase hex)."""

    def __init__(self, digests: Iterable[str]) -> None:
        self._digests = tuple(sorted(set(digests)))
        if not self._digests:
            raise ValueError("StaticKeyAuthenticator needs at least one digest")

    @property
    def enabled(self) -> bool:
        return True

    async def authenticate(self, authorization: str | None) -> Principal:
        presented = digest_key(bearer_token(authorization))
        match: str | None = None
        for digest in self._digests:
            if hmac.compare_digest(presented, digest):
                match = digest
        if match is None:
            raise Unauthenticated(WRONG_KEY)
        return Principal(key_id=key_id(match))


class OpenAccess:
    """Local mode: no keys configured, every caller is the anonymous principal."""

    @property
    def enabled(self) -> bool:
        return False

    async def authenticate(self, authorization: str | None) -> Principal:
        return ANONYMOUS


def build_authenticator(
    settings: AuthSettings, *, log: logging.Logger | None = None
) -> Authenticator:
    """The authenticator a cluster file asks for; says at start whether auth is on."""
    log = log or _log
    digests = configured_digests(settings)
    if not digests:
        log.warning(
            "authentication is OFF (local mode): no API keys are configured "
            "(auth.api_key_sha256 / auth.api_keys_file); every caller is accepted"
        )
        return OpenAccess()
    log.info("authentication is on: %d API key digest(s) configured", len(digests))
    return StaticKeyAuthenticator(digests)
