"""Checks on every HTTP request before any route sees it: no NUL character in the URL.

A NUL (`%00`) in a path or a query parameter would reach the database as a bound value, which
PostgreSQL refuses with an error (a 500); it is refused here with a 422, or with an
OperationOutcome on the FHIR routes, whatever the route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

__all__ = ["NoNulInUrl"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MESSAGE = "a NUL character is not accepted in the path or the query"


def _has_nul(scope: Scope) -> bool:
    path = scope.get("raw_path") or scope.get("path", "").encode()
    query: bytes = scope.get("query_string", b"")
    return b"\x00" in unquote_to_bytes(path) or b"\x00" in unquote_to_bytes(query)


class NoNulInUrl:
    """Refuse a request whose path or query holds a NUL character (422)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_nul(scope):
            await self.app(scope, receive, send)
            return
        body: dict[str, Any]
        if scope.get("path", "").startswith("/fhir/"):
            media_type = b"application/fhir+json"
            body = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "invalid", "diagnostics": _MESSAGE}],
            }
        else:
            media_type = b"application/json"
            body = {
                "title": "invalid input",
                "status": 422,
                "detail": [{"field": "url", "message": _MESSAGE}],
            }
        content = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [
                    (b"content-type", media_type),
                    (b"content-length", str(len(content)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})
