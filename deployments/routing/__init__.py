"""Parts of the model deployments' Serve request router (`deployments.routing.request_router`).

- `prompts`: an `EngineRequest` → `RouteRequest` (prompt length, block hashes).
- `loads`: replica load from this router's in-flight requests and the replicas' reports.
- `config`: the router's kwargs and the deployment's `request_router_config` option.
- `introspect`: reach a handle's router from the same process (debug endpoint, tests).
"""
