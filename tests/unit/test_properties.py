"""Invariants of the engine, checked with hypothesis over every shipped policy.

Requests are the example requests (every policy's) with parts taken away at random, so each
property is tried on realistic records of every policy's shape.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth import Determination, PolicySet, parse_request
from priorauth.clinical.observations import BSA, CRCL, KNOWN
from priorauth.engine.answers import answerable
from priorauth.engine.compiled import CompiledPolicy
from priorauth.engine.criteria import compile_criteria
from priorauth.engine.determination import FactResult
from priorauth.engine.kleene import Truth
from priorauth.policy.model import CriterionSpec
from tests.conftest import EXAMPLES, ROOT

POLICIES = PolicySet.from_directory(ROOT / "policies")
AS_OF = dt.date(2026, 11, 20)
REQUESTS = {
    p.name: json.loads(p.read_text())
    for p in sorted(EXAMPLES.glob("*.json"))
    if POLICIES.find(parse_request(json.loads(p.read_text())).service) is not None
}
# A measured body surface area or clearance stands in for one worked out from other
# observations: taking it away changes a known value into another known value, not into an
# unknown, so these codes are left alone where a property is about less information.
STAND_INS = {code for code, measure in KNOWN.items() if measure in (BSA, CRCL)}
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decide(request: dict[str, Any]) -> Determination:
    return POLICIES.evaluate(request, as_of=AS_OF)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """An example request with some of its answers, observations (all those of a code at once),
    medications and practitioners taken away."""
    request = copy.deepcopy(REQUESTS[draw(st.sampled_from(sorted(REQUESTS)))])
    answers = request.get("answers", {})
    for key in sorted(answers):
        if draw(st.booleans()):
            del answers[key]
    codes = sorted({o["code"] for o in request.get("observations", [])})
    dropped = {c for c in codes if draw(st.booleans())}
    request["observations"] = [
        o for o in request.get("observations", []) if o["code"] not in dropped
    ]
    for part in ("medications", "practitioners"):
        if request.get(part) and draw(st.integers(0, 3)) == 0:
            request[part] = []
    return request


def less(request: dict[str, Any], draw: st.DrawFn) -> dict[str, Any] | None:
    """The request less one answer, or less every observation of one code (not a stand-in)."""
    answers = sorted(request.get("answers", {}))
    codes = sorted({o["code"] for o in request.get("observations", [])} - STAND_INS)
    choices = [("answer", a) for a in answers] + [("code", c) for c in codes]
    if not choices:
        return None
    kind, name = draw(st.sampled_from(choices))
    smaller = copy.deepcopy(request)
    if kind == "answer":
        del smaller["answers"][name]
    else:
        smaller["observations"] = [o for o in smaller["observations"] if o["code"] != name]
    return smaller


@FAST
@given(request=requests())
def test_determinations_are_consistent_deterministic_and_round_trip(
    request: dict[str, Any],
) -> None:
    determination = decide(request)
    assert determination.outcome in ("approved", "pended")  # never denied
    assert (determination.outcome == "approved") == (determination.reasons == ())
    assert (determination.authorization is not None) == (determination.outcome == "approved")
    assert bool(determination.missing) == ("missing-information" in determination.reasons)
    assert len({m.fact for m in determination.missing}) == len(determination.missing)
    # Same request, same bytes; a freshly compiled policy answers the same; the JSON reads back.
    again = decide(copy.deepcopy(request))
    assert again.model_dump_json() == determination.model_dump_json()
    assert determination.policy is not None
    found = POLICIES.get(determination.policy.id)
    assert found is not None
    cold = CompiledPolicy(found.policy, found.safety).evaluate(
        parse_request(request), AS_OF, request
    )
    assert cold.model_dump_json() == determination.model_dump_json()
    assert Determination.model_validate(determination.model_dump()) == determination
    assert (
        Determination.model_validate(json.loads(determination.model_dump_json())) == determination
    )


@FAST
@given(request=requests())
def test_an_approval_authorizes_from_the_service_date(request: dict[str, Any]) -> None:
    determination = decide(request)
    auth = determination.authorization
    if auth is None:
        return
    assert auth.valid_from == determination.service_date
    assert auth.valid_from < auth.valid_through
    assert determination.dosing is not None
    assert auth.regimen == determination.dosing.regimen
    assert auth.doses is None or auth.doses >= 1
    if auth.units is not None:
        assert auth.units_per_dose is not None and auth.doses is not None
        assert auth.units == auth.units_per_dose * auth.doses
    if request.get("type") == "continuation":
        assert auth.continues == request.get("prior_authorization_id")


@FAST
@given(data=st.data())
def test_less_information_never_approves_a_request_pended_for_it(data: st.DataObject) -> None:
    """A request pended only for missing information, with no conflicting evidence, is not
    approved once an answer or an observation is taken away: unknown never counts as met."""
    request = data.draw(requests())
    before = decide(request)
    if before.reasons != ("missing-information",) or before.conflicts:
        return
    smaller = less(request, data.draw)
    if smaller is not None:
        assert decide(smaller).outcome == "pended"


@FAST
@given(data=st.data())
def test_less_information_never_fails_a_criterion(data: st.DataObject) -> None:
    """Taking an answer or an observation away makes facts unknown, never false: a request whose
    criteria and indication were not failed does not fail them with less."""
    request = data.draw(requests())
    before = decide(request)
    failed = {"criteria-not-met", "not-covered-indication"}
    if failed & set(before.reasons) or before.conflicts:
        return
    smaller = less(request, data.draw)
    if smaller is not None:
        assert not failed & set(decide(smaller).reasons)


def _answer(kind: str, choices: list[str]) -> st.SearchStrategy[Any]:
    if kind == "boolean":
        return st.booleans()
    if kind == "number":
        return st.integers(0, 12)
    if kind == "choice":
        return st.sampled_from(choices)
    if kind == "date":
        return st.dates(dt.date(2000, 1, 1), dt.date(2026, 11, 30)).map(dt.date.isoformat)
    return st.just("as the record shows")


@FAST
@given(data=st.data())
def test_answering_unknowns_never_undoes_a_decided_failure(
    data: st.DataObject,
) -> None:
    """A failed criterion or an uncovered indication was decided without the unknowns: answering
    the policy's questions whose facts are unknown keeps it failed."""
    request = data.draw(requests())
    before = decide(request)
    failed = {"criteria-not-met", "not-covered-indication"} & set(before.reasons)
    if not failed or before.policy is None:
        return
    found = POLICIES.get(before.policy.id)
    assert found is not None
    kinds = answerable(found.policy)
    answered = copy.deepcopy(request)
    given = answered.setdefault("answers", {})
    for name, kind in kinds.items():
        fact = before.facts[name]
        if fact.value is None and fact.bounds is None and given.get(name) is None:
            choices = list(getattr(found.policy.facts[name], "choices", []))
            given[name] = data.draw(_answer(kind, choices))
    assert failed <= set(decide(answered).reasons)


@FAST
@given(request=requests(), factor=st.sampled_from([1.01, 1.1, 1.5, 2, 10]))
def test_a_larger_dose_never_fits_where_the_smaller_did_not(
    request: dict[str, Any], factor: float
) -> None:
    dose = request["service"].get("dose")
    if dose is None:
        return
    larger = copy.deepcopy(request)
    larger["service"]["dose"]["value"] = round(dose["value"] * factor, 2)
    before, after = decide(request).dosing, decide(larger).dosing
    if before is None or after is None:
        return  # not a covered indication: no dosing judged
    if after.status == "within":
        assert before.status == "within"
    if before.status == "outside":
        assert after.status == "outside"


@FAST
@given(request=requests(), divisor=st.sampled_from([1.5, 2, 3, 7]))
def test_a_denser_schedule_never_fits_where_the_sparser_did_not(
    request: dict[str, Any], divisor: float
) -> None:
    schedule = request["service"].get("schedule")
    if not schedule or not ({"cycle_length_days", "interval_days"} & set(schedule)):
        return
    denser = copy.deepcopy(request)
    for key in ("cycle_length_days", "interval_days"):
        if key in schedule and "cycle_days" not in schedule:
            denser["service"]["schedule"][key] = max(1, int(schedule[key] / divisor))
    before, after = decide(request).dosing, decide(denser).dosing
    if before is None or after is None:
        return  # not a covered indication: no dosing judged
    if after.status == "within":
        assert before.status == "within"


# --- Kleene monotonicity over random criteria trees -------------------------------------------

FACTS = ("a", "b", "c", "d")


def _leaves() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(FACTS).map(lambda f: {"fact": f})


def _trees(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    lists = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        lists.map(lambda c: {"all": c}),
        lists.map(lambda c: {"any": c}),
        children.map(lambda c: {"not": c}),
        lists.flatmap(lambda c: st.integers(1, len(c)).map(lambda n: {"of": c, "at_least": n})),
    )


def _numbered(node: dict[str, Any], counter: list[int]) -> dict[str, Any]:
    counter[0] += 1
    node = {**node, "id": f"n{counter[0]}", "text": "t"}
    for key in ("all", "any", "of"):
        if key in node:
            node[key] = [_numbered(child, counter) for child in node[key]]
    if "not" in node:
        node["not"] = _numbered(node["not"], counter)
    return node


trees = st.recursive(_leaves(), _trees, max_leaves=8).map(lambda t: _numbered(t, [0]))
truths = st.fixed_dictionaries({f: st.sampled_from([True, False, None]) for f in FACTS})


def _evaluate(tree: dict[str, Any], values: dict[str, Truth]) -> Truth:
    evaluate = compile_criteria(CriterionSpec.model_validate(tree))
    return evaluate({k: FactResult(k, "", v, ()) for k, v in values.items()})[0]


@settings(max_examples=300, deadline=None)
@given(tree=trees, values=truths, data=st.data())
def test_answering_an_unknown_never_changes_a_decided_tree(
    tree: dict[str, Any], values: dict[str, Truth], data: st.DataObject
) -> None:
    """Kleene logic is monotone: a tree decided with some facts unknown stays decided, the same
    way, however the unknowns are answered; and an undecided tree is decided by some answers."""
    before = _evaluate(tree, values)
    filled = {k: v if v is not None else data.draw(st.booleans()) for k, v in values.items()}
    after = _evaluate(tree, filled)
    assert after is not None
    if before is not None:
        assert after == before
