"""The reviewer's workbench: server-rendered pages (Jinja2, htmx for the live parts).

Included in the API app with one line (`app.include_router(web_router(service))`). Pages:
sign-in and sign-out, the worklist, a case with its decision form, notices (HTML and PDF),
the dashboard, the policies, and the API documentation (/docs) from vendored Swagger UI.
Every asset is served from the package (static/), so the pages work offline.

Only staff (pharmacists, medical directors, admins) reach /work; a submitter's session gets
403 on every page there. Every POST checks the session's CSRF token.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from priorauth.entrypoints.web import views
from priorauth.entrypoints.web.charts import bars
from priorauth.entrypoints.web.sessions import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SessionData,
    Signer,
    same,
    session_secret,
)
from priorauth.errors import FieldProblem
from priorauth.service import decisions, notices, workbench
from priorauth.service.errors import Invalid, NotFound, ServiceError, Unauthenticated
from priorauth.service.people import Actor, hash_token
from priorauth.service.workflow import PriorAuthService

__all__ = ["web_router"]

HTMX = "/static/vendor/htmx-2.0.11/htmx.min.js"
SWAGGER = "/static/vendor/swagger-ui-5.35.0/"
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_FINGERPRINT = 16

CaseId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9a-f]+$")]
Filter = Annotated[str | None, Query(max_length=64)]


class _Denied(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _countdown(seconds: int | None) -> str:
    if seconds is None:
        return ""
    sign = "overdue by " if seconds < 0 else ""
    left = abs(seconds)
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes} min"
    else:
        text = f"{minutes} min"
    return sign + text + ("" if sign else " left")


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("priorauth.entrypoints.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["countdown"] = _countdown
    env.filters["when"] = _when
    env.globals["HTMX"] = HTMX
    return env


def web_router(
    service: PriorAuthService,
    *,
    session_minutes: float = 30,
    secure_cookies: bool = True,
    secret: bytes | None = None,
) -> APIRouter:
    """The workbench's pages over a started service. Sessions last `session_minutes` from
    sign-in (by the service's clock)."""
    router = APIRouter(include_in_schema=False)
    env = _environment()
    signer = Signer(secret or session_secret())
    lifetime = dt.timedelta(minutes=session_minutes)

    def page(
        template: str, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        html = env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def problem(status: int, message: str, actor: Actor | None = None) -> HTMLResponse:
        return page("error.html", status=status, message=message, actor=actor, csrf=None)

    def current(request: Request) -> tuple[Actor, SessionData]:
        session = signer.session(request.cookies.get(SESSION_COOKIE), service.clock())
        actor = (
            workbench.session_actor(service, session.user_id, session.fingerprint)
            if session
            else None
        )
        if session is None or actor is None:
            response: Response = RedirectResponse("/signin", status_code=303)
            if request.headers.get("hx-request"):
                # htmx (the worklist's refresh) leaves the page for sign-in instead of
                # swapping the sign-in page into the table.
                response = Response(status_code=401, headers={"HX-Redirect": "/signin"})
            response.delete_cookie(SESSION_COOKIE, path="/")
            raise _Denied(response)
        return actor, session

    def staff(request: Request) -> tuple[Actor, SessionData]:
        actor, session = current(request)
        if not (actor.is_reviewer or actor.role == "admin"):
            raise _Denied(
                problem(403, "The workbench is for pharmacists, medical directors and admins.")
            )
        return actor, session

    def guarded(
        handler: Callable[..., Response],
    ) -> Callable[..., Response]:
        """Turn a sign-in redirect, a refusal or a service error into the page that says so."""

        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Response:
            try:
                return handler(*args, **kwargs)
            except _Denied as denied:
                return denied.response
            except NotFound as exc:
                return problem(404, str(exc))
            except ServiceError as exc:
                from priorauth.entrypoints.api.refusals import refusal_status

                return problem(refusal_status(exc), str(exc))

        return run

    async def checked_form(request: Request) -> tuple[Actor, SessionData, FormData]:
        """The signed-in staff member and the form, once its CSRF token is the session's."""
        actor, session = await run_in_threadpool(staff, request)
        form = await request.form()
        given = form.get("csrf") or request.headers.get("x-csrf-token")
        if not same(session.csrf, str(given) if given is not None else None):
            raise _Denied(problem(403, "The form's security token is missing or wrong.", actor))
        # A NUL character is refused here, as the API refuses it: no database stores one.
        for key, value in form.multi_items():
            if isinstance(value, str) and "\x00" in value:
                raise _Denied(problem(422, f"The field {key} holds a NUL character.", actor))
        return actor, session, form

    def _set_session(response: Response, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=int(lifetime.total_seconds()),
            path="/",
            secure=secure_cookies,
            httponly=True,
            samesite="strict",
        )

    # ------------------------------------------------------------------ sign-in

    @router.get("/", response_class=RedirectResponse)
    def home() -> Response:
        return RedirectResponse("/work", status_code=303)

    @router.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request) -> Response:
        return _signin_form()

    def _signin_form(status: int = 200, message: str | None = None) -> Response:
        now = service.clock()
        value, token = signer.new_session(0, "", now + dt.timedelta(minutes=15))
        data = signer.loads(value) or {}
        response = page("signin.html", status=status, csrf=data.get("c"), message=message)
        response.set_cookie(
            SIGNIN_COOKIE,
            value,
            max_age=900,
            path="/signin",
            secure=secure_cookies,
            httponly=True,
            samesite="strict",
        )
        del token
        return response

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        form = await request.form()
        expected = signer.signin_token(request.cookies.get(SIGNIN_COOKIE), service.clock())
        given = form.get("csrf")
        if not same(expected, str(given) if given is not None else None):
            return problem(403, "The form's security token is missing or wrong. Sign in again.")
        token = str(form.get("token") or "").strip()
        try:
            actor = await run_in_threadpool(service.authenticate, token)
        except Unauthenticated:
            return _signin_form(401, "That token is not known, or its account is inactive.")
        except ServiceError as exc:
            return _signin_form(429, str(exc))
        fingerprint = hash_token(token)[:_FINGERPRINT]
        value, _ = signer.new_session(actor.user_id, fingerprint, service.clock() + lifetime)
        target = "/work" if actor.is_reviewer or actor.role == "admin" else "/signed-in"
        response = RedirectResponse(target, status_code=303)
        _set_session(response, value)
        response.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    @router.get("/signed-in", response_class=HTMLResponse)
    @guarded
    def signed_in(request: Request) -> Response:
        actor, session = current(request)
        return page("signed_in.html", actor=actor, csrf=session.csrf)

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        session = signer.session(request.cookies.get(SESSION_COOKIE), service.clock())
        if session is None:  # expired or never there: nothing to end
            return RedirectResponse("/signin", status_code=303)
        form = await request.form()
        given = form.get("csrf")
        if not same(session.csrf, str(given) if given is not None else None):
            return problem(403, "The form's security token is missing or wrong.")
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ worklist

    def _filters(
        drug: str | None,
        reason: str | None,
        queue: str | None,
        mine: str | None,
        status: str | None,
        every: str | None,
    ) -> workbench.Filters:
        return workbench.Filters(
            drug=drug or None,
            reason=reason or None,
            queue=queue or None,
            mine=mine in ("1", "on", "true"),
            status=status or None,
            every=every in ("1", "on", "true"),
        )

    @router.get("/work", response_class=HTMLResponse)
    @guarded
    def worklist(
        request: Request,
        drug: Filter = None,
        reason: Filter = None,
        queue: Filter = None,
        mine: Filter = None,
        status: Filter = None,
        every: Filter = None,
    ) -> Response:
        actor, session = staff(request)
        filters = _filters(drug, reason, queue, mine, status, every)
        items = workbench.worklist(service, actor, filters)
        everything = workbench.worklist(service, actor, workbench.Filters(every=True))
        return page(
            "worklist.html",
            actor=actor,
            csrf=session.csrf,
            items=items,
            filters=filters,
            query=str(request.url.query),
            drugs=sorted({i["drug"] for i in everything}),
            reasons=sorted({r for i in everything for r in i["reasons"]}),
            queues=sorted({i["queue"] for i in everything if i["queue"]}),
        )

    @router.get("/work/rows", response_class=HTMLResponse)
    @guarded
    def worklist_rows(
        request: Request,
        drug: Filter = None,
        reason: Filter = None,
        queue: Filter = None,
        mine: Filter = None,
        status: Filter = None,
        every: Filter = None,
    ) -> Response:
        """The worklist's rows alone (htmx refreshes them every minute)."""
        actor, session = staff(request)
        filters = _filters(drug, reason, queue, mine, status, every)
        items = workbench.worklist(service, actor, filters)
        return page("worklist_rows.html", actor=actor, csrf=session.csrf, items=items)

    async def _claim_move(request: Request, case_id: str, move: str) -> Response:
        try:
            actor, _, form = await checked_form(request)
            if move == "claim":
                await run_in_threadpool(decisions.claim, service, actor, case_id)
            elif move == "release":
                await run_in_threadpool(decisions.release, service, actor, case_id)
            else:
                to = str(form.get("to") or "")
                await run_in_threadpool(decisions.assign, service, actor, case_id, to)
        except _Denied as denied:
            return denied.response
        except ServiceError as exc:
            return await run_in_threadpool(_error_page, exc)
        back = str(form.get("back") or "")
        target = back if back.startswith("/work") else f"/work/cases/{case_id}"
        return RedirectResponse(target, status_code=303)

    def _error_page(exc: ServiceError) -> Response:
        from priorauth.entrypoints.api.refusals import refusal_status

        if isinstance(exc, Invalid):
            return problem(422, "; ".join(f"{p.field}: {p.message}" for p in exc.problems))
        return problem(refusal_status(exc), str(exc))

    @router.post("/work/cases/{case_id}/claim")
    async def claim(request: Request, case_id: CaseId) -> Response:
        return await _claim_move(request, case_id, "claim")

    @router.post("/work/cases/{case_id}/release")
    async def release(request: Request, case_id: CaseId) -> Response:
        return await _claim_move(request, case_id, "release")

    @router.post("/work/cases/{case_id}/assign")
    async def assign(request: Request, case_id: CaseId) -> Response:
        return await _claim_move(request, case_id, "assign")

    # ------------------------------------------------------------------ the case

    def _case_page(
        actor: Actor,
        session: SessionData,
        case_id: str,
        status: int = 200,
        problems: list[FieldProblem] | None = None,
        form: Mapping[str, Any] | None = None,
    ) -> Response:
        view = service.read(actor, case_id)
        extras = workbench.case_extras(service, actor, case_id)
        extras["attachments"] = workbench.attachments(service, actor, case_id)
        return page(
            "case.html",
            status=status,
            actor=actor,
            csrf=session.csrf,
            case=view,
            extras=extras,
            problems=problems or [],
            form=form or {},
            summary=views.clinical_summary(view),
            checklist=views.checklist(view.get("determination") or {}),
            timeline=views.timeline(view, extras),
        )

    @router.get("/work/cases/{case_id}", response_class=HTMLResponse)
    @guarded
    def case_page(request: Request, case_id: CaseId) -> Response:
        actor, session = staff(request)
        return _case_page(actor, session, case_id)

    @router.post("/work/cases/{case_id}/notes")
    async def add_note(request: Request, case_id: CaseId) -> Response:
        try:
            actor, _, form = await checked_form(request)
            text = str(form.get("text") or "")
            await run_in_threadpool(decisions.add_note, service, actor, case_id, text)
        except _Denied as denied:
            return denied.response
        except ServiceError as exc:
            return await run_in_threadpool(_error_page, exc)
        return RedirectResponse(f"/work/cases/{case_id}#notes", status_code=303)

    @router.post("/work/cases/{case_id}/decision")
    async def decide(request: Request, case_id: CaseId) -> Response:
        try:
            actor, session, form = await checked_form(request)
        except _Denied as denied:
            return denied.response
        fields = {k: str(v) for k, v in form.items() if k != "csrf"}
        try:
            decision = views.decision_from_form(fields)
            await run_in_threadpool(service.decide, actor, case_id, decision)
        except Invalid as exc:
            return await run_in_threadpool(
                guarded(_case_page), actor, session, case_id, 422, exc.problems, fields
            )
        except ServiceError as exc:
            return await run_in_threadpool(_error_page, exc)
        return RedirectResponse(f"/work/cases/{case_id}#decided", status_code=303)

    # ------------------------------------------------------------------ notices

    @router.get("/work/notices/{notice_id}/{form}")
    @guarded
    def notice(
        request: Request,
        notice_id: Annotated[int, Path(ge=1, le=2**31)],
        form: Annotated[str, Path(pattern="^(html|pdf)$")],
    ) -> Response:
        staff(request)
        _, content = notices.notice_pdf(service, notice_id, as_pdf=form == "pdf")
        if form == "pdf":
            return Response(
                content,
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="notice-{notice_id}.pdf"'},
            )
        return HTMLResponse(content.decode())

    # ------------------------------------------------------------------ dashboard, policies

    @router.get("/work/dashboard", response_class=HTMLResponse)
    @guarded
    def dashboard(request: Request) -> Response:
        actor, session = staff(request)
        now = service.clock()
        start = dt.datetime(now.year, 1, 1, tzinfo=dt.UTC)
        figures = service.metrics(actor, start, now + dt.timedelta(seconds=1))
        live = workbench.backlog(service, actor)
        charts = [
            bars("Open cases by queue", live["by_queue"]),
            bars("Open cases by reason", live["by_reason"]),
            bars("Open cases by drug", live["by_drug"]),
            bars("Open cases by urgency", live["by_urgency"]),
        ]
        decided = [
            (f"{urgency} {what}", float(figures.get(urgency, {}).get(what) or 0))
            for urgency in ("standard", "expedited")
            for what in ("approved", "denied")
        ]
        charts.append(bars(f"Decisions since {start.date().isoformat()}", decided))
        return page(
            "dashboard.html",
            actor=actor,
            csrf=session.csrf,
            figures=figures,
            live=live,
            charts=charts,
            since=start.date().isoformat(),
        )

    @router.get("/work/policies", response_class=HTMLResponse)
    @guarded
    def policies(request: Request) -> Response:
        actor, session = staff(request)
        versions = service.policy_versions()
        return page("policies.html", actor=actor, csrf=session.csrf, versions=versions)

    @router.get("/work/policies/{policy_id}", response_class=HTMLResponse)
    @guarded
    def policy(
        request: Request, policy_id: Annotated[str, Path(min_length=1, max_length=100)]
    ) -> Response:
        actor, session = staff(request)
        detail = workbench.policy_page(service, actor, policy_id)
        return page("policy.html", actor=actor, csrf=session.csrf, policy=detail)

    # ------------------------------------------------------------------ docs and assets

    @router.get("/docs", response_class=HTMLResponse)
    def docs() -> Response:
        """The API's documentation, from the vendored Swagger UI (works offline)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="priorauth API",
            swagger_js_url=SWAGGER + "swagger-ui-bundle.js",
            swagger_css_url=SWAGGER + "swagger-ui.css",
            swagger_favicon_url=SWAGGER + "favicon-32x32.png",
        )

    static = resources.files("priorauth.entrypoints.web").joinpath("static")

    @router.get("/static/{path:path}")
    def asset(path: str) -> Response:
        parts = path.split("/")
        if not path or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return Response(status_code=404)
        suffix = "." + parts[-1].rsplit(".", 1)[-1] if "." in parts[-1] else ""
        if suffix not in _TYPES:
            return Response(status_code=404)
        item = static.joinpath(*parts)
        if not item.is_file():
            return Response(status_code=404)
        return Response(
            item.read_bytes(),
            media_type=_TYPES[suffix],
            headers={"Cache-Control": "public, max-age=3600"},
        )

    # Pages, not API: kept out of the OpenAPI document.
    for route in router.routes:
        if isinstance(route, APIRoute):
            route.include_in_schema = False
    return router
