"""modelyard's Ray-free core: configuration, catalog, API types, placement, pricing, telemetry."""
