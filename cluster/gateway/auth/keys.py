"""API keys as SHA-256 digests: hashing, the `Bearer` scheme, and reading configured digests.

Only digests are ever stored or configured; a presented key is hashed at once and the key
itself never reaches a log line or an error message.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cluster.config.settings import AuthSettings
from cluster.errors import ConfigError, Unauthenticated

KEY_ID_CHARS = 12
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+(\S+)[ \t]*")

MISSING_KEY = (
    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
    "(gRPC: the 'authorization' metadata entry)."
)
MALFORMED_HEADER = "The authorization value must have the form 'Bearer <key>'."
WRONG_KEY = "Incorrect API key provided."


def digest_key(key: str) -> str:
    """The SHA-256 hex digest under which `key` is configured."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(digest: str) -> str:
    return digest[:KEY_ID_CHARS]


def bearer_token(authorization: str | None) -> str:
    """The key in 'Bearer <key>' (scheme case-insensitive, as RFC 7235 says)."""
    if authorization is None or not authorization.strip():
        raise Unauthenticated(MISSING_KEY)
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        raise Unauthenticated(MALFORMED_HEADER, code="invalid_authorization_header")
    return match.group(1)


def read_digest_file(path: Path) -> list[str]:
    """Digests from a file: one per line, blank lines and '#' comments ignored.

    A bad line is reported by its number only: it might be a key pasted by mistake.
    """
    try:
        text = path.read_text("utf-8")
    except OSError as err:
        raise ConfigError(
            f"auth.api_keys_file: cannot read {path}: {err.strerror}", param="auth.api_keys_file"
        ) from None
    digests = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip().lower()
        if not value:
            continue
        if not _SHA256_HEX.fullmatch(value):
            raise ConfigError(
                f"auth.api_keys_file: {path} line {number} is not a SHA-256 hex digest "
                "(64 hex characters); the file holds digests of keys, never keys",
                param="auth.api_keys_file",
            )
        digests.append(value)
    return digests


def configured_digests(settings: AuthSettings) -> frozenset[str]:
    """Every accepted digest: the inline list plus the file's."""
    digests = list(settings.api_key_sha256)
    if settings.api_keys_file is not None:
        digests += read_digest_file(settings.api_keys_file)
    return frozenset(digests)
