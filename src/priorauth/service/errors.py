"""Errors the use cases raise; entry points map each one to a status.

The tree::

    ServiceError
    ├── Unauthenticated     no or unknown bearer token                      (401)
    ├── Forbidden           the role may not do this (never about a case)   (403)
    ├── NotFound            no such case, or not one this caller may see    (404)
    ├── Conflict            the request_id was used for a different body,   (409)
    │                       or the case is not in a state for this action
    └── Invalid             field-level problems (`problems`)               (422)
"""

from __future__ import annotations

from priorauth.errors import FieldProblem

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "ServiceError",
    "Throttled",
    "Unauthenticated",
]


class ServiceError(Exception):
    """The base of the errors a use case raises on purpose."""


class Unauthenticated(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class Invalid(ServiceError):
    """Input that does not fit; each problem names its field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class Throttled(ServiceError):
    """An account over its rate limit; `retry_after` is how many seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
