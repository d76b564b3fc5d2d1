"""Check a request's answers against the policy's questions: ids it asks, values of the kind
each question takes. A wrong answer is refused with the field named, never guessed at."""

from __future__ import annotations

import datetime as dt
import difflib

from priorauth.engine.agents import name_key
from priorauth.engine.request import Request
from priorauth.errors import FieldProblem, InvalidRequest
from priorauth.policy.model import AnswerFact, Policy

__all__ = ["answerable", "check_answers"]


def answerable(policy: Policy) -> dict[str, str]:
    """The question ids a request may answer for this policy, each with the kind of value it
    takes: an answer fact's type, or what an attestable fact holds."""
    found: dict[str, str] = {}
    for name, spec in policy.facts.items():
        if isinstance(spec, AnswerFact):
            found[name] = spec.type
        elif getattr(spec, "attestable", False):
            if spec.kind in ("measure", "medication-history"):
                found[name] = "number"
            elif spec.kind == "observation":
                # A coded or yes/no observation is attested as it would be recorded.
                found[name] = "number" if getattr(spec, "unit", None) else "any"
            else:
                found[name] = "boolean"
    return found


def _kind_problem(kind: str, value: object, spec: AnswerFact | None) -> str | None:
    if kind == "boolean" and not isinstance(value, bool):
        return "this question takes true or false"
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "this question takes a number"
    if kind == "date" and not isinstance(value, dt.date):
        if not isinstance(value, str):
            return "this question takes a date (YYYY-MM-DD)"
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return "this question takes a date (YYYY-MM-DD)"
    if kind in ("choice", "text") and not isinstance(value, str):
        return "this question takes text" if kind == "text" else "this question takes a choice"
    if kind == "choice" and spec is not None:
        choices = {name_key(c) for c in spec.choices}
        if isinstance(value, str) and name_key(value) not in choices:
            return f"{value!r} is not one of the choices: {', '.join(spec.choices)}"
    return None


def check_answers(policy: Policy, request: Request, kinds: dict[str, str] | None = None) -> None:
    """Raise InvalidRequest naming each answer the policy does not ask for, or that holds the
    wrong kind of value. `kinds` is `answerable(policy)`, when the caller keeps it."""
    if not request.answers:
        return
    kinds = answerable(policy) if kinds is None else kinds
    problems: list[FieldProblem] = []
    for question, answer in request.answers.items():
        field = f"answers.{question}"
        if answer is None:
            continue
        kind = kinds.get(question)
        if kind is None:
            if question in policy.facts:
                message = (
                    f"policy {policy.id} does not take an answer for {question!r}: it is read "
                    "from the record (see the fact's question for what to send)"
                )
            else:
                near = difflib.get_close_matches(question, list(kinds), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                message = f"policy {policy.id} asks no question {question!r}{hint}"
            problems.append(FieldProblem(field, message))
            continue
        spec = policy.facts[question]
        problem = _kind_problem(kind, answer.value, spec if isinstance(spec, AnswerFact) else None)
        if problem is not None:
            problems.append(FieldProblem(f"{field}.value", problem))
    if problems:
        raise InvalidRequest(problems)
