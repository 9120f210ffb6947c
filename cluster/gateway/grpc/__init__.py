"""gRPC API for internal services: servicer, server builder, typed client (see docs/GRPC.md)."""
