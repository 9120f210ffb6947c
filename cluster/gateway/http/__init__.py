"""The OpenAI-compatible HTTP front door (FastAPI) over `cluster.gateway.service.GatewayService`."""

from cluster.gateway.http.app import ENGINE_HEADER, build_gateway_app, create_app

__all__ = ["ENGINE_HEADER", "build_gateway_app", "create_app"]
