"""How a use case's refusal (a ServiceError) answers over HTTP, for both APIs: the status and
the headers that go with it. Each API writes its own body (problem JSON, OperationOutcome)."""

from __future__ import annotations

from priorauth.service.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    Throttled,
    Unauthenticated,
)

__all__ = ["refusal_headers", "refusal_status"]

_STATUS: dict[type[ServiceError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Throttled: 429,
}


def refusal_status(exc: ServiceError) -> int:
    """The HTTP status of a refusal; 400 for any other (Invalid input among them)."""
    return _STATUS.get(type(exc), 400)


def refusal_headers(exc: ServiceError) -> dict[str, str]:
    """What a client needs beside the body: how to authenticate, or how long to wait."""
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, Throttled):
        return {"Retry-After": str(exc.retry_after)}
    return {}
