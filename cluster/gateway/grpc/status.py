"""`cluster.errors` ↔ gRPC status codes: the one translation at the gRPC edge.

    InvalidRequest (ContextLengthExceeded, MalformedJSON)  INVALID_ARGUMENT
    ModelNotFound, NotFound                                NOT_FOUND
    Unauthenticated                                        UNAUTHENTICATED
    PermissionDenied                                       PERMISSION_DENIED
    BudgetExhausted                                        FAILED_PRECONDITION
    RateLimited, PayloadTooLarge, HeadersTooLarge          RESOURCE_EXHAUSTED
    EngineUnavailable (Overloaded), LedgerUnavailable      UNAVAILABLE
    DeadlineExceeded, RequestTimeout                       DEADLINE_EXCEEDED
    anything else                                          INTERNAL (a generic message)

The details string is the error's message (the same text the HTTP API sends); trailing
metadata carries what a program needs: `modelyard-error-kind` (the class name, so a client
can rebuild the typed error), `modelyard-error-code` and `modelyard-error-param` (set only
when the error has them); an error that knows when to retry (`retry_after_s`: RateLimited,
Overloaded) adds `retry-after` (seconds) and gRPC's own server pushback key
`grpc-retry-pushback-ms` (milliseconds), which gRPC's retry policy honours. The
most specific class wins (ContextLengthExceeded is an InvalidRequest), because the table is
searched along the error's MRO.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from cluster.errors import (
    BudgetExhausted,
    DeadlineExceeded,
    EngineUnavailable,
    ErrorInfo,
    HeadersTooLarge,
    InvalidRequest,
    LedgerUnavailable,
    ModelNotFound,
    ModelyardError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RequestTimeout,
    Unauthenticated,
)

KIND_KEY = "modelyard-error-kind"
CODE_KEY = "modelyard-error-code"
PARAM_KEY = "modelyard-error-param"
RETRY_AFTER_KEY = "retry-after"  # seconds (HTTP's Retry-After)
PUSHBACK_KEY = "grpc-retry-pushback-ms"  # the same, for gRPC's retry policy

Metadata = tuple[tuple[str, str], ...]

STATUS_BY_ERROR: dict[type[ModelyardError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ModelNotFound: grpc.StatusCode.NOT_FOUND,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    BudgetExhausted: grpc.StatusCode.FAILED_PRECONDITION,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    HeadersTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RequestTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    EngineUnavailable: grpc.StatusCode.UNAVAILABLE,
    LedgerUnavailable: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}

#: A status that arrived without our trailers (raised by gRPC itself: a deadline the client
#: enforced, a refused connection) → the error type it means. gRPC's own RESOURCE_EXHAUSTED
#: for an over-size message ("... larger than max ...") means `PayloadTooLarge`.
ERROR_BY_STATUS: dict[grpc.StatusCode, type[ModelyardError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: ModelNotFound,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.FAILED_PRECONDITION: BudgetExhausted,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.UNAVAILABLE: EngineUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}

GENERIC_INTERNAL = "The server had an error while processing your request."
#: How gRPC words its own RESOURCE_EXHAUSTED for an over-size message (either side).
_TOO_LARGE = "larger than max"


def status_of(err: ModelyardError) -> grpc.StatusCode:
    for cls in type(err).__mro__:
        code = STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def public_error(err: BaseException) -> ModelyardError:
    """What the caller may learn: a typed error as it is; anything else, only that it
    happened (the traceback stays in the server log)."""
    if isinstance(err, ModelyardError) and status_of(err) != grpc.StatusCode.INTERNAL:
        return err
    return ModelyardError(GENERIC_INTERNAL)


def trailers_of(err: ModelyardError) -> Metadata:
    pairs = [(KIND_KEY, type(err).__name__)]
    if err.code is not None:
        pairs.append((CODE_KEY, err.code))
    if err.param is not None:
        pairs.append((PARAM_KEY, err.param))
    if err.retry_after_s is not None:
        pairs.append((RETRY_AFTER_KEY, str(err.retry_after_s)))
        pairs.append((PUSHBACK_KEY, str(err.retry_after_s * 1000)))
    return tuple(pairs)


def error_from_status(
    code: grpc.StatusCode, details: str | None, trailers: Sequence[tuple[str, str | bytes]]
) -> ModelyardError:
    """The typed error a failed call means (client side): from our trailers when present,
    else from the status code alone."""
    found = {key: value for key, value in trailers if isinstance(value, str)}
    message = details or code.name
    kind = found.get(KIND_KEY)
    if kind is not None:
        info = ErrorInfo(
            kind=kind, message=message, param=found.get(PARAM_KEY), code=found.get(CODE_KEY)
        )
        err = info.to_exception()
        retry_after = found.get(RETRY_AFTER_KEY, "")
        if retry_after.isdigit():
            err.retry_after_s = int(retry_after)
        return err
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in message:
        return PayloadTooLarge(message)
    return ERROR_BY_STATUS.get(code, ModelyardError)(message)
