"""The case state machine, every state x move, and the review rules' table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth.service.casestate import (
    DECISIONS,
    MOVES,
    OPEN,
    ROLE_MOVES,
    STATES,
    TRANSITIONS,
    IllegalMove,
    allowed,
    next_state,
    parse_review_rules,
    review_rules,
)
from priorauth.service.people import ROLES
from tests.service_fixtures import ROOT

RULES = review_rules()
CLOSED = set(STATES) - OPEN - {"submitted"}
QUEUES = (*RULES.queues, None)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", MOVES)
def test_every_state_and_move_is_in_the_table_or_refused(state: str, move: str) -> None:
    if (state, move) in TRANSITIONS:
        assert next_state(state, move) == TRANSITIONS[(state, move)]  # type: ignore[index]
    else:
        with pytest.raises(IllegalMove, match=state):
            next_state(state, move)


def test_every_state_is_reachable_from_a_submission() -> None:
    seen, frontier = {"submitted"}, ["submitted"]
    while frontier:
        state = frontier.pop()
        for (before, _), after in TRANSITIONS.items():
            if before == state and after not in seen:
                seen.add(after)
                frontier.append(after)
    assert seen == set(STATES)


def test_a_closed_case_is_never_decided_again_and_only_an_appeal_reopens_it() -> None:
    for state in CLOSED:
        leaving = {m for (s, m), after in TRANSITIONS.items() if s == state and after != state}
        # An appeal reopens it; a PAS cancellation withdraws an approval.
        assert leaving <= {"appeal", "cancel"}, state
        assert "cancel" not in leaving or state != "denied"
        assert not any((state, m) in TRANSITIONS for m in DECISIONS)
    # Every open state can be decided three ways.
    for state in OPEN:
        assert {TRANSITIONS[(state, m)] for m in DECISIONS} == {  # type: ignore[index]
            "approved",
            "approved-modified",
            "denied",
        }


def test_the_software_never_denies() -> None:
    assert "deny" not in ROLE_MOVES["system"]
    assert all(
        after != "denied"
        for (before, move), after in TRANSITIONS.items()
        if move != "deny" and before != "denied"
    )


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("queue", QUEUES)
def test_what_each_role_may_do_in_each_state_and_queue(
    state: str, role: str, queue: str | None
) -> None:
    moves = allowed(RULES, state, role, queue)
    # Never a move the table refuses, never one the role has not.
    assert all((state, m) in TRANSITIONS for m in moves)
    assert moves <= ROLE_MOVES[role]
    if role in ("submitter", "admin"):
        assert not moves & DECISIONS
    if "deny" in moves:
        assert role == "medical-director" or (
            role == "pharmacist" and queue in ("pharmacist", None)
        )
    if state == "appealed":
        assert bool(moves & DECISIONS) == (role == "medical-director")
    if state in OPEN and role in ("pharmacist", "medical-director"):
        # A reviewer can always move an open case on: decide it, or refer it to one who can
        # (a case with a medical director already waits for one; an appeal too).
        assert (
            moves & DECISIONS
            or "refer" in moves
            or queue == "medical-director"
            or state == "appealed"
        )
        if queue == "medical-director" and role == "pharmacist" and state != "appealed":
            assert not moves & DECISIONS and "request-info" in moves
        if role == "medical-director":
            assert moves >= DECISIONS


@pytest.mark.parametrize("state", sorted(OPEN))
@pytest.mark.parametrize("queue", QUEUES)
def test_a_medical_director_may_decide_any_open_case(state: str, queue: str | None) -> None:
    assert allowed(RULES, state, "medical-director", queue) >= DECISIONS


def test_every_pend_reason_has_a_denial_reason_and_a_queue_that_can_use_it() -> None:
    """Each pend reason a policy routes: the queue it goes to has a role that may deny it with a
    reason code that fits (information-not-received fits any case once it was asked)."""
    import yaml

    from priorauth import PolicySet
    from priorauth.engine.determination import REASON_ORDER

    routed: set[tuple[str, str]] = set()
    for path in (ROOT / "policies").glob("*.yaml"):
        if path.name.endswith(".data.yaml"):
            continue
        data = yaml.safe_load(path.read_text())
        routed |= {(reason, queue) for reason, queue in (data.get("routing") or {}).items()}
    # A reason a policy does not route goes where the engine sends it by default.
    for compiled in PolicySet.from_directory(ROOT / "policies").policies:
        routed |= {(reason, compiled._route(reason)) for reason in REASON_ORDER}
    assert {reason for reason, _ in routed} == set(REASON_ORDER)
    for reason, queue in routed:
        assert RULES.reasons_for([reason]), reason
        deciders = RULES.deciders(queue)
        assert any(RULES.may_deny(role, queue) for role in deciders), (reason, queue)
    # Known queues only: a routing to a queue the rules do not know goes to medical directors.
    assert {queue for _, queue in routed} <= set(RULES.queues)


def test_the_clock_stops_for_information_only_where_the_rules_say() -> None:
    assert not RULES.clock_stops_for("medicare-advantage")
    assert not RULES.clock_stops_for("medicaid")
    assert RULES.clock_stops_for("commercial")
    assert RULES.clock_stops_for("some-other-line")  # default


def test_rules_that_do_not_read_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="do not read"):
        parse_review_rules("queues: {}\n")
    with pytest.raises(ValueError, match="names"):
        parse_review_rules(
            "queues: {}\ndenial: {}\nclock: {information_due_days: {}, "
            "information_due_max_days: 1}\nreasons:\n  x: {title: t, plain: p, names: fact}\n"
        )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*ROLES, "system"]),
            st.sampled_from(MOVES),
            st.sampled_from(QUEUES),
        ),
        max_size=30,
    )
)
def test_any_run_of_allowed_moves_keeps_the_rules(
    steps: list[tuple[str, str, str | None]],
) -> None:
    """A case moved by whoever may, in whatever order: it is denied only by a reviewer's deny,
    appealed at most once, and while open a medical director can always decide it."""
    state, appealed, queue = "submitted", False, None
    for role, move, routed in steps:
        if state == "submitted":
            queue = routed
        if role == "system":
            may = {m for m in ROLE_MOVES["system"] if (state, m) in TRANSITIONS}
        else:
            may = set(allowed(RULES, state, role, queue, appealed))
        if move not in may:
            continue
        after = next_state(state, move)
        if after == "denied" and state != "denied":
            assert move == "deny" and role in ("pharmacist", "medical-director")
        if move == "appeal":
            assert not appealed
            appealed = True
        if move == "refer":
            queue = "medical-director"
        state = after
        if state in OPEN:
            assert allowed(RULES, state, "medical-director", queue, appealed) >= DECISIONS
