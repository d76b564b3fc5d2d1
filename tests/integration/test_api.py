"""The HTTP API end to end on a real database: submit, queue, decide, appeal, inquire."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import example
from tests.service_fixtures import ROOT, Env, auth

# The shipped policies (their safety data files are not policies).
POLICY_IDS = sorted(
    p.stem for p in (ROOT / "policies").glob("*.yaml") if not p.name.endswith(".data.yaml")
)


def submit(
    client: TestClient, name: str, member: str = "M-1", who: str = "clinic", **changes: Any
) -> Any:
    request = example(name)
    request.update(changes)
    response = client.post(
        "/v1/requests", json={"member_id": member, "request": request}, headers=auth(who)
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["policies"] == len(POLICY_IDS)


def test_an_approvable_request_is_approved_with_an_authorization(client: TestClient) -> None:
    case = submit(client, "01-approved-every-3-weeks.json")
    assert case["status"] == "approved"
    assert case["decided_by"] == "automatic"
    assert case["determination"]["outcome"] == "approved"
    [authorization] = case["authorizations"]
    assert authorization["member_id"] == "M-1"
    # What is authorized, with the billing units the engine worked out (1.70 m2 x 40 mg/m2).
    assert authorization["regimen"] == {
        "regimen": "A",
        "text": case["determination"]["authorization"]["regimen_text"],
        "dose": 40.0,
        "dose_unit": "mg/m2",
        "doses": 18,
        "mg_per_dose": 70.8,
        "billing_code": "J9207",
        "units_per_dose": 71,
        "units": 1278,
        "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
    }
    listed = client.get("/v1/authorizations?member_id=M-1", headers=auth("clinic")).json()
    assert [a["authorization_id"] for a in listed] == [authorization["authorization_id"]]
    # Another organization sees none of this member's authorizations from the clinic.
    assert client.get("/v1/authorizations?member_id=M-1", headers=auth("other-clinic")).json() == []


def test_submission_is_idempotent_per_organization(client: TestClient) -> None:
    body = {"member_id": "M-1", "request": example("04-pended-criteria-not-met-age.json")}
    first = client.post("/v1/requests", json=body, headers=auth("clinic"))
    again = client.post("/v1/requests", json=body, headers=auth("clinic"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["case_id"] == first.json()["case_id"]
    assert again.json()["determination"] == first.json()["determination"]
    changed = {"member_id": "M-2", "request": body["request"]}
    assert client.post("/v1/requests", json=changed, headers=auth("clinic")).status_code == 409
    # The same request_id from another organization is its own case.
    other = client.post("/v1/requests", json=body, headers=auth("other-clinic"))
    assert other.status_code == 201 and other.json()["case_id"] != first.json()["case_id"]


def test_the_queue_is_sorted_by_due_time_and_shows_time_left(client: TestClient, env: Env) -> None:
    standard = submit(client, "04-pended-criteria-not-met-age.json")
    env.clock.advance(hours=1)
    expedited = submit(
        client, "07-pended-dose-exception.json", urgency="expedited", request_id="PA-X-1"
    )
    queue = client.get("/v1/queue", headers=auth("pharmacist")).json()
    assert [item["case_id"] for item in queue] == [expedited["case_id"], standard["case_id"]]
    assert queue[0]["time_left_seconds"] == 72 * 3600
    assert queue[1]["time_left_seconds"] == 7 * 24 * 3600 - 3600
    env.clock.advance(hours=80)
    queue = client.get("/v1/queue", headers=auth("pharmacist")).json()
    assert queue[0]["overdue"] is True and queue[1]["overdue"] is False
    only = client.get("/v1/queue?queue=medical-director", headers=auth("md1")).json()
    assert [item["case_id"] for item in only] == [standard["case_id"]]


def test_people_see_only_what_they_may(client: TestClient) -> None:
    case = submit(client, "04-pended-criteria-not-met-age.json")
    url = f"/v1/requests/{case['case_id']}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(url, headers=auth("clinic")).status_code == 200
    # Another organization's case and a case that does not exist answer alike.
    hidden = client.get(url, headers=auth("other-clinic"))
    missing = client.get("/v1/requests/0123456789abcdef", headers=auth("other-clinic"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    # A submitter may not decide or see the queue: a role problem, not a case problem.
    decision = {"action": "approve"}
    assert client.post(url + "/decision", json=decision, headers=auth("clinic")).status_code == 403
    assert client.get("/v1/queue", headers=auth("clinic")).status_code == 403
    assert client.get("/v1/metrics", headers=auth("clinic")).status_code == 403


def test_a_pharmacist_approves_a_pended_case(client: TestClient) -> None:
    case = submit(client, "07-pended-dose-exception.json")
    assert case["status"] == "pended"
    decided = client.post(
        f"/v1/requests/{case['case_id']}/decision",
        json={"action": "approve"},
        headers=auth("pharmacist"),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert decided.json()["decided_by"] == "reviewer"
    [authorization] = decided.json()["authorizations"]
    # Approved as requested: the requested service's dose and schedule, the dose in mg, and,
    # like the engine's approvals, the doses in the policy's period and the billing units.
    assert authorization["regimen"] == {
        "as_requested": {
            "dose": {"value": 45, "unit": "mg/m2"},
            "schedule": {"cycle_length_days": 21, "doses_per_cycle": 1},
            "start_date": "2026-12-01",
            "with": ["capecitabine"],
        },
        "mg_per_dose": 77.9,
        "doses": 18,
        "billing_code": "J9207",
        "units_per_dose": 78,
        "units": 78 * 18,
    }
    assert (authorization["valid_from"], authorization["valid_through"]) == (
        "2026-12-01",
        "2027-11-30",
    )
    assert authorization["regimen"]["mg_per_dose"] is not None
    again = client.post(
        f"/v1/requests/{case['case_id']}/decision",
        json={"action": "approve"},
        headers=auth("pharmacist"),
    )
    assert again.status_code == 409
    assert client.get("/v1/queue", headers=auth("pharmacist")).json() == []


def test_a_denial_names_an_unmet_criterion_and_the_reviewer(client: TestClient) -> None:
    case = submit(client, "04-pended-criteria-not-met-age.json")
    url = f"/v1/requests/{case['case_id']}/decision"
    vague = client.post(url, json={"action": "deny", "reason": "no"}, headers=auth("md1"))
    assert vague.status_code == 422
    assert vague.json()["detail"][0]["field"] == "criterion"
    met = client.post(
        url, json={"action": "deny", "reason": "no", "criterion": "C"}, headers=auth("md1")
    )
    assert met.status_code == 422 and "met" in met.json()["detail"][0]["message"]
    unknown = client.post(
        url, json={"action": "deny", "reason": "x", "criterion": "Z.9"}, headers=auth("md1")
    )
    assert unknown.status_code == 422
    # This case waits in the medical director's queue: a pharmacist may not deny it.
    pharmacist = client.post(
        url,
        json={"action": "deny", "reason": "under 18", "criterion": "A"},
        headers=auth("pharmacist"),
    )
    assert pharmacist.status_code == 403
    denied = client.post(
        url,
        json={"action": "deny", "reason": "The patient is under 18.", "criterion": "A"},
        headers=auth("md1"),
    )
    assert denied.status_code == 200, denied.text
    assert denied.json()["status"] == "denied"
    record = client.get(f"/v1/requests/{case['case_id']}", headers=auth("clinic")).json()
    [review] = record["reviews"]
    assert review["criterion"] == "A"
    assert (review["reviewer_npi"], review["reviewer_specialty"]) == (
        "1679576722",
        "medical-oncology",
    )
    assert [e["action"] for e in record["history"]] == [
        "request.submitted",
        "request.decided",
        "request.read",
    ]


def test_the_provider_fetches_its_decision_letters_and_each_fetch_is_audited(
    client: TestClient,
) -> None:
    case = submit(client, "04-pended-criteria-not-met-age.json")
    case_url = f"/v1/requests/{case['case_id']}"
    denied = client.post(
        f"{case_url}/decision",
        json={"action": "deny", "reason": "The patient is under 18.", "criterion": "A"},
        headers=auth("md1"),
    )
    assert denied.status_code == 200, denied.text
    # The submitter sees the provider's notice; a reviewer sees the member's too.
    [notice] = client.get(case_url, headers=auth("clinic")).json()["notices"]
    assert (notice["kind"], notice["audience"]) == ("denial", "provider")
    listed = client.get(case_url, headers=auth("pharmacist")).json()["notices"]
    assert {n["audience"] for n in listed} == {"provider", "member"}
    [member] = [n for n in listed if n["audience"] == "member"]

    html = client.get(f"{case_url}/notices/{notice['id']}?format=html", headers=auth("clinic"))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "The patient is under 18." in html.text
    pdf = client.get(f"{case_url}/notices/{notice['id']}", headers=auth("clinic"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    # Kept once rendered: the same bytes again.
    again = client.get(f"{case_url}/notices/{notice['id']}", headers=auth("clinic"))
    assert again.content == pdf.content

    # The member's letter, another case's id, another organization, a bad format: refused.
    assert (
        client.get(f"{case_url}/notices/{member['id']}", headers=auth("clinic")).status_code == 404
    )
    assert client.get(f"{case_url}/notices/999", headers=auth("clinic")).status_code == 404
    assert (
        client.get(f"{case_url}/notices/{notice['id']}", headers=auth("other-clinic")).status_code
        == 404
    )
    bad = client.get(f"{case_url}/notices/{notice['id']}?format=doc", headers=auth("clinic"))
    assert bad.status_code == 422
    assert client.get(f"{case_url}/notices/{member['id']}", headers=auth("md2")).status_code == 200

    # Three fetches by the provider and one by the medical director; refusals are not reads.
    history = client.get(case_url, headers=auth("clinic")).json()["history"]
    assert [e["action"] for e in history].count("request.notice-read") == 4


def test_a_denial_for_the_dose_names_the_dose_rule(client: TestClient) -> None:
    case = submit(client, "07-pended-dose-exception.json")
    denied = client.post(
        f"/v1/requests/{case['case_id']}/decision",
        json={"action": "deny", "reason": "Dose above the label.", "dose_rule": "A"},
        headers=auth("md2"),
    )
    assert denied.status_code == 200, denied.text


def test_an_appeal_goes_to_another_medical_director(client: TestClient) -> None:
    case = submit(client, "04-pended-criteria-not-met-age.json")
    base = f"/v1/requests/{case['case_id']}"
    client.post(
        base + "/decision",
        json={"action": "deny", "reason": "Under 18.", "criterion": "A"},
        headers=auth("md1"),
    ).raise_for_status()
    appealed = client.post(
        base + "/appeal", json={"reason": "Adult dosing"}, headers=auth("clinic")
    )
    assert appealed.status_code == 200 and appealed.json()["status"] == "appealed"
    assert (
        client.post(base + "/appeal", json={"reason": "again"}, headers=auth("clinic")).status_code
        == 409
    )
    same = client.post(base + "/decision", json={"action": "approve"}, headers=auth("md1"))
    assert same.status_code == 403
    pharmacist = client.post(
        base + "/decision", json={"action": "approve"}, headers=auth("pharmacist")
    )
    assert pharmacist.status_code == 403
    other = client.post(base + "/decision", json={"action": "approve"}, headers=auth("md2"))
    assert other.status_code == 200 and other.json()["status"] == "approved"
    [authorization] = other.json()["authorizations"]
    assert authorization["source"] == "appeal"
    metrics = client.get("/v1/metrics?from=2026-01-01&to=2026-12-31", headers=auth("admin")).json()
    assert metrics["appeals"]["approved_after_appeal"] == 1
    assert metrics["standard"]["denied"] == 1


def test_a_modified_approval_records_the_regimen(client: TestClient) -> None:
    case = submit(client, "07-pended-dose-exception.json")
    url = f"/v1/requests/{case['case_id']}/decision"

    def modify(regimen: Any, action: str = "approve-modified") -> Any:
        body = {"action": action, "reason": "Label dose.", "regimen": regimen}
        return client.post(url, json=body, headers=auth("md1"))

    bare = client.post(url, json={"action": "approve-modified", "reason": "x"}, headers=auth("md1"))
    assert bare.status_code == 422
    assert bare.json()["detail"] == [
        {
            "field": "regimen",
            "message": "a modified approval gives the regimen approved (dose, schedule)",
        }
    ]
    every_3_weeks = {"cycle_length_days": 21, "doses_per_cycle": 1}
    # The dose and schedule are the request contract's: each problem names its field.
    for regimen, field in [
        ({"dose": {"value": 40, "unit": "mL"}, "schedule": every_3_weeks}, "regimen.dose.unit"),
        ({"dose": {"value": 0, "unit": "mg/m2"}, "schedule": every_3_weeks}, "regimen.dose.value"),
        ({"dose": {"value": 40, "unit": "mg/m2"}, "schedule": {}}, "regimen.schedule"),
        ({"dose": {"value": 40, "unit": "mg/m2"}}, "regimen.schedule"),
        # The old contract's flat regimen is refused, field by field.
        ({"dose": 40, "dose_unit": "mg/m2", **every_3_weeks}, "regimen.dose"),
    ]:
        refused = modify(regimen)
        assert refused.status_code == 422, regimen
        assert field in [d["field"] for d in refused.json()["detail"]], refused.json()
    # A regimen goes with a modified approval only.
    plain = modify({"dose": {"value": 40, "unit": "mg/m2"}, "schedule": every_3_weeks}, "approve")
    assert plain.status_code == 422
    assert plain.json()["detail"][0]["field"] == "regimen"
    regimen = {"dose": {"value": 40, "unit": "mg/m2"}, "schedule": {"interval_weeks": 3}}
    decided = modify(regimen)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved-modified"
    approved = {"dose": {"value": 40.0, "unit": "mg/m2"}, "schedule": {"interval_days": 21}}
    # With the dose in mg (40 mg/m2 x the BSA the engine used), the doses in the policy's
    # one-year period and the billing units, like an automatic approval's.
    assert decided.json()["authorizations"][0]["regimen"] == {
        **approved,
        "mg_per_dose": 69.2,
        "doses": 18,
        "billing_code": "J9207",
        "units_per_dose": 70,
        "units": 70 * 18,
    }
    record = client.get(f"/v1/requests/{case['case_id']}", headers=auth("clinic")).json()
    assert record["reviews"][0]["regimen"] == approved


def test_missing_information_is_added_and_decided_again(client: TestClient) -> None:
    case = submit(client, "06-pended-missing-information.json")
    assert case["status"] == "pended"
    assert "missing-information" in case["determination"]["reasons"]
    patch = {
        "answers": {"metastatic": True},
        "practitioners": [{"role": "prescriber", "specialty": "207RX0202X"}],
        "observations": [
            {"code": "8302-2", "value": 165, "unit": "cm"},
            {"code": "29463-7", "value": 70, "unit": "kg"},
        ],
    }
    url = f"/v1/requests/{case['case_id']}/information"
    answered = client.post(url, json={"request": patch}, headers=auth("clinic"))
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "approved", answered.json()["determination"]["reasons"]
    record = client.get(f"/v1/requests/{case['case_id']}", headers=auth("pharmacist")).json()
    assert [d["outcome"] for d in record["determinations"]] == ["pended", "approved"]
    assert record["request"]["patient"]["birth_date"] == "1970-09-09"
    # The prescriber's specialty was laid over the stored prescriber: the NPI is kept.
    assert record["request"]["practitioners"] == [
        {"role": "prescriber", "npi": "1234567893", "specialty": "207RX0202X"}
    ]
    late = client.post(url, json={"request": patch}, headers=auth("clinic"))
    assert late.status_code == 409
    other = submit(client, "04-pended-criteria-not-met-age.json")
    renamed = client.post(
        f"/v1/requests/{other['case_id']}/information",
        json={"request": {"request_id": "OTHER"}},
        headers=auth("clinic"),
    )
    assert renamed.status_code == 422


def test_a_reviewer_requests_information(client: TestClient) -> None:
    case = submit(client, "08-pended-conflicting-evidence.json")
    base = f"/v1/requests/{case['case_id']}"
    asked = client.post(
        base + "/decision",
        json={"action": "request-info", "reason": "Is the disease metastatic?"},
        headers=auth("pharmacist"),
    )
    assert asked.status_code == 200 and asked.json()["status"] == "information-requested"
    queue = client.get("/v1/queue?status=information-requested", headers=auth("pharmacist"))
    assert [item["case_id"] for item in queue.json()] == [case["case_id"]]


def test_the_clock_is_extended_once_with_a_reason(client: TestClient) -> None:
    case = submit(client, "04-pended-criteria-not-met-age.json")
    url = f"/v1/requests/{case['case_id']}/extension"
    assert client.post(url, json={"reason": ""}, headers=auth("md1")).status_code == 422
    extended = client.post(url, json={"reason": "Awaiting records"}, headers=auth("md1"))
    assert extended.status_code == 200
    assert extended.json()["time_left_seconds"] == (7 + 14) * 24 * 3600
    assert client.post(url, json={"reason": "More"}, headers=auth("md1")).status_code == 409


def test_a_continuation_links_the_earlier_authorization(client: TestClient) -> None:
    first = submit(
        client, "01-approved-every-3-weeks.json", member="M-7", request_id="PA-2025-000042"
    )
    later = submit(client, "03-continuation-approved.json", member="M-7")
    assert later["status"] == "approved"
    listed = client.get("/v1/authorizations?member_id=M-7", headers=auth("pharmacist")).json()
    assert [a["continues"] for a in listed] == [
        None,
        first["authorizations"][0]["authorization_id"],
    ]


def test_a_continuation_never_links_another_organizations_authorization(
    client: TestClient,
) -> None:
    """Organization B naming A's request as the one it continues, for the same member, learns
    nothing of A's authorization (issue #16, isolation)."""
    first = submit(
        client, "01-approved-every-3-weeks.json", member="M-8", request_id="PA-2025-000042"
    )
    a_number = first["authorizations"][0]["authorization_id"]
    later = submit(client, "03-continuation-approved.json", member="M-8", who="other-clinic")
    assert later["status"] == "approved"
    assert a_number not in json.dumps(later)
    seen_by_b = client.get("/v1/authorizations?member_id=M-8", headers=auth("other-clinic"))
    assert seen_by_b.status_code == 200
    assert a_number not in seen_by_b.text
    assert [a["continues"] for a in seen_by_b.json()] == [None]
    # A reviewer sees both, unlinked.
    listed = client.get("/v1/authorizations?member_id=M-8", headers=auth("pharmacist")).json()
    assert [a["continues"] for a in listed] == [None, None]


def test_bad_input_gets_field_level_errors(client: TestClient) -> None:
    request = example("01-approved-every-3-weeks.json")
    request["observations"][1]["value"] = -3
    response = client.post(
        "/v1/requests", json={"member_id": "M-1", "request": request}, headers=auth("clinic")
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "field": "request.observations[1]",
            "message": "a body weight of -3 kg is not plausible (expected 0.3 to 700 kg)",
        }
    ]
    response = client.post("/v1/requests", json={"request": request}, headers=auth("clinic"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "member_id"
    broken = client.post(
        "/v1/requests",
        content=b"{not json",
        headers={**auth("clinic"), "Content-Type": "application/json"},
    )
    assert broken.status_code == 422


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            lambda r: r["observations"][0].update(unit="cmm"),
            "request.observations[0].unit",
            "unknown unit 'cmm'",
        ),
        (
            lambda r: r.update(conditions=[{"code": "C50.912", "system": "icd10cm"}]),
            "request.conditions[0].system",
            "unknown code system 'icd10cm'",
        ),
        (
            lambda r: r.update(answers={"metastatc": True}),
            "request.answers.metastatc",
            "asks no question 'metastatc' (did you mean 'metastatic'?)",
        ),
        (
            lambda r: r.update(answers={"metastatic": "yes"}),
            "request.answers.metastatic.value",
            "takes true or false",
        ),
    ],
)
def test_unknown_units_systems_and_questions_are_422_naming_the_field(
    client: TestClient, change: Any, field: str, words: str
) -> None:
    request = example("01-approved-every-3-weeks.json")
    change(request)
    response = client.post(
        "/v1/requests", json={"member_id": "M-1", "request": request}, headers=auth("clinic")
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["field"] == field
    assert words in problem["message"]


@pytest.mark.parametrize("value", [1e29, float("inf"), -1e13])
def test_huge_or_infinite_numbers_are_422_and_never_stored(
    client: TestClient, value: float
) -> None:
    """A lab value of 1e29 was once stored, and its case could never be read again (#16)."""
    request = example("10-pended-safety-review.json")
    request["observations"][2]["value"] = value
    body = json.dumps({"member_id": "M-9", "request": request}).replace("Infinity", "1e999")
    response = client.post(
        "/v1/requests",
        content=body.encode(),
        headers={**auth("clinic"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"].startswith("request.observations[2]")


def test_a_body_over_the_limit_is_refused(client: TestClient) -> None:
    request = example("01-approved-every-3-weeks.json")
    request["medications"] = ["x" * 1000] * 100
    response = client.post(
        "/v1/requests", json={"member_id": "M-1", "request": request}, headers=auth("clinic")
    )
    assert response.status_code == 413


def test_metrics_as_json_and_csv(client: TestClient, env: Env) -> None:
    submit(client, "01-approved-every-3-weeks.json")
    pended = submit(client, "07-pended-dose-exception.json")
    env.clock.advance(hours=10)
    client.post(
        f"/v1/requests/{pended['case_id']}/decision",
        json={"action": "approve"},
        headers=auth("pharmacist"),
    ).raise_for_status()
    report = client.get("/v1/metrics?from=2026-11-01&to=2026-11-30", headers=auth("md1")).json()
    assert report["standard"]["decided"] == 2
    assert report["standard"]["approved_percent"] == 100.0
    assert report["standard"]["median_hours_to_decision"] == 5.0
    assert report["automatic_approval"]["automatic_percent"] == 50.0
    csv = client.get("/v1/metrics?from=2026-11-01&to=2026-11-30&format=csv", headers=auth("md1"))
    assert csv.headers["content-type"].startswith("text/csv")
    assert "standard,approved_percent,100.0" in csv.text
    assert report["clocks"]["missed_due_time"] == 0
    late = submit(client, "04-pended-criteria-not-met-age.json")
    env.clock.advance(days=8)
    report = client.get("/v1/metrics?from=2026-11-01&to=2026-12-31", headers=auth("md1")).json()
    assert report["clocks"]["missed_due_time"] == 1
    assert late["status"] == "pended"
    nothing = client.get("/v1/metrics?from=2025-01-01&to=2025-12-31", headers=auth("md1")).json()
    assert nothing["standard"]["decided"] == 0
    assert (
        client.get("/v1/metrics?from=2026-12-01&to=2026-11-01", headers=auth("md1")).status_code
        == 422
    )


def test_policies_are_listed_with_their_versions(client: TestClient) -> None:
    listed = client.get("/v1/policies", headers=auth("clinic")).json()
    assert sorted(p["policy_id"] for p in listed) == POLICY_IDS
    assert all(p["active"] and p["content_hash"].startswith("sha256:") for p in listed)
    [policy] = [p for p in listed if p["policy_id"] == "ixempra"]
    detail = client.get("/v1/policies/ixempra", headers=auth("clinic")).json()
    assert detail["versions"][0]["content_hash"] == policy["content_hash"]
    assert "ixempra" in detail["versions"][0]["yaml"]
    assert client.get("/v1/policies/nothing", headers=auth("clinic")).status_code == 404


def test_the_log_holds_no_health_information(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    case = submit(client, "04-pended-criteria-not-met-age.json", member="M-SECRET-77")
    client.get(f"/v1/requests/{case['case_id']}", headers=auth("clinic"))
    client.get("/v1/authorizations?member_id=M-SECRET-77", headers=auth("clinic"))
    # The server's own records (httpx, the test's client, logs the URLs it calls).
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "POST /v1/requests 201" in text
    for secret in ("M-SECRET-77", "2009-06-01", "C50.A12", case["case_id"], "PA-2026-000104"):
        assert secret not in text


def test_openapi_is_published(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/requests" in paths and "/v1/requests/{case_id}/decision" in paths


def test_a_streamed_body_over_the_limit_is_refused(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"member_id": "M-1", "request": {"request_id": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}}'

    response = client.post(
        "/v1/requests",
        content=chunks(),
        headers={**auth("clinic"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_deciding_an_unknown_case_is_a_404(client: TestClient) -> None:
    response = client.post(
        "/v1/requests/00ff/decision", json={"action": "approve"}, headers=auth("md1")
    )
    assert response.status_code == 404


def test_a_date_at_the_end_of_the_calendar_is_a_422_not_a_500(client: TestClient) -> None:
    request = example("01-approved-every-3-weeks.json")
    request["service"]["start_date"] = "9999-12-31"
    response = client.post(
        "/v1/requests", json={"member_id": "M-1", "request": request}, headers=auth("clinic")
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "request.service.start_date"


def test_looking_up_a_members_authorizations_is_audited(client: TestClient, env: Env) -> None:
    submit(client, "01-approved-every-3-weeks.json", member="M-9")
    client.get("/v1/authorizations?member_id=M-9", headers=auth("pharmacist")).raise_for_status()
    with env.service.database.engine.connect() as connection:
        last = connection.execute(
            text("SELECT actor, action, detail_json FROM audit_events ORDER BY id DESC LIMIT 1")
        ).one()
    assert (last.actor, last.action) == ("pharmacist", "authorizations.read")
    assert '"member_id":"M-9"' in last.detail_json
    assert env.service.verify_audit()[1] is None


def test_a_request_is_found_by_its_request_id_within_what_the_caller_may_see(
    client: TestClient, env: Env
) -> None:
    ours = submit(client, "04-pended-criteria-not-met-age.json", request_id="PA-FIND-1")
    theirs = submit(
        client, "04-pended-criteria-not-met-age.json", who="other-clinic", request_id="PA-FIND-1"
    )
    found = client.get("/v1/requests?request_id=PA-FIND-1", headers=auth("clinic"))
    assert found.status_code == 200, found.text
    assert [c["case_id"] for c in found.json()] == [ours["case_id"]]
    assert found.json()[0]["status"] == "pended"
    # A reviewer finds both organizations' cases; an unknown id finds none (not an error).
    both = client.get("/v1/requests?request_id=PA-FIND-1", headers=auth("pharmacist")).json()
    assert {c["case_id"] for c in both} == {ours["case_id"], theirs["case_id"]}
    nothing = client.get("/v1/requests?request_id=PA-NONE", headers=auth("clinic"))
    assert nothing.status_code == 200 and nothing.json() == []
    assert client.get("/v1/requests?request_id=PA-FIND-1").status_code == 401
    for bad in ("", "a%20b", "x" * 65):
        assert (
            client.get(f"/v1/requests?request_id={bad}", headers=auth("clinic")).status_code == 422
        )
    assert client.get("/v1/requests", headers=auth("clinic")).status_code == 422
    with env.service.database.engine.connect() as connection:
        last = connection.execute(
            text("SELECT actor, action, detail_json FROM audit_events ORDER BY id DESC LIMIT 1")
        ).one()
    # Every lookup is an audit event, an empty one too (the refused ones never reached it).
    assert (last.actor, last.action) == ("clinic", "request.looked-up")
    assert '"found":0' in last.detail_json and '"request_id":"PA-NONE"' in last.detail_json
    assert env.service.verify_audit()[1] is None


def test_reviewers_claim_release_assign_and_note_over_the_api(client: TestClient) -> None:
    case = submit(client, "04-pended-criteria-not-met-age.json")
    url = f"/v1/requests/{case['case_id']}"

    def holder() -> str | None:
        [item] = [
            i
            for i in client.get("/v1/queue", headers=auth("admin")).json()
            if i["case_id"] == case["case_id"]
        ]
        held: str | None = item["assigned_to"]
        return held

    assert holder() is None
    assert client.post(f"{url}/claim", headers=auth("md1")).status_code == 204
    assert holder() == "md1"
    # Held by another: md2 may not take it, nor give it back.
    assert client.post(f"{url}/claim", headers=auth("md2")).status_code == 409
    assert client.post(f"{url}/release", headers=auth("md2")).status_code == 409
    assert client.post(f"{url}/release", headers=auth("md1")).status_code == 204
    assert holder() is None
    # An admin assigns; only to a reviewer who decides the case's queue.
    assigned = client.post(f"{url}/assign", json={"to": "md2"}, headers=auth("admin"))
    assert assigned.status_code == 204, assigned.text
    assert holder() == "md2"
    nobody = client.post(f"{url}/assign", json={"to": "nobody"}, headers=auth("admin"))
    assert nobody.status_code == 404
    not_admin = client.post(f"{url}/assign", json={"to": "md1"}, headers=auth("md1"))
    assert not_admin.status_code == 403
    # Notes: reviewers only, words required, never shown to the submitter.
    note = client.post(f"{url}/notes", json={"text": "Asked the clinic."}, headers=auth("md2"))
    assert note.status_code == 204
    assert client.post(f"{url}/notes", json={"text": ""}, headers=auth("md2")).status_code == 422
    assert (
        client.post(f"{url}/notes", json={"text": "x"}, headers=auth("clinic")).status_code == 403
    )
    assert client.post(f"{url}/claim", headers=auth("clinic")).status_code == 403
    record = client.get(url, headers=auth("clinic")).json()
    assert "Asked the clinic." not in json.dumps(record)
    actions = [e["action"] for e in record["history"]]
    assert actions[1:5] == [
        "request.claimed",
        "request.released",
        "request.assigned",
        "request.noted",
    ]
