"""The core shared by every front door: backends, model resolution, the gateway service."""

from cluster.gateway.service.backend import EngineBackend, ModelBackend
from cluster.gateway.service.gateway import (
    GatewayService,
    engine_label,
    internal_error,
    system_fingerprint,
)
from cluster.gateway.service.resolver import ModelResolver, ResolvedModel

__all__ = [
    "EngineBackend",
    "GatewayService",
    "ModelBackend",
    "ModelResolver",
    "ResolvedModel",
    "engine_label",
    "internal_error",
    "system_fingerprint",
]
