"""The workbench's pages over HTTP (TestClient on https, so the Secure cookie is sent): sign-in,
sessions that expire, CSRF on every form, staff-only pages, decisions through the form and the
notices they leave."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pypdf import PdfReader

from priorauth.entrypoints.api import create_app
from priorauth.entrypoints.web import web_router
from tests.conftest import example
from tests.service_fixtures import ROOT, TOKENS, Env


@pytest.fixture
def web(env: Env) -> Iterator[TestClient]:
    with TestClient(create_app(env.service), base_url="https://testserver") as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, who: str) -> str:
    """Sign in as an account; returns the session's CSRF token (from the page it lands on)."""
    form = client.get("/signin")
    answer = client.post(
        "/signin", data={"csrf": csrf_of(form.text), "token": TOKENS[who]}, follow_redirects=True
    )
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)


def pended(
    env: Env, name: str = "05-pended-not-covered-indication.json", member: str = "M-1"
) -> str:
    clinic = env.service.authenticate(TOKENS["clinic"])
    case: dict[str, Any] = env.service.submit(clinic, example(name), member).case
    return str(case["case_id"])


def web_routes(client: TestClient) -> list[APIRoute]:
    """The workbench's routes, as its router declares them (the app includes it)."""
    service = client.app.state.service  # type: ignore[attr-defined]
    return [r for r in web_router(service).routes if isinstance(r, APIRoute)]


def test_sign_in_sets_a_secure_httponly_samesite_cookie(web: TestClient) -> None:
    form = web.get("/signin")
    answer = web.post(
        "/signin",
        data={"csrf": csrf_of(form.text), "token": TOKENS["md1"]},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/work"
    cookie = answer.headers["set-cookie"].lower()
    assert "pa_session=" in cookie
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert TOKENS["md1"] not in answer.headers["set-cookie"]
    assert web.get("/work").status_code == 200


def test_a_wrong_token_does_not_sign_in(web: TestClient) -> None:
    form = web.get("/signin")
    answer = web.post("/signin", data={"csrf": csrf_of(form.text), "token": "nope"})
    assert answer.status_code == 401 and "not known" in answer.text
    assert web.get("/work", follow_redirects=False).status_code == 303


def test_without_a_session_every_page_sends_to_sign_in(web: TestClient, env: Env) -> None:
    case_id = pended(env)
    for path in ("/work", f"/work/cases/{case_id}", "/work/dashboard", "/work/policies"):
        answer = web.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/signin", path


def test_a_session_expires(web: TestClient, env: Env) -> None:
    sign_in(web, "pharmacist")
    env.clock.advance(minutes=29)
    assert web.get("/work", follow_redirects=False).status_code == 200
    env.clock.advance(minutes=2)
    expired = web.get("/work", follow_redirects=False)
    assert expired.status_code == 303 and expired.headers["location"] == "/signin"
    # The worklist's live refresh is told to leave for sign-in.
    refresh = web.get("/work/rows", headers={"HX-Request": "true"}, follow_redirects=False)
    assert refresh.status_code == 401 and refresh.headers["hx-redirect"] == "/signin"


def test_a_rotated_token_ends_the_session(web: TestClient, env: Env) -> None:
    sign_in(web, "pharmacist")
    env.service.rotate_token("pharmacist")
    assert web.get("/work", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session(web: TestClient) -> None:
    csrf = sign_in(web, "md1")
    out = web.post("/signout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert web.get("/work", follow_redirects=False).status_code == 303


def _post_paths(client: TestClient, case_id: str) -> list[str]:
    paths = []
    for route in web_routes(client):
        if "POST" in route.methods:
            paths.append(route.path.replace("{case_id}", case_id))
    return paths


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_every_form_refuses_a_missing_or_wrong_csrf_token(
    web: TestClient, env: Env, token: str | None
) -> None:
    case_id = pended(env)
    csrf = sign_in(web, "md1")
    paths = _post_paths(web, case_id)
    assert {p.rsplit("/", 1)[-1] for p in paths} >= {
        "signin",
        "signout",
        "claim",
        "release",
        "assign",
        "notes",
        "decision",
    }
    data = {
        "action": "deny",
        "reason_code": "not-covered-indication",
        "reason": "x",
        "text": "a note",
        "to": "md1",
        "token": TOKENS["md1"],
    }
    if token is not None:
        data["csrf"] = token
    for path in paths:
        answer = web.post(path, data=data, follow_redirects=False)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "security token" in answer.text
    # Nothing happened: still pended, no note, still signed in.
    record = env.service.read(env.service.authenticate(TOKENS["md1"]), case_id)
    assert record["status"] == "pended"
    assert "request.noted" not in {e["action"] for e in record["history"]}
    page = web.get(f"/work/cases/{case_id}")
    assert page.status_code == 200 and csrf_of(page.text) == csrf


def test_a_submitters_session_gets_403_on_every_review_route(web: TestClient, env: Env) -> None:
    case_id = pended(env)
    csrf = sign_in(web, "clinic")
    checked = 0
    for route in web_routes(web):
        if not route.path.startswith("/work"):
            continue
        path = (
            route.path.replace("{case_id}", case_id)
            .replace("{notice_id}", "1")
            .replace("{form}", "pdf")
            .replace("{policy_id}", "ixempra")
        )
        for method in route.methods:
            if method == "GET":
                answer = web.get(path, follow_redirects=False)
            else:
                answer = web.post(path, data={"csrf": csrf, "action": "approve"})
            assert answer.status_code == 403, (method, path, answer.status_code)
            checked += 1
    assert checked >= 12
    record = env.service.read(env.service.authenticate(TOKENS["md1"]), case_id)
    assert record["status"] == "pended"


def test_a_medical_director_denies_with_a_reason_and_the_letter_says_why(
    web: TestClient, env: Env
) -> None:
    case_id = pended(env)
    csrf = sign_in(web, "md1")
    page = web.get(f"/work/cases/{case_id}")
    assert "Not a covered indication" in page.text
    refused = web.post(
        f"/work/cases/{case_id}/decision",
        data={"csrf": csrf, "action": "deny", "reason": "No."},
    )
    assert refused.status_code == 422 and "reason_code" in refused.text
    decided = web.post(
        f"/work/cases/{case_id}/decision",
        data={
            "csrf": csrf,
            "action": "deny",
            "reason_code": "not-covered-indication",
            "reason": "Lung cancer is not among the covered indications.",
        },
    )
    assert decided.status_code == 200, decided.text
    links = re.findall(r'href="(/work/notices/\d+/pdf)"', decided.text)
    assert len(links) == 2  # the provider's and the member's
    pdf = web.get(links[0])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    text = " ".join(text.split())
    assert "Lung cancer is not among the covered indications." in text
    assert "conditions it lists" in text  # the reason code's plain words
    assert "md1" in text and "Medical Director" in text and "1679576722" in text
    assert "Expedited" in text and "appeal" in text
    again = web.get(links[0])
    assert again.content == pdf.content  # rendered once, kept with the case


def test_a_pharmacist_claims_then_approves_a_case_through_the_form(
    web: TestClient, env: Env
) -> None:
    case_id = pended(env, "07-pended-dose-exception.json")
    csrf = sign_in(web, "pharmacist")
    claimed = web.post(f"/work/cases/{case_id}/claim", data={"csrf": csrf})
    assert claimed.status_code == 200 and "Release" in claimed.text
    mine = web.get("/work?mine=1")
    assert case_id in mine.text
    approved = web.post(f"/work/cases/{case_id}/decision", data={"csrf": csrf, "action": "approve"})
    assert approved.status_code == 200
    record = env.service.read(env.service.authenticate(TOKENS["md1"]), case_id)
    assert record["status"] == "approved"
    assert record["authorizations"][0]["regimen"]["units"] is not None


def test_the_worklist_shows_overdue_first_and_filters(web: TestClient, env: Env) -> None:
    late = pended(env, "10-pended-safety-review.json", "M-LATE")
    env.clock.advance(days=8)  # the first case is now overdue
    soon = pended(env, "07-pended-dose-exception.json", "M-SOON")
    sign_in(web, "md1")
    page = web.get("/work").text
    assert page.index(late) < page.index(soon)
    assert "overdue by" in page
    only = web.get("/work?queue=clinician").text
    assert soon in only and late not in only
    by_reason = web.get("/work?reason=safety-review").text
    assert late in by_reason and soon not in by_reason


def test_the_pages_are_not_in_the_api_document(web: TestClient) -> None:
    paths = web.get("/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if p.startswith(("/work", "/signin", "/static"))]


def test_the_docs_and_every_asset_come_from_the_package(web: TestClient) -> None:
    docs = web.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text):
        assert web.get(asset).status_code == 200, asset
    assert web.get("/static/../pyproject.toml").status_code == 404
    assert web.get("/static/vendor/README.md").status_code == 404


def test_the_dashboard_and_policies_render(web: TestClient, env: Env) -> None:
    pended(env)
    sign_in(web, "admin")
    dashboard = web.get("/work/dashboard")
    assert dashboard.status_code == 200 and "<svg" in dashboard.text
    assert "Open cases by queue" in dashboard.text
    assert "Approved automatically" in dashboard.text
    policy = web.get("/work/policies/ixempra")
    assert policy.status_code == 200 and "The criteria" in policy.text
    assert web.get("/work/policies/nothing-like-it").status_code == 404


def test_a_pas_bundles_documents_show_on_the_case(web: TestClient, env: Env) -> None:
    """The DTR questionnaire response that came in the bundle is listed with its answers."""
    bundle = json.loads((ROOT / "examples" / "fhir" / "pas-approvable.json").read_text())
    claim = bundle["entry"][0]["resource"]
    claim["identifier"][0]["value"] = "PAS-WEB-1"
    # Pended (the patient's age is unknown) so a reviewer has the case.
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"].pop("birthDate", None)
    answer = web.post(
        "/fhir/Claim/$submit",
        content=json.dumps(bundle).encode(),
        headers={
            "Authorization": f"Bearer {TOKENS['clinic']}",
            "Content-Type": "application/fhir+json",
        },
    )
    assert answer.status_code == 200, answer.text
    [case] = env.service.queue(env.service.authenticate(TOKENS["md1"]))
    sign_in(web, "md1")
    page = web.get(f"/work/cases/{case['case_id']}").text
    section = page[page.index('id="h-attachments"') : page.index('id="h-timeline"')]
    assert "QuestionnaireResponse" in section and ": True" in section


def test_each_role_sees_its_own_worklist_and_may_ask_for_every_queue(
    web: TestClient, env: Env
) -> None:
    medical = pended(env, "05-pended-not-covered-indication.json", "M-MD")
    clinical = pended(env, "07-pended-dose-exception.json", "M-CL")
    sign_in(web, "pharmacist")
    own = web.get("/work").text
    assert clinical in own and medical not in own
    every = web.get("/work?every=1").text
    assert clinical in every and medical in every
    sign_in(web, "md1")
    assert medical in web.get("/work").text and clinical in web.get("/work").text


def test_an_admin_assigns_a_case_to_a_reviewer(web: TestClient, env: Env) -> None:
    case_id = pended(env, "07-pended-dose-exception.json")
    csrf = sign_in(web, "admin")
    page = web.get(f"/work/cases/{case_id}").text
    assert 'name="to"' in page and "<option>pharmacist</option>" in page
    assigned = web.post(f"/work/cases/{case_id}/assign", data={"csrf": csrf, "to": "pharmacist"})
    assert assigned.status_code == 200 and "pharmacist" in assigned.text
    refused = web.post(f"/work/cases/{case_id}/assign", data={"csrf": csrf, "to": "clinic"})
    assert refused.status_code == 422 and "does not decide this queue" in refused.text
    sign_in(web, "pharmacist")
    assert case_id in web.get("/work?mine=1").text


def test_a_nul_character_in_a_form_is_refused_not_stored(web: TestClient, env: Env) -> None:
    """On PostgreSQL a NUL in a note was a 500; every form refuses it, as the API does."""
    case_id = pended(env)
    csrf = sign_in(web, "md1")
    answer = web.post(
        f"/work/cases/{case_id}/notes",
        data={"csrf": csrf, "text": "call the\x00 clinic"},
        follow_redirects=False,
    )
    assert answer.status_code == 422 and "NUL" in answer.text
    record = env.service.read(env.service.authenticate(TOKENS["md1"]), case_id)
    assert "request.noted" not in {e["action"] for e in record["history"]}
