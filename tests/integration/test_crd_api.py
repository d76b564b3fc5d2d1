"""CRD over HTTP on a real database: the CDS Hooks services answer each order with the
coverage-information extension decided by the engine from the chart in prefetch (or read from
the EHR's FHIR server, here one the test runs on loopback); bad calls are a 400
OperationOutcome; a call leaves one audit event and nothing else."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from priorauth.adapters.cds import COVERAGE_INFORMATION, PREFETCH
from priorauth.service.crd import CrdService
from tests.crd_fixtures import (
    CHARTS,
    hook_call,
    other_drug,
    remove_condition,
    resources,
    with_coverage,
    without_answers,
)
from tests.json_trees import json_values, paths
from tests.service_fixtures import Env, auth

ORDER_SIGN = "/cds-services/priorauth-order-sign"


def call(client: TestClient, body: dict[str, Any] | bytes, service: str = ORDER_SIGN) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(service, content=content, headers=auth("clinic"))


def coverage(answer: dict[str, Any]) -> dict[str, Any]:
    """The coverage-information of the one order answered, as {url: value}."""
    (action,) = answer["systemActions"]
    assert action["type"] == "update"
    (extension,) = [e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFORMATION]
    found: dict[str, Any] = {}
    for part in extension["extension"]:
        (value,) = [v for k, v in part.items() if k.startswith("value")]
        found[part["url"]] = value
    return found


def stage_unknown(name: str) -> dict[str, Any]:
    """The chart without what shows the stage (the disease's activity for infliximab): the
    secondary-site code and the form's answers."""
    bundle = CHARTS[name]()
    if name == "infliximab":
        return without_answers(bundle)
    return without_answers(remove_condition(bundle, "C78"))


# The questions each policy's form asks when the stage is unknown: the unknown facts.
UNKNOWN = {
    "ixempra": {
        "metastatic",
        "recurrent_unresectable_locoregional",
        "no_response_to_preoperative_therapy",
    },
    "eribulin": {"metastatic", "unresectable", "child_pugh_class"},
    "infliximab": {"moderately_to_severely_active"},
}


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_a_chart_that_meets_the_policy_is_satisfied(client: TestClient, name: str) -> None:
    answer = call(client, hook_call(CHARTS[name]()))
    assert answer.status_code == 200, answer.text
    found = coverage(answer.json())
    assert found["covered"] == "covered"
    assert found["pa-needed"] == "satisfied"
    assert found["satisfied-pa-id"] == found["coverage-assertion-id"]
    assert found["coverage-assertion-id"].startswith("crd-")
    assert "questionnaire" not in found
    assert answer.json()["cards"] == []


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_the_stage_unknown_asks_exactly_the_unknown_facts(client: TestClient, name: str) -> None:
    answer = call(client, hook_call(stage_unknown(name)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    found = coverage(body)
    assert found["pa-needed"] == "auth-needed"
    assert found["doc-needed"] == "clinical"
    canonical = found["questionnaire"]
    url, version = canonical.split("|")
    form = client.get(url.removeprefix("http://testserver"))
    assert form.status_code == 200
    questionnaire = form.json()
    assert questionnaire["version"] == version
    assert {item["linkId"] for item in questionnaire["item"]} == UNKNOWN[name]
    (card,) = body["cards"]
    assert uuid.UUID(card["uuid"])
    assert len(card["summary"]) <= 140
    assert card["links"] == [
        {"label": "Answer the plan's questions (DTR)", "url": url, "type": "absolute"}
    ]


def test_a_configured_dtr_app_is_launched_with_the_form(env: Env) -> None:
    from priorauth.service.people import Actor

    crd = CrdService(env.service, dtr_launch="https://dtr.example.org/launch")
    actor = Actor(1, "clinic", "submitter", "Sunrise Oncology", None, None)
    answer = crd.hook(
        actor, "priorauth-order-sign", hook_call(stage_unknown("ixempra")), "http://x/fhir"
    )
    assert answer.status == 200
    found = coverage(answer.body)
    ((link,),) = [card["links"] for card in answer.body["cards"]]
    assert link["type"] == "smart"
    assert link["url"] == "https://dtr.example.org/launch"
    context = json.loads(link["appContext"])
    assert context["questionnaire"] == [found["questionnaire"]]
    assert context["coverageAssertionId"] == found["coverage-assertion-id"]
    assert context["order"] == "MedicationRequest/order-1"


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_a_drug_no_policy_governs_needs_no_authorization(client: TestClient, name: str) -> None:
    answer = call(client, hook_call(other_drug(CHARTS[name]())))
    assert answer.status_code == 200, answer.text
    found = coverage(answer.json())
    assert found["pa-needed"] == "no-auth"
    assert "questionnaire" not in found


@pytest.mark.parametrize(
    ("hook", "service"),
    [
        ("order-dispatch", "/cds-services/priorauth-order-dispatch"),
        ("order-select", "/cds-services/priorauth-order-select"),
    ],
)
def test_the_other_order_hooks_answer_alike(client: TestClient, hook: str, service: str) -> None:
    answer = call(client, hook_call(CHARTS["ixempra"](), hook), service)
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["pa-needed"] == "satisfied"


def test_an_infusion_appointment_is_answered_on_the_appointment(client: TestClient) -> None:
    body = hook_call(CHARTS["ixempra"]())
    order = body["context"].pop("draftOrders")["entry"][0]["resource"]
    body["hook"] = "appointment-book"
    body["context"]["appointments"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Appointment",
                    "id": "appt-1",
                    "status": "proposed",
                    "serviceType": [order["medicationCodeableConcept"]],
                    "start": "2026-12-01T09:00:00Z",
                    "end": "2026-12-01T13:00:00Z",
                    "participant": [
                        {"actor": {"reference": "Patient/pat-1"}, "status": "accepted"},
                        {"actor": {"reference": "PractitionerRole/role-1"}, "status": "accepted"},
                    ],
                }
            }
        ],
    }
    answer = call(client, body, "/cds-services/priorauth-appointment-book")
    assert answer.status_code == 200, answer.text
    (action,) = answer.json()["systemActions"]
    assert action["resource"]["resourceType"] == "Appointment"
    # No dose on an appointment: the dose is the question left open.
    found = coverage(answer.json())
    assert found["pa-needed"] == "auth-needed"


# The Ixempra order's first dose is 2026-12-01, the call's day 2026-11-25: the service date is
# the first dose.
@pytest.mark.parametrize(
    "period",
    [
        None,
        {"start": "2026-01-01", "end": "2026-12-01"},
        {"start": "2026-12-01T00:00:00Z"},
        {"start": "2026", "end": "2026-12"},
    ],
)
def test_an_active_coverage_on_the_service_date_is_covered(
    client: TestClient, period: dict[str, str] | None
) -> None:
    answer = call(client, hook_call(with_coverage(CHARTS["ixempra"](), period=period)))
    assert answer.status_code == 200, answer.text
    found = coverage(answer.json())
    assert found["covered"] == "covered"
    assert found["pa-needed"] == "satisfied"
    assert found["coverage"] == {"reference": "Coverage/cov-1"}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        # Ends the day before the first dose (the call's day, 2026-11-25, is within).
        ({"period": {"start": "2026-01-01", "end": "2026-11-30"}}, "2026-01-01 to 2026-11-30"),
        ({"period": {"start": "2026-12-02"}}, "2026-12-02 to"),
        ({"period": {"end": "2026-11"}}, "to 2026-11,"),
        ({"status": "cancelled"}, "is cancelled"),
        ({"status": "draft"}, "is draft"),
    ],
)
def test_no_coverage_in_force_on_the_service_date_is_not_covered(
    client: TestClient, change: dict[str, Any], why: str
) -> None:
    # Even a chart that meets the policy: pa-needed is left out (CRD crd-ci-q2).
    answer = call(client, hook_call(with_coverage(stage_unknown("ixempra"), **change)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    found = coverage(body)
    assert found["covered"] == "not-covered"
    for absent in ("pa-needed", "doc-needed", "questionnaire", "info-needed", "satisfied-pa-id"):
        assert absent not in found
    assert found["reason"]["coding"] == [
        {
            "system": "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp",
            "code": "no-active-coverage",
        }
    ]
    assert why in found["reason"]["text"]
    assert found["coverage"] == {"reference": "Coverage/cov-1"}
    assert found["coverage-assertion-id"].startswith("crd-")
    assert body["cards"] == []


def test_one_coverage_in_force_among_lapsed_ones_is_covered(client: TestClient) -> None:
    bundle = with_coverage(CHARTS["ixempra"](), status="cancelled")
    current = copy.deepcopy(next(r for r in resources(bundle) if r["resourceType"] == "Coverage"))
    current |= {"id": "cov-2", "status": "active", "period": {"start": "2026-07-01"}}
    erroneous = current | {"id": "cov-3", "status": "entered-in-error"}
    bundle["entry"] += [{"resource": current}, {"resource": erroneous}]
    found = coverage(call(client, hook_call(bundle)).json())
    assert found["covered"] == "covered"
    assert found["coverage"] == {"reference": "Coverage/cov-2"}
    # A Coverage entered in error is no coverage: alone, eligibility is unknown.
    alone = with_coverage(CHARTS["ixempra"](), status="entered-in-error")
    found = coverage(call(client, hook_call(alone)).json())
    assert (found["covered"], found["pa-needed"]) == ("covered", "satisfied")


def test_without_a_coverage_eligibility_is_not_checked(client: TestClient) -> None:
    for leave_out in ((), ("coverage",)):
        body = hook_call(with_coverage(CHARTS["ixempra"]()), leave_out=leave_out)
        found = coverage(call(client, body).json())
        assert (found["covered"], found["pa-needed"]) == ("covered", "satisfied")
        assert "coverage" not in found


def test_a_coverage_that_is_not_fhir_is_a_400_naming_it(client: TestClient) -> None:
    body = hook_call(with_coverage(CHARTS["ixempra"](), status="expired"))
    answer = call(client, body)
    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert any(e.startswith("prefetch.coverage.entry[0].resource") for e in expressions)


def test_discovery_lists_the_services_with_their_prefetch(client: TestClient) -> None:
    answer = client.get("/cds-services")
    assert answer.status_code == 200
    services = {s["hook"]: s for s in answer.json()["services"]}
    assert set(services) == {"order-sign", "order-dispatch", "order-select", "appointment-book"}
    for service in services.values():
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert set(PREFETCH) <= set(service["prefetch"])


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(hook="order-select"), "hook"),
        (lambda b: b["context"].pop("patientId"), "context.patientId"),
        (lambda b: b["context"].pop("draftOrders"), "context.draftOrders"),
        (lambda b: b.update(prefetch=[1, 2]), "prefetch"),
        (lambda b: b.update(fhirServer="ftp://ehr"), "fhirServer"),
        (
            lambda b: b["prefetch"]["patient"].update(birthDate="not a date"),
            "prefetch.patient.birthDate",
        ),
        (
            lambda b: b["prefetch"]["conditions"]["entry"][0]["resource"]["code"]["coding"][
                0
            ].update(system="http://example.org/unknown-codes"),
            "prefetch.conditions.entry[0].resource.code.coding[0].system",
        ),
    ],
)
def test_a_bad_call_is_a_400_operation_outcome_naming_the_element(
    client: TestClient, change: Any, where: str
) -> None:
    body = hook_call(CHARTS["ixempra"]())
    change(body)
    answer = call(client, body)
    assert answer.status_code == 400, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert where in [e for issue in outcome["issue"] for e in issue.get("expression", [])]


def test_not_json_and_unknown_services_are_operation_outcomes(client: TestClient) -> None:
    assert call(client, b"{nope").status_code == 400
    answer = call(client, hook_call(CHARTS["ixempra"]()), "/cds-services/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["resourceType"] == "OperationOutcome"
    unauthenticated = client.post(ORDER_SIGN, json=hook_call(CHARTS["ixempra"]()))
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["resourceType"] == "OperationOutcome"


def test_a_call_stores_nothing_but_one_audit_event(client: TestClient, env: Env) -> None:
    def counts() -> dict[str, int]:
        with env.service.database.engine.connect() as connection:
            names = [
                "cases",
                "determinations",
                "audit_events",
            ]
            return {
                n: connection.execute(text(f"SELECT count(*) FROM {n}")).scalar_one() for n in names
            }

    before = counts()
    body = hook_call(CHARTS["ixempra"]())
    answer = call(client, body)
    assert answer.status_code == 200
    after = counts()
    assert after["cases"] == before["cases"]
    assert after["determinations"] == before["determinations"]
    assert after["audit_events"] == before["audit_events"] + 1
    with env.service.database.engine.connect() as connection:
        action, detail = connection.execute(
            text("SELECT action, detail_json FROM audit_events ORDER BY id DESC LIMIT 1")
        ).one()
    assert action == "crd.hook"
    assert body["hookInstance"] in detail
    assert coverage(answer.json())["coverage-assertion-id"] in detail
    # Nothing clinical: no code, no birth date, no name.
    for value in ("C50", "1968", "Example", "J9207"):
        assert value not in detail


# --- the EHR's FHIR server, on loopback ----------------------------------------------------


class _Ehr(BaseHTTPRequestHandler):
    """A small FHIR server: reads and searches over a list of resources, bearer token checked."""

    resources: ClassVar[list[dict[str, Any]]] = []
    token = "ehr-token"
    seen: ClassVar[list[str]] = []
    delay = 0.0

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append(self.path)
        time.sleep(self.delay)
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(401, {"resourceType": "OperationOutcome", "issue": []})
            return
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s][1:]  # after /fhir
        query = parse_qs(parts.query)
        if len(segments) == 2:
            kind, ident = segments
            for resource in self.resources:
                if resource["resourceType"] == kind and resource["id"] == ident:
                    self._send(200, resource)
                    return
            self._send(404, {"resourceType": "OperationOutcome", "issue": []})
            return
        (kind,) = segments
        found = [r for r in self.resources if r["resourceType"] == kind]
        if "patient" in query:
            patient = query["patient"][0]
            found = [
                r
                for r in found
                if patient
                in json.dumps(r.get("subject", r.get("beneficiary", r.get("patient", {}))))
            ]
        if "_id" in query:
            found = [r for r in found if r["id"] in query["_id"][0].split(",")]
        if kind == "PractitionerRole":
            found += [r for r in self.resources if r["resourceType"] == "Practitioner"]
        self._send(
            200,
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r} for r in found],
            },
        )

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def ehr() -> Iterator[str]:
    _Ehr.resources = resources(CHARTS["ixempra"]())
    _Ehr.seen = []
    _Ehr.delay = 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ehr)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def test_what_prefetch_leaves_out_is_read_from_the_ehr(client: TestClient, ehr: str) -> None:
    body = hook_call(CHARTS["ixempra"](), leave_out=tuple(PREFETCH))
    assert set(body["prefetch"]) == set()
    body["fhirServer"] = ehr
    body["fhirAuthorization"] = {
        "access_token": _Ehr.token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "priorauth",
    }
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["pa-needed"] == "satisfied"
    assert "/fhir/Patient/pat-1" in _Ehr.seen
    assert any(p.startswith("/fhir/Condition?patient=pat-1") for p in _Ehr.seen)


@pytest.mark.parametrize(
    ("status", "covered"), [("cancelled", "not-covered"), ("lapsed", "covered")]
)
def test_a_coverage_read_from_the_ehr_counts_unless_unreadable(
    client: TestClient, ehr: str, status: str, covered: str
) -> None:
    # A status that is not FHIR's, read from the EHR, is a Coverage that could not be read:
    # eligibility unknown, as the EHR's other unreadable answers are.
    _Ehr.resources = resources(with_coverage(CHARTS["ixempra"](), status=status))
    body = hook_call(CHARTS["ixempra"](), leave_out=("coverage",))
    body["fhirServer"] = ehr
    body["fhirAuthorization"] = {"access_token": _Ehr.token, "token_type": "Bearer"}
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["covered"] == covered
    assert any(p.startswith("/fhir/Coverage?patient=pat-1") for p in _Ehr.seen)


def test_without_a_server_what_prefetch_leaves_out_is_unknown(client: TestClient) -> None:
    body = hook_call(CHARTS["ixempra"](), leave_out=("conditions", "questionnaireResponses"))
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    found = coverage(answer.json())
    # No conditions: the indication is unknown, never "not covered".
    assert found["pa-needed"] == "auth-needed"
    summaries = [c["summary"] for c in answer.json()["cards"]]
    assert any("could not be read" in s for s in summaries)


def test_a_wrong_token_or_a_host_not_allowed_leaves_the_chart_unknown(
    client: TestClient, env: Env, ehr: str
) -> None:
    body = hook_call(CHARTS["ixempra"](), leave_out=("conditions",))
    body["fhirServer"] = ehr
    body["fhirAuthorization"] = {"access_token": "wrong", "token_type": "Bearer"}
    answer = call(client, body)
    assert answer.status_code == 200
    assert coverage(answer.json())["pa-needed"] == "auth-needed"
    detail = next(c for c in answer.json()["cards"] if "could not be read" in c["summary"])
    assert "401" in detail["detail"]
    # A host the plan does not allow is never called (the token would go to it).
    crd = CrdService(env.service, frozenset({"ehr.example.org"}))
    seen = len(_Ehr.seen)
    from priorauth.service.people import Actor

    actor = Actor(1, "clinic", "submitter", "Sunrise Oncology", None, None)
    body = copy.deepcopy(body)
    body["hookInstance"] = str(uuid.uuid4())
    result = crd.hook(actor, "priorauth-order-sign", body, "http://testserver/fhir")
    assert result.status == 200
    assert len(_Ehr.seen) == seen


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "crd"


@pytest.mark.parametrize(
    ("name", "pa_needed"),
    [("order-sign-satisfied.json", "satisfied"), ("order-sign-stage-unknown.json", "auth-needed")],
)
def test_the_readme_examples_answer_as_it_says(
    client: TestClient, name: str, pa_needed: str
) -> None:
    answer = call(client, json.loads((EXAMPLES / name).read_text()))
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["pa-needed"] == pa_needed


def _json_values() -> st.SearchStrategy[Any]:
    return json_values(
        ["", "Patient/pat-1", "C78.01", "1968-03-14", "mg/m2", "Bundle"],
        int_bound=10**12,
        max_leaves=8,
    )


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_damaged_call_is_answered_never_raised(
    fuzz_crd: tuple[CrdService, Any], data: st.DataObject
) -> None:
    """A valid call with one element replaced by any JSON value: a 200 or a 4xx
    OperationOutcome, never an exception (a 500)."""
    body = hook_call(CHARTS[data.draw(st.sampled_from(sorted(CHARTS)))]())
    path = data.draw(st.sampled_from(paths(body)[1:]))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(_json_values())
    crd, actor = fuzz_crd
    answer = crd.hook(actor, "priorauth-order-sign", body, "http://x/fhir")
    assert answer.status in (200, 400, 404), answer
    if answer.status != 200:
        assert answer.body["resourceType"] == "OperationOutcome"
        assert answer.body["issue"]


@pytest.fixture(scope="module")
def fuzz_crd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CrdService, Any]]:
    """A CRD service on its own SQLite file, for the many calls of the property test."""
    from priorauth.service.config import Settings
    from priorauth.service.runtime import open_service
    from tests.service_fixtures import ROOT

    folder = tmp_path_factory.mktemp("crd-fuzz")
    service = open_service(
        Settings(database_url=f"sqlite:///{folder / 'fuzz.db'}", policy_dir=ROOT / "policies")
    )
    service.add_user("clinic", "submitter", "Sunrise Oncology", token="t-fuzz")
    yield CrdService(service, frozenset()), service.authenticate("t-fuzz")
    service.close()


def test_an_unknown_prescriber_specialty_is_conditional_on_the_performer(
    client: TestClient,
) -> None:
    body = hook_call(CHARTS["ixempra"]())
    body["prefetch"]["practitionerRoles"]["entry"] = []
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    found = coverage(answer.json())
    assert found["pa-needed"] == "conditional"
    assert found["info-needed"] == "performer"
    assert found["doc-needed"] == "clinical"
    # The specialty is read from the record, never asked: no form, a card saying what to record.
    assert "questionnaire" not in found
    (card,) = answer.json()["cards"]
    assert "oncologist" in card["detail"]


def test_a_dispatched_order_is_read_from_the_ehr(client: TestClient, ehr: str) -> None:
    body = hook_call(CHARTS["ixempra"](), "order-dispatch")
    body["prefetch"].pop("dispatchedOrders")
    body["fhirServer"] = ehr
    body["fhirAuthorization"] = {"access_token": _Ehr.token, "token_type": "Bearer"}
    answer = call(client, body, "/cds-services/priorauth-order-dispatch")
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["pa-needed"] == "satisfied"
    assert any(p.startswith("/fhir/MedicationRequest?_id=order-1") for p in _Ehr.seen)


def test_the_draft_order_wins_over_an_older_copy_in_prefetch(client: TestClient) -> None:
    body = hook_call(CHARTS["ixempra"]())
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    older = copy.deepcopy(draft)
    older["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 60
    body["prefetch"]["medicationRequests"]["entry"] = [{"resource": older}]
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    (action,) = answer.json()["systemActions"]
    assert action["resource"]["dosageInstruction"] == draft["dosageInstruction"]
    assert coverage(answer.json())["pa-needed"] == "satisfied"


@pytest.mark.parametrize(
    "coding",
    [
        # The NDC package of the product (11 digits, no hyphens).
        [{"system": "http://hl7.org/fhir/sid/ndc", "code": "70020191001"}],
        # An RxNorm code with the HCPCS code as an extra coding.
        [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "616302"},
            {"system": "https://bluebutton.cms.gov/resources/codesystem/hcpcs", "code": "J9207"},
        ],
    ],
)
def test_the_order_may_name_its_drug_by_ndc_or_with_an_extra_hcpcs_coding(
    client: TestClient, coding: list[dict[str, str]]
) -> None:
    body = hook_call(CHARTS["ixempra"]())
    body["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {
        "coding": coding
    }
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    assert coverage(answer.json())["pa-needed"] == "satisfied"


def test_a_slow_ehr_is_read_within_the_calls_time(
    client: TestClient, ehr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from priorauth.adapters.cds import ehr as reader

    monkeypatch.setattr(reader, "_BUDGET_SECONDS", 0.5)
    _Ehr.delay = 0.3
    body = hook_call(CHARTS["ixempra"](), leave_out=tuple(PREFETCH))
    body["fhirServer"] = ehr
    body["fhirAuthorization"] = {"access_token": _Ehr.token, "token_type": "Bearer"}
    answer = call(client, body)
    assert answer.status_code == 200, answer.text
    # Two or three reads fit in the time; the rest are unknown, and the card says so.
    assert 1 <= len(_Ehr.seen) <= 3
    assert coverage(answer.json())["pa-needed"] != "satisfied"
    (card,) = [c for c in answer.json()["cards"] if "could not be read" in c["summary"]]
    assert "time for reading the chart ran out" in card["detail"]


def test_a_dispatched_order_nobody_can_read_is_named_on_a_card(client: TestClient) -> None:
    body = hook_call(CHARTS["ixempra"](), "order-dispatch")
    body["prefetch"].pop("dispatchedOrders")
    answer = call(client, body, "/cds-services/priorauth-order-dispatch")
    assert answer.status_code == 200, answer.text
    assert answer.json()["systemActions"] == []
    (card,) = [c for c in answer.json()["cards"] if c["indicator"] == "warning"]
    assert "MedicationRequest/order-1" in card["detail"]
