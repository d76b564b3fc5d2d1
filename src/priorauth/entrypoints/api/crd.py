"""CDS Hooks (Da Vinci CRD) and DTR endpoints, the FHIR CapabilityStatement, and FHIR errors.

- `GET /cds-services`, `POST /cds-services/{id}`: the CRD services (CDS Hooks 2.0).
- `GET /fhir/metadata`: what the FHIR endpoints support, with the guides' versions.
- `POST /fhir/Questionnaire/$questionnaire-package`, `POST /fhir/Questionnaire/$next-question`
  (adaptive forms), `GET /fhir/Questionnaire/{id}`,
  `GET /fhir/Library/{id}`, `GET /fhir/ValueSet/{id}`, `ValueSet/$expand`,
  `POST /fhir/$log-questionnaire-errors`: DTR.
- Any 404 or 405 under /fhir or /cds-services is an OperationOutcome.

`add_crd_dtr(app, service)` adds all of it to the app.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from priorauth._version import __version__
from priorauth.adapters import cds
from priorauth.adapters.fhir import Problem, operation_outcome
from priorauth.adapters.fhir.problems import IssueCode
from priorauth.entrypoints.api.fhir import FHIR_JSON, _refused, _token
from priorauth.service.crd import CrdService
from priorauth.service.errors import ServiceError
from priorauth.service.pas import FhirAnswer
from priorauth.service.workflow import PriorAuthService

__all__ = ["add_crd_dtr", "capability_statement"]

_ID = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9\-.]+$")]
_GUIDES = {
    "http://hl7.org/fhir/us/davinci-pas/ImplementationGuide/hl7.fhir.us.davinci-pas": "2.1.0",
    "http://hl7.org/fhir/us/davinci-crd/ImplementationGuide/hl7.fhir.us.davinci-crd": "2.1.0",
    "http://hl7.org/fhir/us/davinci-dtr/ImplementationGuide/hl7.fhir.us.davinci-dtr": "2.1.0",
    "http://hl7.org/fhir/uv/sdc/ImplementationGuide/hl7.fhir.uv.sdc": "3.0.0",
}
_BODY = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "required": True}


def capability_statement(base: str) -> dict[str, Any]:
    """The CapabilityStatement of the FHIR endpoints."""
    operation = "http://hl7.org/fhir/us/davinci-{}/OperationDefinition/{}"
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": {"name": "priorauth", "version": __version__},
        "implementation": {"description": "priorauth payer service", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "implementationGuide": [f"{url}|{version}" for url, version in _GUIDES.items()],
        "rest": [
            {
                "mode": "server",
                "documentation": "CDS Hooks (CRD) discovery is at /cds-services.",
                "security": {
                    "description": "Bearer tokens of priorauth accounts (Authorization header)."
                },
                "resource": [
                    {
                        "type": "Claim",
                        "operation": [
                            {
                                "name": "submit",
                                "definition": operation.format("pas", "Claim-submit"),
                            },
                            {
                                "name": "inquire",
                                "definition": operation.format("pas", "Claim-inquiry"),
                            },
                        ],
                    },
                    {
                        "type": "Questionnaire",
                        "interaction": [{"code": "read"}],
                        "operation": [
                            {
                                "name": "questionnaire-package",
                                "definition": operation.format("dtr", "questionnaire-package"),
                            },
                            {
                                "name": "log-questionnaire-errors",
                                "definition": operation.format("dtr", "log-questionnaire-errors"),
                            },
                            {
                                "name": "next-question",
                                "definition": operation.format(
                                    "dtr", "DTR-Questionnaire-next-question"
                                ),
                                "documentation": "SDC adaptive forms: the form of a policy "
                                "is Questionnaire/{policy}.adaptive.",
                            },
                        ],
                    },
                    {"type": "Library", "interaction": [{"code": "read"}]},
                    {
                        "type": "ValueSet",
                        "interaction": [{"code": "read"}],
                        "operation": [
                            {
                                "name": "expand",
                                "definition": "http://hl7.org/fhir/OperationDefinition/"
                                "ValueSet-expand",
                            }
                        ],
                    },
                    {"type": "Subscription", "interaction": [{"code": "create"}, {"code": "read"}]},
                ],
            }
        ],
    }


def _fhir(answer: FhirAnswer, media_type: str = FHIR_JSON) -> Response:
    return Response(orjson.dumps(answer.body), status_code=answer.status, media_type=media_type)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _router(crd: CrdService) -> APIRouter:
    router = APIRouter(tags=["crd-dtr"])
    service = crd.service

    async def call(
        request: Request, use_case: Any, *args: Any, media_type: str = FHIR_JSON
    ) -> Response:
        token = _token(request)

        def authenticated() -> Response:
            try:
                actor = service.authenticate(token)
                answer: FhirAnswer = use_case(actor, *args)
            except ServiceError as exc:
                return _refused(exc)
            return _fhir(answer, media_type)

        response: Response = await run_in_threadpool(authenticated)
        return response

    @router.get("/cds-services")
    def services() -> Response:
        """CDS Hooks discovery: the CRD services with their prefetch templates."""
        return Response(orjson.dumps(cds.discovery()), media_type="application/json")

    @router.post("/cds-services/{service_id}", openapi_extra={"requestBody": _BODY})
    async def hook(request: Request, service_id: _ID) -> Response:
        """Call a CRD service with a CDS Hooks request; answers the coverage information as
        a systemAction on each medication order (and cards for what a person does), or an
        OperationOutcome (400) naming what is wrong with the call."""
        return await call(
            request,
            crd.hook,
            service_id,
            await request.body(),
            _base(request),
            media_type="application/json",
        )

    @router.get("/fhir/metadata")
    def metadata(request: Request) -> Response:
        """The CapabilityStatement: the operations and the guides' versions supported."""
        return _fhir(FhirAnswer(200, capability_statement(_base(request))))

    @router.post("/fhir/Questionnaire/$questionnaire-package", openapi_extra={"requestBody": _BODY})
    async def package(request: Request) -> Response:
        """DTR: the forms for an order (or the questionnaires named), each a Bundle of the
        Questionnaire, its Library, ValueSets and a pre-filled QuestionnaireResponse."""
        return await call(request, crd.questionnaire_package, await request.body(), _base(request))

    @router.post("/fhir/Questionnaire/$next-question", openapi_extra={"requestBody": _BODY})
    async def next_question(request: Request) -> Response:
        """SDC adaptive forms: the QuestionnaireResponse so far (alone, or as the
        `questionnaire-response` of a Parameters) in; back, the same response with the next
        questions in its contained Questionnaire, or `completed` with what the answers lead
        to; an OperationOutcome (400) naming what is wrong with the form."""
        return await call(request, crd.next_question, await request.body(), _base(request))

    for path in (
        "/fhir/$log-questionnaire-errors",
        "/fhir/Questionnaire/$log-questionnaire-errors",
    ):

        @router.post(path, openapi_extra={"requestBody": _BODY})
        async def log_errors(request: Request) -> Response:
            """DTR: a client reports the errors it met pre-filling a form."""
            return await call(request, crd.log_errors, await request.body())

    @router.get("/fhir/Questionnaire/$next-question", include_in_schema=False)
    @router.get("/fhir/Questionnaire/$questionnaire-package", include_in_schema=False)
    def operation_read() -> Response:
        """An operation is POSTed: a GET is a 405 (an OperationOutcome), not a read of a
        Questionnaire whose id could not be one."""
        raise StarletteHTTPException(405, headers={"Allow": "POST"})

    @router.get("/fhir/Questionnaire/{ident}")
    def questionnaire(request: Request, ident: _ID) -> Response:
        """A questionnaire generated from a policy."""
        return _fhir(crd.questionnaire(ident, _base(request)))

    @router.get("/fhir/Library/{ident}")
    def library(request: Request, ident: _ID) -> Response:
        """A policy's pre-population Library (CQL and ELM, generated)."""
        return _fhir(crd.library(ident, _base(request)))

    @router.get("/fhir/ValueSet/$expand")
    def expand(
        request: Request, url: Annotated[str | None, Query(max_length=400)] = None
    ) -> Response:
        """Expand a ValueSet named by its canonical `url`."""
        return _fhir(crd.expand(None, url, _base(request)))

    @router.get("/fhir/ValueSet/{ident}/$expand")
    def expand_one(request: Request, ident: _ID) -> Response:
        """Expand a ValueSet by id."""
        return _fhir(crd.expand(ident, None, _base(request)))

    @router.get("/fhir/ValueSet/{ident}")
    def value_set(request: Request, ident: _ID) -> Response:
        """A ValueSet of a policy's code set or choices."""
        return _fhir(crd.value_set(ident, _base(request)))

    return router


def add_crd_dtr(app: FastAPI, service: PriorAuthService) -> None:
    """Add the CRD and DTR routes, and FHIR-shaped 404/405 answers, to the app."""
    app.include_router(_router(CrdService(service)))

    @app.exception_handler(StarletteHTTPException)
    async def fhir_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if path.startswith(("/fhir", "/cds-services")) and exc.status_code in (404, 405):
            message = (
                "no such endpoint or resource"
                if exc.status_code == 404
                else "this method is not allowed here"
            )
            code: IssueCode = "not-found" if exc.status_code == 404 else "not-supported"
            body = operation_outcome([Problem(path[:200], "error", message, code)])
            response = Response(
                orjson.dumps(body), status_code=exc.status_code, media_type=FHIR_JSON
            )
            if exc.headers:
                response.headers.update(exc.headers)
            return response
        return await http_exception_handler(request, exc)
