"""Every pended case can be decided by the role it is routed to (service.decisions), on a real
database: each example pended for each reason, walked by each reviewer role; the clock stops
and restarts for information where the rules say; reviewer approvals take the policy's period
and billing units."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from priorauth.service.casestate import DECISIONS, allowed, review_rules
from priorauth.service.errors import Forbidden, Invalid
from priorauth.service.integrity import verify_trail
from priorauth.service.workflow import Decision
from tests.conftest import EXAMPLES, example
from tests.service_fixtures import TOKENS, Env

# Every pend reason and every queue: the seed policy's pended examples (one for each reason,
# and conflicting evidence), and two of the other policies' whose questions name no criterion or
# whose unmet criterion is a concurrent medicine.
PENDED = [
    *sorted(p.name for p in EXAMPLES.glob("[0-9]*pended*.json")),
    "eribulin-06-pended-missing-information.json",
    "infliximab-07-pended-concurrent-biologic.json",
]
RULES = review_rules()


def _criteria(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    if node is None:
        return []
    return [node, *(c for child in node["children"] for c in _criteria(child))]


def _denial(case: dict[str, Any]) -> Decision | None:
    """A denial that fits the case: a reason code for one of its pend reasons, naming the
    criterion or dose rule the code is about (None: none fits before information is asked)."""
    determination = case["determination"]
    for rule in RULES.reasons_for(determination["reasons"]):
        if rule.names == "criterion":
            named = [c for c in _criteria(determination["criteria"]) if c["status"] != "met"]
            if named:
                return Decision(
                    "deny", "Not met.", reason_code=rule.code, criterion=named[-1]["id"]
                )
        elif rule.names == "dose_rule":
            checks = (determination.get("dosing") or {}).get("checks") or []
            unmet = [c for c in checks if c["status"] != "met"]
            if unmet:
                return Decision("deny", "Dose.", reason_code=rule.code, dose_rule=unmet[0]["id"])
        else:
            return Decision("deny", "In the reviewer's words.", reason_code=rule.code)
    assert determination["reasons"] == ["missing-information"], determination["reasons"]
    return None


def _deny(env: Env, md: Any, case: dict[str, Any]) -> dict[str, Any]:
    """Deny as the case allows: with a reason that fits it, or, where only information is
    missing, by asking for it and denying when the answer would come too late."""
    denial = _denial(case)
    if denial is None:
        answer_by = dt.datetime.fromisoformat(case["due_at"]) + dt.timedelta(days=1)
        env.service.decide(
            md, case["case_id"], Decision("request-info", "Records?", information_due=answer_by)
        )
        denial = Decision("deny", "Not received.", reason_code="information-not-received")
    return env.service.decide(md, case["case_id"], denial)


@pytest.mark.parametrize("name", PENDED)
@pytest.mark.parametrize("role", ["pharmacist", "md1"])
def test_every_pended_case_can_be_decided_by_the_role_it_reaches(
    env: Env, name: str, role: str
) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    reviewer = service.authenticate(TOKENS[role])
    md = service.authenticate(TOKENS["md2"])
    case = service.submit(clinic, example(name), "M-1").case
    assert case["status"] == "pended"
    case_id = case["case_id"]
    moves = allowed(RULES, "pended", reviewer.role, case["queue"])
    if moves & DECISIONS:
        if "deny" in moves:
            decided = _deny(env, reviewer, case)
            assert decided["status"] == "denied"
        else:
            decided = service.decide(reviewer, case_id, Decision("approve"))
            assert decided["status"] == "approved"
    else:
        # Not this role's to decide: it moves the case to one who may, and that one decides.
        if "refer" in moves:
            service.decide(reviewer, case_id, Decision("refer", "Medical necessity question."))
        else:
            assert "request-info" in moves
            service.decide(reviewer, case_id, Decision("request-info", "Any more records?"))
        decided = _deny(env, md, case)
        assert decided["status"] == "denied"
    # Decided before its due time, with nothing left open.
    assert dt.datetime.fromisoformat(decided["decided_at"]) < dt.datetime.fromisoformat(
        case["due_at"]
    )
    assert decided["due_at"] is None
    # The audit trail still accounts for the case's state after every move.
    assert verify_trail(service.database).problem is None


def test_the_trail_verifies_after_information_is_asked_then_the_case_is_referred(
    env: Env,
) -> None:
    """A referral of a case waiting for information: `audit verify` follows the moves."""
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    pharmacist = service.authenticate(TOKENS["pharmacist"])
    case = service.submit(clinic, example("10-pended-safety-review.json"), "M-1").case
    service.decide(pharmacist, case["case_id"], Decision("request-info", "Repeat the ANC?"))
    referred = service.decide(pharmacist, case["case_id"], Decision("refer", "Needs an MD."))
    assert referred["queue"] == "medical-director"
    assert verify_trail(service.database).problem is None


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("05-pended-not-covered-indication.json", "not-covered-indication"),
        ("09-pended-no-policy.json", "no-policy"),
        ("10-pended-safety-review.json", "safety"),
    ],
)
def test_cases_without_an_unmet_criterion_are_denied_with_their_reason(
    env: Env, name: str, code: str
) -> None:
    """Once impossible (422: "not a criterion of the policy"): such cases sat until their clock
    ran out."""
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    md = service.authenticate(TOKENS["md1"])
    case = service.submit(clinic, example(name), "M-1").case
    with pytest.raises(Invalid) as vague:
        service.decide(md, case["case_id"], Decision("deny", "No."))
    assert "reason_code" in vague.value.problems[0].message
    with pytest.raises(Invalid) as wrong:
        service.decide(
            md, case["case_id"], Decision("deny", "No.", reason_code="information-not-received")
        )
    assert "no request for information" in wrong.value.problems[0].message
    decided = service.decide(md, case["case_id"], Decision("deny", "Words.", reason_code=code))
    assert decided["status"] == "denied"
    record = service.read(md, case["case_id"])
    assert record["reviews"][-1]["reason"] == "Words."
    assert record["reviews"][-1]["reason_code"] == code


def test_a_reason_code_that_does_not_fit_the_case_is_refused(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    md = service.authenticate(TOKENS["md1"])
    case = service.submit(clinic, example("07-pended-dose-exception.json"), "M-1").case
    for code, field in [("no-policy", "reason_code"), ("nonsense", "reason_code")]:
        with pytest.raises(Invalid) as refused:
            service.decide(md, case["case_id"], Decision("deny", "x", reason_code=code))
        assert refused.value.problems[0].field == field
    with pytest.raises(Invalid) as unnamed:
        service.decide(
            md, case["case_id"], Decision("deny", "x", reason_code="dose-outside-policy")
        )
    assert unnamed.value.problems[0].field == "dose_rule"


def test_a_pharmacist_may_not_deny_outside_the_pharmacist_queue(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    pharmacist = service.authenticate(TOKENS["pharmacist"])
    case = service.submit(clinic, example("05-pended-not-covered-indication.json"), "M-1").case
    with pytest.raises(Forbidden):
        service.decide(
            pharmacist,
            case["case_id"],
            Decision("deny", "x", reason_code="not-covered-indication"),
        )
    safety = service.submit(clinic, example("10-pended-safety-review.json"), "M-2").case
    assert safety["queue"] == "pharmacist"
    decided = service.decide(
        pharmacist, safety["case_id"], Decision("deny", "ANC too low.", reason_code="safety")
    )
    assert decided["status"] == "denied"


def test_the_clock_stops_for_information_and_restarts_with_the_time_left(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    pharmacist = service.authenticate(TOKENS["pharmacist"])
    request = example("06-pended-missing-information.json")
    case = service.submit(clinic, request, "M-1", line_of_business="commercial").case
    due = dt.datetime.fromisoformat(case["due_at"])
    env.clock.advance(days=1)
    answer_by = env.clock() + dt.timedelta(days=5)
    asked = service.decide(
        pharmacist,
        case["case_id"],
        Decision("request-info", questions=("Is it metastatic?",), information_due=answer_by),
    )
    assert asked["clock_stopped"] is True
    # Three days later the provider answers (still pended: other questions remain).
    env.clock.advance(days=3)
    after = service.add_information(clinic, case["case_id"], {"answers": {"metastatic": True}})
    assert after["status"] == "pended" and after["clock_stopped"] is False
    # The clock was stopped for those three days.
    assert dt.datetime.fromisoformat(after["due_at"]) == due + dt.timedelta(days=3)


def test_the_review_queue_counts_a_stopped_clock_as_the_worklist_does(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    pharmacist = service.authenticate(TOKENS["pharmacist"])
    case = service.submit(
        clinic, example("06-pended-missing-information.json"), "M-1", line_of_business="commercial"
    ).case
    due = dt.datetime.fromisoformat(case["due_at"])
    env.clock.advance(days=1)
    stopped_at = env.clock()
    answer_by = due + dt.timedelta(days=10)
    service.decide(
        pharmacist,
        case["case_id"],
        Decision("request-info", questions=("Is it metastatic?",), information_due=answer_by),
    )
    # Past the first due time, while the provider still has days to answer: not overdue, and
    # due when the clock restarts (at the answer's due date) with the time left when it stopped.
    env.clock.now = due + dt.timedelta(days=2)
    [item] = [c for c in service.queue(pharmacist) if c["case_id"] == case["case_id"]]
    assert item["clock_stopped"] is True
    assert item["overdue"] is False
    assert dt.datetime.fromisoformat(item["due_at"]) == due + (answer_by - stopped_at)
    # Once that date has passed without an answer, the clock runs again.
    env.clock.now = answer_by + dt.timedelta(hours=1)
    [item] = [c for c in service.queue(pharmacist) if c["case_id"] == case["case_id"]]
    assert item["clock_stopped"] is False


def test_a_stopped_clock_restarts_when_the_information_is_due_and_then_may_be_denied(
    env: Env,
) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    md = service.authenticate(TOKENS["md1"])
    case = service.submit(
        clinic, example("06-pended-missing-information.json"), "M-1", line_of_business="commercial"
    ).case
    answer_by = env.clock() + dt.timedelta(days=2)
    service.decide(
        md, case["case_id"], Decision("request-info", "Records?", information_due=answer_by)
    )
    not_yet = Decision("deny", "Nothing came.", reason_code="information-not-received")
    with pytest.raises(Invalid) as early:
        service.decide(md, case["case_id"], not_yet)
    assert "wait until then" in early.value.problems[0].message
    env.clock.advance(days=2, seconds=1)
    decided = service.decide(md, case["case_id"], not_yet)
    assert decided["status"] == "denied"


def test_on_medicare_advantage_the_clock_keeps_running(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    md = service.authenticate(TOKENS["md1"])
    case = service.submit(clinic, example("06-pended-missing-information.json"), "M-1").case
    asked = service.decide(md, case["case_id"], Decision("request-info", "Records?"))
    assert asked["due_at"] == case["due_at"]
    env.clock.advance(days=2)
    answered = service.add_information(clinic, case["case_id"], {"answers": {"metastatic": True}})
    assert answered["due_at"] == case["due_at"]


def test_a_reviewer_approval_takes_the_policys_period_and_billing_units(env: Env) -> None:
    """Infliximab's initial approval lasts six months (not a year)."""
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    pharmacist = service.authenticate(TOKENS["pharmacist"])
    case = service.submit(clinic, example("infliximab-06-pended-dose-exception.json"), "M-1").case
    decided = service.decide(pharmacist, case["case_id"], Decision("approve"))
    [authorization] = decided["authorizations"]
    start = dt.date.fromisoformat(authorization["valid_from"])
    through = dt.date.fromisoformat(authorization["valid_through"])
    assert (start.month + 6 - 1) % 12 + 1 == (through + dt.timedelta(days=1)).month
    assert authorization["regimen"]["billing_code"] is not None
    assert authorization["regimen"]["units"] == (
        authorization["regimen"]["units_per_dose"] * authorization["regimen"]["doses"]
    )


def test_refer_claim_and_release(env: Env) -> None:
    from priorauth.service import decisions

    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    pharmacist = service.authenticate(TOKENS["pharmacist"])
    md = service.authenticate(TOKENS["md1"])
    admin = service.authenticate(TOKENS["admin"])
    case = service.submit(clinic, example("07-pended-dose-exception.json"), "M-1").case
    decisions.claim(service, pharmacist, case["case_id"])
    with pytest.raises(Exception, match="another reviewer"):
        decisions.claim(service, md, case["case_id"])
    decisions.release(service, pharmacist, case["case_id"])
    decisions.claim(service, md, case["case_id"])
    decisions.assign(service, admin, case["case_id"], "pharmacist")
    with pytest.raises(Forbidden):
        decisions.claim(service, clinic, case["case_id"])
    referred = service.decide(pharmacist, case["case_id"], Decision("refer", "Off-label dose."))
    assert referred["queue"] == "medical-director" and referred["status"] == "pended"
    with pytest.raises(Forbidden):
        service.decide(pharmacist, case["case_id"], Decision("approve"))


def test_a_referral_stays_with_a_medical_director_when_information_comes(env: Env) -> None:
    service = env.service
    clinic = service.authenticate(TOKENS["clinic"])
    pharmacist = service.authenticate(TOKENS["pharmacist"])
    case = service.submit(clinic, example("06-pended-missing-information.json"), "M-1").case
    assert case["queue"] == "intake"
    service.decide(pharmacist, case["case_id"], Decision("refer", "Unusual history."))
    after = service.add_information(clinic, case["case_id"], {"answers": {"metastatic": True}})
    assert after["status"] == "pended" and after["queue"] == "medical-director"
