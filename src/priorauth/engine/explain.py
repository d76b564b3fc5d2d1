"""Turn an evaluated determination into words: a one-line summary and a rationale.

Everything here reads the structured results (criteria tree, facts, dosing); nothing decides.
"""

from __future__ import annotations

from collections.abc import Mapping

from priorauth.engine.determination import (
    Alert,
    Authorization,
    Conflict,
    CriterionResult,
    Determination,
    FactResult,
    Missing,
    Reason,
)

__all__ = ["fact_value", "rationale", "summary"]

_REASON_WORDS: dict[str, str] = {
    "service-date": "the service start date is outside what software decides",
    "not-covered-indication": "not a covered indication",
    "criteria-not-met": "a criterion is not met",
    "missing-information": "information is missing",
    "dose-exception": "the dose is outside the policy's regimens",
    "safety-review": "a safety finding needs a pharmacist",
    "no-policy": "no loaded policy governs this drug",
}


def fact_value(fact: FactResult, yes: str = "yes", no: str = "no") -> str:
    """A fact's value as a reviewer reads it: `56 years`, `yes`, `at least 2` (a count known
    only from below), `unknown`."""
    if fact.value is None:
        if fact.bounds is not None:
            least, most = fact.bounds
            return f"at least {least}" if most is None else f"{least} to {most}"
        return "unknown"
    if isinstance(fact.value, bool):
        return yes if fact.value else no
    text = f"{fact.value:g}" if isinstance(fact.value, float) else str(fact.value)
    return f"{text} {fact.unit}" if fact.unit and not isinstance(fact.value, str) else text


def _truth(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _fact_words(fact: FactResult, origins: Mapping[str, str]) -> str:
    sources = ", ".join(
        f"{e.field}={e.value}" + (f" <- {origins[e.field]}" if e.field in origins else "")
        for e in fact.evidence
    )
    text = f"{fact.name} = {fact_value(fact)}"
    if sources:
        text += f" (from {sources})"
    if fact.note and fact.value is None and fact.bounds is None:
        text += f": {fact.note}"
    return text


def _failed(node: CriterionResult) -> list[CriterionResult]:
    """The deepest not-met nodes that make this node not met."""
    if node.status != "not-met":
        return []
    if node.operator == "fact" or node.operator == "not":
        return [node]
    deeper = [f for child in node.children for f in _failed(child)]
    # An ANY node fails only when every child fails: name the node itself.
    return [node] if node.operator == "any" or not deeper else deeper


def summary(
    reasons: tuple[Reason, ...],
    route: str | None,
    authorization: Authorization | None,
    criteria: CriterionResult | None,
    missing: list[Missing],
    conflicts: tuple[Conflict, ...] = (),
    alerts: tuple[Alert, ...] = (),
    service_dates: str | None = None,
) -> str:
    """One line a reviewer can read first. `service_dates` says why the service's start date
    is not one software decides (engine.service_dates), when it is not."""
    if not reasons and authorization is not None:
        return (
            f"Approved {authorization.valid_from.isoformat()} through "
            f"{authorization.valid_through.isoformat()}: regimen {authorization.regimen}"
            + (
                f", {authorization.units} units of {authorization.billing_code}"
                if authorization.units is not None
                else ""
            )
        )
    parts = [_REASON_WORDS[r] for r in reasons]
    if "criteria-not-met" in reasons and criteria is not None:
        ids = ", ".join(n.id for n in _failed(criteria))
        parts[reasons.index("criteria-not-met")] = f"criterion {ids} not met"
    if "service-date" in reasons and service_dates is not None:
        parts[reasons.index("service-date")] = service_dates
    if "missing-information" in reasons:
        parts[reasons.index("missing-information")] = f"{len(missing)} question(s) to answer"
    if "safety-review" in reasons:
        held = ", ".join(f"{a.code} ({a.severity})" for a in alerts if a.severity != "warning")
        parts[reasons.index("safety-review")] = f"safety finding(s) {held}"
    if conflicts:
        parts.append("conflicting evidence on " + ", ".join(c.fact for c in conflicts))
    return f"Pended for {route or 'review'}: " + "; ".join(parts)


def rationale(determination: Determination) -> list[str]:
    """The reasoning step by step, from the indication through the criteria to the dose."""
    d = determination
    lines: list[str] = [d.summary]
    if d.governed_by is not None:
        lines.append(
            f"Policy found by the drug's name: {d.governed_by.field} "
            f"{d.governed_by.text!r} names {d.governed_by.product} (none of the service's codes "
            "is one the policy lists)"
        )
    indication = d.indication
    if indication is not None and indication.fact is not None:
        lines.append(
            f"Indication {indication.id} ({indication.title}): {indication.status}; "
            + _fact_words(d.facts[indication.fact], d.sources)
        )
    if d.criteria is not None:
        _criterion_lines(d.criteria, d.facts, d.sources, 0, lines)
    for conflict in d.conflicts:
        lines.append(f"Conflict on {conflict.fact}: {conflict.message}")
    for question in d.missing:
        lines.append(f"Missing ({', '.join(question.criteria)}): {question.question}")
    dosing = d.dosing
    if dosing is not None:
        requested = dosing.requested
        dose = (
            f"{requested.dose:g} {requested.dose_unit}"
            if requested.dose is not None
            else "dose unknown"
        )
        if dosing.mg_per_dose is not None and requested.dose_unit != "mg":
            dose += f", {dosing.mg_per_dose:g} mg"
        if dosing.bsa_m2 is not None:
            dose += f"; BSA {dosing.bsa_m2:g} m2 from {dosing.bsa_source}"
        if dosing.weight_kg is not None:
            dose += f"; weight {dosing.weight_kg:g} kg from {dosing.weight_source}"
        lines.append(f"Dosing: {dosing.status} ({dose})")
        lines.extend(f"  Regimen {c.id}: {c.status}: {c.detail}" for c in dosing.checks)
    for alert in d.alerts:
        lines.append(f"Alert {alert.code} ({alert.severity}): {alert.message} [{alert.source}]")
    for skipped in d.screens_not_run:
        why = skipped.reason or f"needs {', '.join(skipped.fields)}"
        lines.append(f"Not screened: {skipped.screen}: {why}")
    for unknown in d.unrecognized:
        lines.append(f"Not in the drug vocabulary: {unknown.field} {unknown.name!r}")
    label = d.label_indication
    if label is not None:
        status = next((c.status for c in label.indications if c.id == label.requested), None)
        flags = ", ".join(f"{k}={_truth(v)}" for k, v in label.flags.items())
        lines.append(f"Label indication {label.requested}: {status} ({flags}); information only")
        lines.extend(
            f"  medications[{t.index}] {t.agent} ({t.agent_class}): {t.detail}"
            for t in label.therapies
        )
    auth = d.authorization
    if auth is not None:
        lines.append(
            f"Authorization: {auth.valid_from.isoformat()} through "
            f"{auth.valid_through.isoformat()}, regimen {auth.regimen}"
            + (f", {auth.doses} dose(s)" if auth.doses is not None else "")
            + (f", {auth.units} units of {auth.billing_code}" if auth.units else "")
        )
    policy = d.policy
    if policy is not None:
        lines.append(
            f"Policy {policy.id} version {policy.version} ({policy.content_hash[:19]}), "
            f"engine {d.engine.version}"
        )
    return lines


def _criterion_lines(
    node: CriterionResult,
    facts: Mapping[str, FactResult],
    origins: Mapping[str, str],
    depth: int,
    lines: list[str],
) -> None:
    indent = "  " * depth
    text = f"{indent}{node.id} {node.status}: {node.text}"
    if node.operator == "fact":
        text += " [" + "; ".join(_fact_words(facts[f], origins) for f in node.facts) + "]"
    lines.append(text)
    for child in node.children:
        _criterion_lines(child, facts, origins, depth + 1, lines)
