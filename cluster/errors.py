"""The one exception tree of modelyard.

Every failure inside the system is raised as a subclass of `ModelyardError`; each front door
translates it exactly once (HTTP: status + OpenAI error object; gRPC: status code).

    ModelyardError                      500  internal_error
    ├── InvalidRequest                  400  invalid_request_error   (names `param`)
    │   ├── ContextLengthExceeded       400  code=context_length_exceeded
    │   └── MalformedJSON               400  code=invalid_json
    ├── Unauthenticated                 401  authentication_error
    ├── PermissionDenied                403  permission_error
    ├── BudgetExhausted                 402  insufficient_quota (FAILED_PRECONDITION)
    ├── ModelNotFound                   404  code=model_not_found
    ├── NotFound                        404  code=not_found (a ledger record, a key)
    ├── PayloadTooLarge                 413  code=payload_too_large
    ├── RateLimited                     429  rate_limit_error (RESOURCE_EXHAUSTED)
    ├── EngineUnavailable               503  service_unavailable (UNAVAILABLE)
    │   └── Overloaded                  503  code=overloaded, Retry-After (UNAVAILABLE)
    ├── RequestTimeout                  408  code=request_timeout (DEADLINE_EXCEEDED)
    ├── HeadersTooLarge                 431  code=headers_too_large (RESOURCE_EXHAUSTED)
    ├── LedgerUnavailable               503  code=ledger_unavailable (UNAVAILABLE)
    ├── DeadlineExceeded                504  timeout (DEADLINE_EXCEEDED)
    └── ConfigError                     raised at load, never over the wire

`ErrorInfo` is the serialisable form used when an error crosses a process boundary
(a Ray Serve handle, an SSE `error` event); `ErrorInfo.raise_()` restores the typed error.
"""

from __future__ import annotations

from typing import ClassVar, NoReturn

from pydantic import BaseModel, ConfigDict


class ModelyardError(Exception):
    http_status: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after_s: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        #: Seconds a client should wait before trying again (HTTP `Retry-After`), if known.
        self.retry_after_s = retry_after_s

    def info(self) -> ErrorInfo:
        return ErrorInfo(
            kind=type(self).__name__, message=self.message, param=self.param, code=self.code
        )


class InvalidRequest(ModelyardError):
    http_status = 400
    error_type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    default_code = "context_length_exceeded"


class MalformedJSON(InvalidRequest):
    default_code = "invalid_json"


class Unauthenticated(ModelyardError):
    http_status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(ModelyardError):
    http_status = 403
    error_type = "permission_error"


class BudgetExhausted(ModelyardError):
    """The key's budget cannot cover this request's worst-case cost (HTTP 402)."""

    http_status = 402
    error_type = "insufficient_quota"
    default_code = "budget_exhausted"


class ModelNotFound(ModelyardError):
    http_status = 404
    error_type = "invalid_request_error"
    default_code = "model_not_found"


class NotFound(ModelyardError):
    http_status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class PayloadTooLarge(ModelyardError):
    http_status = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class RateLimited(ModelyardError):
    """Over a rate; `retry_after_s` (when known) becomes HTTP's `Retry-After`."""

    http_status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class EngineUnavailable(ModelyardError):
    http_status = 503
    error_type = "service_unavailable"
    default_code = "engine_unavailable"


class Overloaded(EngineUnavailable):
    """Every replica of the model is busy and the wait queue is full: refused at once."""

    default_code = "overloaded"


class RequestTimeout(ModelyardError):
    http_status = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class HeadersTooLarge(ModelyardError):
    http_status = 431
    error_type = "invalid_request_error"
    default_code = "headers_too_large"


class LedgerUnavailable(ModelyardError):
    """The usage ledger could not record a request: the client gets this, not an unbilled
    answer."""

    http_status = 503
    error_type = "service_unavailable"
    default_code = "ledger_unavailable"


class DeadlineExceeded(ModelyardError):
    http_status = 504
    error_type = "timeout"
    default_code = "deadline_exceeded"


class ConfigError(ModelyardError):
    """A configuration file or value is wrong; the message names the field."""


_KINDS: dict[str, type[ModelyardError]] = {
    cls.__name__: cls
    for cls in (
        ModelyardError,
        InvalidRequest,
        ContextLengthExceeded,
        MalformedJSON,
        Unauthenticated,
        PermissionDenied,
        BudgetExhausted,
        ModelNotFound,
        NotFound,
        PayloadTooLarge,
        RateLimited,
        EngineUnavailable,
        Overloaded,
        RequestTimeout,
        HeadersTooLarge,
        LedgerUnavailable,
        DeadlineExceeded,
        ConfigError,
    )
}


class ErrorInfo(BaseModel):
    """A typed error in a form that survives pickling and JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    message: str
    param: str | None = None
    code: str | None = None

    def to_exception(self) -> ModelyardError:
        cls = _KINDS.get(self.kind, ModelyardError)
        return cls(self.message, param=self.param, code=self.code)

    def raise_(self) -> NoReturn:
        raise self.to_exception()
