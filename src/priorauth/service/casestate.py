"""A case's states and moves, as one table, and the plan's review rules (review_rules.yaml).

Pure: no database, no clock. The use cases (service.workflow, service.decisions) ask
`next_state` for every change of a case's status and `allowed` for what a role may do, so
the table below is the whole lifecycle:

    submitted -> approved (the engine) | pended (routed to a queue, clock running)
    pended / information-requested -> approved | approved-modified | denied (a reviewer)
    pended / information-requested -> information-requested (questions, due date)
    pended / information-requested -> pended (referred to a medical director; information added)
    denied / approved-modified -> appealed (once) -> approved | approved-modified | denied
    any state but denied -> cancelled (the submitter withdraws a PAS request)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

import yaml

__all__ = [
    "DECISIONS",
    "MOVES",
    "OPEN",
    "ROLE_MOVES",
    "STATES",
    "TRANSITIONS",
    "IllegalMove",
    "Move",
    "ReasonRule",
    "ReviewRules",
    "State",
    "allowed",
    "next_state",
    "review_rules",
]

State = Literal[
    "submitted", "pended", "information-requested", "appealed", "approved", "approved-modified",
    "denied", "cancelled",
]  # fmt: skip
Move = Literal[
    # the engine, on a submission or on information added
    "engine-approves",
    "engine-pends",
    # a reviewer
    "approve",
    "approve-modified",
    "deny",
    "request-info",
    "refer",
    "extend",
    "claim",
    "release",
    "note",
    # an administrator (or a reviewer for themselves: claim)
    "assign",
    # the submitter
    "add-information",
    "appeal",
    "cancel",
]
STATES: tuple[State, ...] = get_args(State)
MOVES: tuple[Move, ...] = get_args(Move)
# A case waits for a person in these states; its clock runs (or is stopped for information).
OPEN: frozenset[str] = frozenset({"pended", "information-requested", "appealed"})
# The moves that decide a case.
DECISIONS: frozenset[str] = frozenset({"approve", "approve-modified", "deny"})

# (state, move) -> the state after it. A pair not in the table is not allowed.
TRANSITIONS: Mapping[tuple[str, str], str] = {
    ("submitted", "engine-approves"): "approved",
    ("submitted", "engine-pends"): "pended",
    # information added is decided again at once by the engine
    ("pended", "add-information"): "pended",
    ("information-requested", "add-information"): "pended",
    ("pended", "engine-approves"): "approved",
    ("pended", "engine-pends"): "pended",
    **{
        (state, move): state
        for state in ("pended", "information-requested", "appealed")
        for move in ("extend", "claim", "release", "assign", "note")
    },
    **{
        (state, move): after
        for state in ("pended", "information-requested", "appealed")
        for move, after in (
            ("approve", "approved"),
            ("approve-modified", "approved-modified"),
            ("deny", "denied"),
        )
    },
    ("pended", "request-info"): "information-requested",
    ("information-requested", "request-info"): "information-requested",
    ("pended", "refer"): "pended",
    ("information-requested", "refer"): "information-requested",
    # a PAS request cancelled by its submitter (certificationType 3), unless denied
    **{
        (state, "cancel"): "cancelled"
        for state in (
            "pended",
            "information-requested",
            "appealed",
            "approved",
            "approved-modified",
        )
    },
    ("denied", "appeal"): "appealed",
    ("approved-modified", "appeal"): "appealed",
    # notes may be added to a closed case too (a call from the provider after a decision)
    **{(state, "note"): state for state in ("approved", "approved-modified", "denied")},
}

# Who may make each move at all (the queue and the plan's rules narrow it: `allowed`).
ROLE_MOVES: Mapping[str, frozenset[str]] = {
    "submitter": frozenset({"add-information", "appeal", "cancel"}),
    "pharmacist": frozenset(
        {
            "approve",
            "approve-modified",
            "deny",
            "request-info",
            "refer",
            "extend",
            "claim",
            "release",
            "note",
        }
    ),
    "medical-director": frozenset(
        {
            "approve",
            "approve-modified",
            "deny",
            "request-info",
            "refer",
            "extend",
            "claim",
            "release",
            "note",
        }
    ),
    "admin": frozenset({"assign", "release", "note"}),
    "system": frozenset({"engine-approves", "engine-pends"}),
}


class IllegalMove(Exception):
    """A move the table does not allow from the case's state."""

    def __init__(self, state: str, move: str) -> None:
        super().__init__(f"the request is {state}; {move} is not possible")
        self.state = state
        self.move = move


def next_state(state: str, move: str) -> str:
    """The state after `move` from `state`, or IllegalMove."""
    after = TRANSITIONS.get((state, move))
    if after is None:
        raise IllegalMove(state, move)
    return after


@dataclass(frozen=True)
class ReasonRule:
    """One specific reason a denial may give."""

    code: str
    title: str
    plain: str
    fits: frozenset[str]
    # "criterion", "dose_rule" or None: what the reviewer must point at.
    names: str | None
    # "unanswered-information-request" or None
    needs: str | None


@dataclass(frozen=True)
class ReviewRules:
    """The plan's review rules (review_rules.yaml)."""

    queues: Mapping[str, frozenset[str]]
    # role -> the queues it may deny in (None: any queue)
    denial: Mapping[str, frozenset[str] | None]
    reasons: Mapping[str, ReasonRule]
    clock_stops: frozenset[str]
    clock_runs: frozenset[str]
    information_due_days: Mapping[str, int]
    information_due_max_days: int

    def deciders(self, queue: str | None) -> frozenset[str]:
        """The roles that decide a case in this queue (an unknown queue: medical directors)."""
        if queue is None:
            return frozenset({"pharmacist", "medical-director"})
        return self.queues.get(queue, frozenset({"medical-director"}))

    def may_deny(self, role: str, queue: str | None) -> bool:
        if role not in self.denial:
            return False
        queues = self.denial[role]
        return queues is None or queue is None or queue in queues

    def clock_stops_for(self, line_of_business: str) -> bool:
        """Whether the decision clock stops while the plan waits for information it asked for."""
        if line_of_business in self.clock_runs:
            return False
        if line_of_business in self.clock_stops:
            return True
        return "default" in self.clock_stops

    def reasons_for(self, pend_reasons: tuple[str, ...] | list[str]) -> list[ReasonRule]:
        """The denial reasons that fit a case pended for these reasons."""
        return [r for r in self.reasons.values() if r.fits & set(pend_reasons)]


def allowed(
    rules: ReviewRules, state: str, role: str, queue: str | None, appealed: bool = False
) -> frozenset[str]:
    """The moves a role may make on a case in this state and queue."""
    moves = {m for m in ROLE_MOVES.get(role, frozenset()) if (state, m) in TRANSITIONS}
    if state == "appealed":
        # An appeal is approved or denied by a medical director; no more questions.
        moves -= {"request-info", "refer"}
        if role != "medical-director":
            moves -= DECISIONS
    else:
        if role not in rules.deciders(queue):
            moves -= DECISIONS
        if not rules.may_deny(role, queue):
            moves.discard("deny")
    if queue == "medical-director" or role == "medical-director":
        moves.discard("refer")
    if appealed:
        moves.discard("appeal")
    return frozenset(moves)


def _parse(data: Mapping[str, Any]) -> ReviewRules:
    reasons = {
        code: ReasonRule(
            code=code,
            title=str(item["title"]),
            plain=" ".join(str(item["plain"]).split()),
            fits=frozenset(item.get("fits") or ()),
            names=item.get("names"),
            needs=item.get("needs"),
        )
        for code, item in data["reasons"].items()
    }
    for rule in reasons.values():
        if rule.names not in (None, "criterion", "dose_rule"):
            raise ValueError(f"review rules: reason {rule.code} names {rule.names!r}")
    denial: dict[str, frozenset[str] | None] = {}
    for role, item in data["denial"].items():
        queues = item.get("queues")
        denial[role] = None if queues == "any" else frozenset(queues or ())
    clock = data["clock"]
    return ReviewRules(
        queues={q: frozenset(roles) for q, roles in data["queues"].items()},
        denial=denial,
        reasons=reasons,
        clock_stops=frozenset(clock.get("stops") or ()),
        clock_runs=frozenset(clock.get("runs") or ()),
        information_due_days={k: int(v) for k, v in clock["information_due_days"].items()},
        information_due_max_days=int(clock["information_due_max_days"]),
    )


def parse_review_rules(text: str) -> ReviewRules:
    """Review rules from YAML text (ValueError when they do not read)."""
    try:
        return _parse(yaml.safe_load(text))
    except (KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise ValueError(f"review rules do not read: {exc}") from exc


@cache
def review_rules() -> ReviewRules:
    """The review rules shipped with the package."""
    text = resources.files("priorauth.service").joinpath("review_rules.yaml").read_text("utf-8")
    return parse_review_rules(text)
