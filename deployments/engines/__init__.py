"""Engines behind the `cluster.engine.Engine` protocol.

- `deployments.engines.sim`: the simulator (no Ray, no vLLM; importable on its own).
- `deployments.engines.vllm`: the real engine (imports vLLM lazily).

Nothing is imported eagerly so that choosing one engine never loads the other.
"""
