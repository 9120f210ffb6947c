"""API-key authentication shared by the HTTP and gRPC front doors.

Keys are configured as SHA-256 hex digests (`auth` in the cluster file); callers send
`authorization: Bearer <key>`. With no key configured, authentication is off (local mode).
"""

from cluster.gateway.auth.keys import bearer_token, configured_digests, digest_key
from cluster.gateway.auth.protocol import ANONYMOUS, Authenticator, Principal
from cluster.gateway.auth.static_keys import OpenAccess, StaticKeyAuthenticator, build_authenticator

__all__ = [
    "ANONYMOUS",
    "Authenticator",
    "OpenAccess",
    "Principal",
    "StaticKeyAuthenticator",
    "bearer_token",
    "build_authenticator",
    "configured_digests",
    "digest_key",
]
