"""The HTTP API (FastAPI): parse, call the service, map its errors to statuses.

Versioned under /v1; the OpenAPI document is at /openapi.json. Routes never open database
sessions: each calls one use case of `PriorAuthService`, which owns the unit of work.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from priorauth import sizes
from priorauth._version import __version__
from priorauth.engine.request import Request as RequestContract
from priorauth.entrypoints.api.crd import add_crd_dtr
from priorauth.entrypoints.api.fhir import fhir_router
from priorauth.entrypoints.api.guards import NoNulInUrl
from priorauth.entrypoints.api.prometheus import (
    PROMETHEUS_TEXT,
    RequestMetrics,
    render_metrics,
)
from priorauth.entrypoints.api.refusals import refusal_headers, refusal_status
from priorauth.entrypoints.api.views import (
    AuthorizationView,
    CaseDetail,
    CaseSummary,
    FoundCase,
    PolicyDetail,
    PolicyVersionView,
    QueueItem,
)
from priorauth.entrypoints.web import web_router
from priorauth.errors import FieldProblem
from priorauth.service import decisions
from priorauth.service.errors import (
    Invalid,
    ServiceError,
)
from priorauth.service.metrics import metrics_csv
from priorauth.service.pas import PasService
from priorauth.service.people import Actor
from priorauth.service.workflow import Decision, ModifiedRegimen, PriorAuthService
from priorauth.sizes import no_nul

__all__ = ["create_app"]

log = logging.getLogger("priorauth.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CaseId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9a-f]+$")]
# Text fields and names stored in columns: never a NUL, never longer than the column
# (priorauth.sizes).
Text = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(no_nul)]
Identifier = Annotated[
    str, Field(min_length=1, max_length=sizes.MEMBER_ID, pattern=r"^[A-Za-z0-9._:-]+$")
]


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("a request is a JSON object")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Submission(_Body):
    """A request to decide, with the member it is for (the request itself names no member)."""

    member_id: Identifier
    line_of_business: Identifier = "medicare-advantage"
    # Published as the request contract, so clients and fuzzers see every field; checked by
    # the service (parse_request), which names each field at fault the same way for every API.
    request: Annotated[
        dict[str, Any], PlainValidator(_json_object, json_schema_input_type=RequestContract)
    ] = Field(description="The prior-authorization request (`priorauth schema request`).")


class Information(_Body):
    """New facts, laid over the stored request: objects merge; entries of `conditions`,
    `observations`, `medications`, `allergies` and `practitioners` take the place of the stored
    entry about the same thing (the same code, the prescriber) or are added."""

    request: dict[str, Any]


class DecisionBody(_Body):
    """A reviewer's decision. A denial gives its `reason_code` and a `reason` in the reviewer's
    words, and names the unmet `criterion` (e.g. `B.i`) or the `dose_rule` when the code is
    about one; `approve-modified` gives the `regimen` approved, its `dose` and `schedule` spelt
    as in the request's `service`; `request-info` gives the `questions` and may give
    `information_due`; `refer` sends the case to a medical director."""

    action: Literal["approve", "approve-modified", "deny", "request-info", "refer"]
    reason: Text | None = None
    criterion: (
        Annotated[str, Field(min_length=1, max_length=sizes.CRITERION), AfterValidator(no_nul)]
        | None
    ) = None
    dose_rule: (
        Annotated[str, Field(min_length=1, max_length=sizes.DOSE_RULE), AfterValidator(no_nul)]
        | None
    ) = None
    regimen: ModifiedRegimen | None = None
    reason_code: Annotated[str, Field(min_length=1, max_length=40)] | None = Field(
        None,
        description="A denial's specific reason, a code of the review rules' table: "
        "criterion-not-met, not-covered-indication, dose-outside-policy, safety, "
        "information-not-received, no-policy.",
    )
    questions: Annotated[list[Text], Field(max_length=20)] = Field(
        default_factory=list, description="request-info: the questions for the provider."
    )
    information_due: dt.datetime | None = Field(
        None, description="request-info: when the answers are due (default: the rules' days)."
    )


class ReasonBody(_Body):
    reason: Text


class AssignBody(_Body):
    """The account name of the reviewer who is to hold the case."""

    to: Annotated[str, Field(min_length=1, max_length=sizes.ACCOUNT_NAME), AfterValidator(no_nul)]


class NoteBody(_Body):
    """A note on the case for the other reviewers (never shown to the submitter)."""

    text: Text


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown bearer token"},
    403: {"description": "The role may not do this"},
    404: {"description": "No such request (or not one the caller may see)"},
    409: {"description": "Conflict with the request's state or an earlier submission"},
    413: {"description": "Body too large"},
    422: {"description": "Field-level problems"},
    429: {"description": "The account is over its rate limit (see Retry-After)"},
}


_bearer = HTTPBearer(auto_error=False)


async def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    service: PriorAuthService = request.app.state.service
    token = credentials.credentials if credentials else None
    return await run_in_threadpool(service.authenticate, token)


Caller = Annotated[Actor, Depends(_caller)]


class Json(JSONResponse):
    """JSON written by orjson straight from the service's plain data (no jsonable_encoder pass,
    which costs more than the whole decision for a large determination)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _problem(status: int, title: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"title": title, "status": status, **extra}, status_code=status)


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413, whether or not Content-Length is given."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _problem(413, "body too large", limit_bytes=self.limit)(
                        scope, receive, send
                    )
                    return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Answer 413 now and tell the app the client has gone, so it stops reading;
                    # whatever it tries to send afterwards is dropped.
                    refused = True
                    await _problem(413, "body too large", limit_bytes=self.limit)(
                        scope, receive, send
                    )
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:
                raise


class ObserveRequests:
    """Each request counted in the metrics (/metrics) and logged in one line: method, route
    template, status, time. Never ids, queries or bodies, so no health information reaches the
    log. One middleware measures both (they once each wrapped every request)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            route = getattr(scope.get("route"), "path", "<unmatched>")
            took = time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status, took)
            log.info("%s %s %d %.1fms", scope["method"], route, status, 1000 * took)


def create_app(service: PriorAuthService) -> FastAPI:
    """The API over a started service (migrated database, policies registered)."""
    app = FastAPI(
        title="priorauth",
        version=__version__,
        description="Prior-authorization decisions, review queue, appeals, audit and metrics.",
        # /docs is served by the workbench from the vendored Swagger UI (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if isinstance(exc, Invalid):
            return _problem(
                422,
                "invalid input",
                detail=[{"field": p.field, "message": p.message} for p in exc.problems],
            )
        response = _problem(refusal_status(exc), str(exc))
        response.headers.update(refusal_headers(exc))
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ()) if p != "body"]
            detail.append({"field": ".".join(loc), "message": str(error.get("msg", "invalid"))})
        return _problem(422, "invalid input", detail=detail)

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return _problem(503, "the database is unavailable; try again")

    # ------------------------------------------------------------------ health

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["health"], responses={503: {"description": "Not ready"}})
    def ready() -> dict[str, Any]:
        """Readiness: the database answers and the policies are loaded."""
        return {"status": "ready", **service.ready()}

    request_metrics = RequestMetrics()

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests by route and status, latencies, open cases per
        queue, overdue cases, the notification outbox (counts only, no identifiers)."""
        return PlainTextResponse(
            render_metrics(service, request_metrics), media_type=PROMETHEUS_TEXT
        )

    @app.post("/v1/noop", tags=["health"], responses=_ERRORS)
    async def noop(request: Request, caller: Caller) -> dict[str, bool]:
        """Checks the token, reads the body and does nothing: the baseline for the load
        benchmark."""
        await request.body()
        return {"ok": True}

    # ------------------------------------------------------------------ requests

    @app.post(
        "/v1/requests",
        tags=["requests"],
        status_code=201,
        responses=_ERRORS,
        response_model=CaseSummary,
    )
    def submit(body: Submission, caller: Caller) -> Response:
        """Submit a request; it is approved at once or pended to a reviewer with a due time.

        Idempotent on `request.request_id` per organization: the same body again returns the
        first answer (200), a different body is a 409.
        """
        result = service.submit(caller, body.request, body.member_id, body.line_of_business)
        return Json(result.case, status_code=201 if result.created else 200)

    @app.get(
        "/v1/requests",
        tags=["requests"],
        responses=_ERRORS,
        response_model=list[FoundCase],
    )
    def find(
        caller: Caller,
        request_id: Annotated[
            str, Query(min_length=1, max_length=sizes.REQUEST_ID, pattern=r"^[A-Za-z0-9._:-]+$")
        ],
    ) -> Response:
        """The cases with the request_id their submitter gave (a submitter sees its own
        organization's only): each case id with its status; read one for the rest."""
        return Json(service.find(caller, request_id))

    @app.get(
        "/v1/requests/{case_id}",
        tags=["requests"],
        responses=_ERRORS,
        response_model=CaseDetail,
    )
    def read(case_id: CaseId, caller: Caller) -> Response:
        """A request with its determinations, reviews, appeals, notices and history."""
        return Json(service.read(caller, case_id))

    @app.get(
        "/v1/requests/{case_id}/notices/{notice_id}",
        tags=["requests"],
        responses={
            **_ERRORS,
            200: {
                "description": "The notice, as PDF or HTML",
                "content": {"application/pdf": {}, "text/html": {}},
            },
        },
        response_class=Response,
    )
    def notice(
        case_id: CaseId,
        notice_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
        caller: Caller,
        form: Annotated[
            Literal["pdf", "html"], Query(alias="format", description="pdf or html")
        ] = "pdf",
    ) -> Response:
        """A notice of a reviewer's decision on the request (its id is in the request's
        `notices`): the letter with the specific reason, the criterion and the appeal rights,
        as the provider or member receives it. An audited read."""
        content = service.notice(caller, case_id, notice_id, as_pdf=form == "pdf")
        if form == "html":
            return Response(content, media_type="text/html; charset=utf-8")
        return Response(
            content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="notice-{notice_id}.pdf"'},
        )

    @app.post(
        "/v1/requests/{case_id}/information",
        tags=["requests"],
        responses=_ERRORS,
        response_model=CaseSummary,
    )
    def add_information(case_id: CaseId, body: Information, caller: Caller) -> Response:
        """Add the missing information; the request is decided again at once."""
        return Json(service.add_information(caller, case_id, body.request))

    @app.post(
        "/v1/requests/{case_id}/appeal",
        tags=["requests"],
        responses=_ERRORS,
        response_model=CaseSummary,
    )
    def appeal(case_id: CaseId, body: ReasonBody, caller: Caller) -> Response:
        """Appeal a denial or a modified approval; another medical director decides it."""
        return Json(service.appeal(caller, case_id, body.reason))

    # ------------------------------------------------------------------ review

    @app.get("/v1/queue", tags=["review"], responses=_ERRORS, response_model=list[QueueItem])
    def queue(
        caller: Caller,
        queue: Annotated[str | None, Query(max_length=sizes.QUEUE)] = None,
        status: Annotated[
            Literal["pended", "information-requested", "appealed"] | None, Query()
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> Response:
        """Open requests, soonest due first (overdue first), with the time left."""
        return Json(service.queue(caller, queue, status, limit))

    @app.post(
        "/v1/requests/{case_id}/decision",
        tags=["review"],
        responses=_ERRORS,
        response_model=CaseSummary,
    )
    def decide(case_id: CaseId, body: DecisionBody, caller: Caller) -> Response:
        """A pharmacist's or medical director's decision."""
        return _decide(case_id, body, caller)

    @app.post("/v1/requests/{case_id}/claim", tags=["review"], status_code=204, responses=_ERRORS)
    def claim(case_id: CaseId, caller: Caller) -> Response:
        """Take an open case to work on, as the workbench's Claim does (409 when another
        reviewer holds it; 403 when the case's queue is not the caller's to work)."""
        decisions.claim(service, caller, case_id)
        return Response(status_code=204)

    @app.post("/v1/requests/{case_id}/release", tags=["review"], status_code=204, responses=_ERRORS)
    def release(case_id: CaseId, caller: Caller) -> Response:
        """Give a case back to its queue (the holder, or an admin)."""
        decisions.release(service, caller, case_id)
        return Response(status_code=204)

    @app.post("/v1/requests/{case_id}/assign", tags=["review"], status_code=204, responses=_ERRORS)
    def assign(case_id: CaseId, body: AssignBody, caller: Caller) -> Response:
        """An admin gives a case to a reviewer who decides its queue (an appeal: a medical
        director)."""
        decisions.assign(service, caller, case_id, body.to)
        return Response(status_code=204)

    @app.post("/v1/requests/{case_id}/notes", tags=["review"], status_code=204, responses=_ERRORS)
    def add_note(case_id: CaseId, body: NoteBody, caller: Caller) -> Response:
        """A note for the other reviewers, on the case page and in its timeline; never shown to
        the submitter."""
        decisions.add_note(service, caller, case_id, body.text)
        return Response(status_code=204)

    def _decide(case_id: str, body: DecisionBody, caller: Actor) -> Response:
        return Json(
            service.decide(
                caller,
                case_id,
                Decision(
                    action=body.action,
                    reason=body.reason,
                    criterion=body.criterion,
                    dose_rule=body.dose_rule,
                    regimen=(
                        body.regimen.model_dump(mode="json", exclude_none=True)
                        if body.regimen
                        else None
                    ),
                    reason_code=body.reason_code,
                    questions=tuple(body.questions),
                    information_due=body.information_due,
                ),
            )
        )

    @app.post(
        "/v1/requests/{case_id}/extension",
        tags=["review"],
        responses=_ERRORS,
        response_model=CaseSummary,
    )
    def extend(case_id: CaseId, body: ReasonBody, caller: Caller) -> Response:
        """Extend the decision clock once, with a reason."""
        return Json(service.extend(caller, case_id, body.reason))

    # ------------------------------------------------------------------ inquiries

    @app.get(
        "/v1/authorizations",
        tags=["inquiries"],
        responses=_ERRORS,
        response_model=list[AuthorizationView],
    )
    def authorizations(
        caller: Caller,
        member_id: Annotated[str, Query(min_length=1, max_length=sizes.MEMBER_ID)],
    ) -> Response:
        """A member's authorizations; a continuation names the one it continues."""
        return Json(service.authorizations(caller, member_id))

    @app.get(
        "/v1/policies",
        tags=["inquiries"],
        responses=_ERRORS,
        response_model=list[PolicyVersionView],
    )
    def policies(caller: Caller) -> Response:
        """Every policy version loaded, and which are in force."""
        return Json(service.policy_versions())

    @app.get(
        "/v1/policies/{policy_id}",
        tags=["inquiries"],
        responses=_ERRORS,
        response_model=PolicyDetail,
    )
    def policy(
        policy_id: Annotated[str, Path(min_length=1, max_length=sizes.POLICY_ID)],
        caller: Caller,
    ) -> Response:
        """One policy's versions, each with its content hash and YAML text."""
        return Json(service.policy_detail(policy_id))

    @app.get(
        "/v1/metrics",
        tags=["inquiries"],
        responses={**_ERRORS, 200: {"content": {"text/csv": {}, "application/json": {}}}},
    )
    def metrics(
        caller: Caller,
        start: Annotated[dt.date | None, Query(alias="from")] = None,
        end: Annotated[dt.date | None, Query(alias="to")] = None,
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> Response:
        """CMS-0057-F style figures for decisions from `from` up to and including `to`."""
        today = dt.datetime.now(dt.UTC).date()
        end = end or today
        start = start or end.replace(month=1, day=1)
        if start > end:
            raise Invalid([FieldProblem("from", "comes after `to`")])
        if end >= dt.date.max:
            raise Invalid([FieldProblem("to", "too far in the future")])
        report = service.metrics(
            caller,
            dt.datetime.combine(start, dt.time(), dt.UTC),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
        )
        if format == "csv":
            return PlainTextResponse(metrics_csv(report), media_type="text/csv")
        return JSONResponse(report)

    app.include_router(fhir_router(PasService(service)))
    app.include_router(web_router(service))
    add_crd_dtr(app, service)
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes)
    app.add_middleware(NoNulInUrl)
    app.add_middleware(ObserveRequests, metrics=request_metrics)
    return app
