"""The FHIR endpoints (Da Vinci PAS): `Claim/$submit`, `Claim/$inquire`, `Subscription`.

FHIR JSON in, `application/fhir+json` out. Every refusal is an OperationOutcome with the
element at fault: 400 for a broken PAS rule or a body that is not JSON, 401 / 403 for the
caller, 404, 409. Each route calls one use case of `PasService`, which owns the unit of work.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from priorauth.adapters.fhir import Problem, operation_outcome
from priorauth.entrypoints.api.refusals import refusal_headers, refusal_status
from priorauth.service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Throttled,
    Unauthenticated,
)
from priorauth.service.pas import FhirAnswer, PasService
from priorauth.service.people import Actor

__all__ = ["FHIR_JSON", "fhir_router"]

FHIR_JSON = "application/fhir+json"

_BODY = {
    "content": {FHIR_JSON: {"schema": {"type": "object"}}, "application/json": {}},
    "required": True,
}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "A PAS response Bundle", "content": {FHIR_JSON: {}}},
    400: {"description": "OperationOutcome: a broken PAS rule, naming the element"},
    401: {"description": "OperationOutcome: no or unknown bearer token"},
    403: {"description": "OperationOutcome: only submitters use these endpoints"},
    404: {"description": "OperationOutcome: no matching request"},
    409: {"description": "OperationOutcome: the claim identifier was used for another bundle"},
    429: {"description": "OperationOutcome: the account is over its rate limit (Retry-After)"},
}


def _fhir(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


# The OperationOutcome issue code of each refusal.
_ISSUE_CODE: dict[type[ServiceError], str] = {
    Unauthenticated: "login",
    Forbidden: "forbidden",
    NotFound: "not-found",
    Conflict: "conflict",
    Invalid: "invalid",
    Throttled: "throttled",
}


def _refused(exc: ServiceError) -> Response:
    code = _ISSUE_CODE.get(type(exc), "processing")
    if isinstance(exc, Invalid):
        problems = [
            Problem(p.field or "Bundle", "error", p.message, "invalid") for p in exc.problems
        ]
    else:
        problems = [Problem("Bundle", "error", str(exc), "invalid")]
    body = operation_outcome(problems)
    for issue in body["issue"]:
        issue["code"] = code
    response = _fhir(refusal_status(exc), body)
    response.headers.update(refusal_headers(exc))
    return response


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def fhir_router(pas: PasService) -> APIRouter:
    """The FHIR routes over a PAS service."""
    router = APIRouter(prefix="/fhir", tags=["fhir"])
    service = pas.service

    async def call(request: Request, use_case: Any, *args: Any) -> Response:
        token = _token(request)

        def authenticated() -> Response:
            # The caller, the use case and the JSON, in one trip to a worker thread.
            try:
                actor: Actor = service.authenticate(token)
                answer: FhirAnswer = use_case(actor, *args)
            except ServiceError as exc:
                return _refused(exc)
            return _fhir(answer.status, answer.body)

        response: Response = await run_in_threadpool(authenticated)
        return response

    @router.post("/Claim/$submit", responses=_ANSWERS, openapi_extra={"requestBody": _BODY})
    async def submit(request: Request) -> Response:
        """Submit a PAS request Bundle; answers the PAS response Bundle (A1 certified with
        its period and authorization number, or A4 pended with process notes). The same
        bundle again answers the same; `related.claim` updates an earlier request and
        certificationType 3 cancels it."""
        return await call(request, pas.submit, await request.body())

    @router.post("/Claim/$inquire", responses=_ANSWERS, openapi_extra={"requestBody": _BODY})
    async def inquire(request: Request) -> Response:
        """Look up one of the organization's requests by claim identifier, patient
        identifier, provider and insurer; answers its current PAS response Bundle."""
        return await call(request, pas.inquire, await request.body())

    @router.post(
        "/Subscription",
        status_code=201,
        responses={**_ANSWERS, 201: {"description": "The Subscription, active"}},
        openapi_extra={"requestBody": _BODY},
    )
    async def subscribe(request: Request) -> Response:
        """Register an R4 Backport rest-hook subscription (full-resource) for the caller's
        organization: each decision by a person on one of its requests is notified with
        the full PAS response Bundle."""
        return await call(request, pas.subscribe, await request.body())

    @router.get("/Subscription/{subscription_id}", responses=_ANSWERS)
    async def subscription(
        request: Request,
        subscription_id: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9a-f]+$")],
    ) -> Response:
        """One of the organization's subscriptions."""
        return await call(request, pas.subscription, subscription_id)

    return router
