"""What the case page shows and reads: a decision from its form, the request as a clinician
reads it, the criteria checklist with evidence, the timeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from priorauth.errors import FieldProblem
from priorauth.service import notices
from priorauth.service.errors import Invalid
from priorauth.service.workflow import Decision

__all__ = ["checklist", "clinical_summary", "decision_from_form", "timeline"]


# ---------------------------------------------------------------------- form -> decision


def decision_from_form(fields: Mapping[str, str]) -> Decision:
    """A decision from the case page's form; Invalid with the field at fault otherwise."""
    action = fields.get("action", "")
    if action not in ("approve", "approve-modified", "deny", "request-info", "refer"):
        raise Invalid([FieldProblem("action", "choose what to do")])

    def text(name: str) -> str | None:
        value = (fields.get(name) or "").strip()
        return value or None

    regimen = None
    if action == "approve-modified":
        problems = []
        schedule: dict[str, int] = {}
        for name in ("interval_days", "cycle_length_days", "doses_per_cycle"):
            raw = text(name)
            if raw is None:
                continue
            if not raw.isdigit():
                problems.append(FieldProblem(name, "a whole number of days"))
            else:
                schedule[name] = int(raw)
        dose_value = text("dose_value")
        value: float | None = None
        try:
            value = float(dose_value) if dose_value else None
        except ValueError:
            problems.append(FieldProblem("dose_value", "a number"))
        if problems:
            raise Invalid(problems)
        regimen = {
            "dose": {"value": value, "unit": text("dose_unit")},
            "schedule": schedule,
        }
    due = None
    if text("information_due"):
        try:
            day = dt.date.fromisoformat(str(text("information_due")))
        except ValueError as exc:
            raise Invalid([FieldProblem("information_due", "a date, YYYY-MM-DD")]) from exc
        due = dt.datetime.combine(day, dt.time(23, 59), dt.UTC)
    questions = tuple(
        line.strip() for line in (fields.get("questions") or "").splitlines() if line.strip()
    )
    return Decision(
        action=action,  # type: ignore[arg-type]
        reason=text("reason"),
        criterion=text("criterion") if action == "deny" else None,
        dose_rule=text("dose_rule") if action == "deny" else None,
        reason_code=text("reason_code") if action == "deny" else None,
        regimen=regimen,
        questions=questions if action == "request-info" else (),
        information_due=due if action == "request-info" else None,
    )


# ---------------------------------------------------------------------- what the page shows


def clinical_summary(view: Mapping[str, Any]) -> dict[str, Any]:
    """The request as a clinician reads it: the patient, the drug and regimen asked for, the
    diagnoses, the results, the medicines, the prescriber."""
    request = view.get("request") or {}
    service_part = request.get("service") or {}
    patient = request.get("patient") or {}
    dose = service_part.get("dose") or {}
    schedule = service_part.get("schedule") or {}
    policy = ((view.get("determination") or {}).get("policy") or {}).get("id")
    label = notices.drug_label(request)
    return {
        "drug": f"{policy}: {label}" if policy else label,
        "dose": f"{dose.get('value')} {dose.get('unit')}" if dose else "not given",
        "schedule": ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in schedule.items())
        or "not given",
        "route": service_part.get("route"),
        "start": service_part.get("start_date"),
        "with": ", ".join(service_part.get("with") or ()),
        "patient": patient,
        "conditions": request.get("conditions") or [],
        "observations": request.get("observations") or [],
        "medications": request.get("medications") or [],
        "allergies": request.get("allergies") or [],
        "practitioners": request.get("practitioners") or [],
        "answers": request.get("answers") or {},
        "type": request.get("type", "initial"),
        "urgency": view.get("urgency"),
    }


def checklist(determination: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The criteria tree as rows, each with the facts that decided it, their evidence (the
    field and value) and the source element the submitter named for that field."""
    facts = determination.get("facts") or {}
    sources = determination.get("sources") or {}
    rows: list[dict[str, Any]] = []

    def walk(node: Mapping[str, Any], depth: int) -> None:
        evidence = []
        for name in node.get("facts") or ():
            fact = facts.get(name) or {}
            for item in fact.get("evidence") or ():
                field = item.get("field", "")
                source = next(
                    (s for f, s in sources.items() if field == f or field.startswith(f + ".")),
                    None,
                )
                evidence.append(
                    {
                        "fact": fact.get("description") or name,
                        "field": field,
                        "value": item.get("value"),
                        "source": source,
                    }
                )
            if not fact.get("evidence"):
                evidence.append(
                    {
                        "fact": fact.get("description") or name,
                        "field": None,
                        "value": fact.get("value"),
                        "source": None,
                        "note": fact.get("note"),
                    }
                )
        rows.append(
            {
                "id": node.get("id"),
                "text": node.get("text"),
                "status": node.get("status"),
                "depth": depth,
                "evidence": evidence,
            }
        )
        for child in node.get("children") or ():
            walk(child, depth + 1)

    if determination.get("criteria"):
        walk(determination["criteria"], 0)
    return rows


def timeline(view: Mapping[str, Any], extras: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Everything that happened to the case, oldest first."""
    events: list[dict[str, Any]] = [
        {"at": dt.datetime.fromisoformat(e["at"]), "who": e["actor"], "what": e["action"]}
        for e in view.get("history") or ()
    ]
    for review in view.get("reviews") or ():
        what = f"decision: {review['action']}"
        if review.get("reason"):
            what += f" ({review['reason']})"
        events.append(
            {"at": dt.datetime.fromisoformat(review["at"]), "who": review["reviewer"], "what": what}
        )
    for note in extras.get("notes") or ():
        events.append({"at": note["at"], "who": note["author"], "what": f"note: {note['text']}"})
    events.sort(key=lambda e: e["at"])
    return events
