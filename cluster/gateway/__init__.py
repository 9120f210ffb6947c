"""The front doors on top of the core: the OpenAI HTTP app (`http`), the gRPC servicer
(`grpc`), the service both share (`service`), API-key auth (`auth`) and telemetry
(`telemetry`). The rest of `cluster` (the core) never imports this package."""
