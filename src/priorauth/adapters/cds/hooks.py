"""CDS Hooks 2.0 for Da Vinci CRD: the services, reading a hook call, writing the answer.

The services are `order-sign`, `order-dispatch` and `order-select` (medication orders) and
`appointment-book`. A call is read into a `HookCall` (its orders, the chart, the missing
prefetch keys); the answer puts the coverage-information extension on each order with a
`systemAction` (never in a card), and uses cards only for what a person has to do: answer the
payer's questions (the DTR launch link), or send what the chart lacks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest

from priorauth.adapters.cds.chart import Chart
from priorauth.adapters.cds.eligibility import status_problems
from priorauth.adapters.fhir.bundle import Located
from priorauth.adapters.fhir.problems import IssueCode, Problem

__all__ = [
    "COVERAGE_INFORMATION",
    "HOOKS",
    "PREFETCH",
    "CoverageAnswer",
    "HookCall",
    "appointment_order",
    "discovery",
    "read_hook",
    "render_template",
]

COVERAGE_INFORMATION = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)
INFO_NEEDED_SYSTEM = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"

# The services: id -> (hook, title, description).
HOOKS: dict[str, tuple[str, str, str]] = {
    "priorauth-order-sign": (
        "order-sign",
        "Prior authorization at order signing",
        "Whether a medication order needs prior authorization under the plan's drug policies, "
        "decided from the chart: satisfied (with an assertion id PAS may cite), no-auth, or "
        "auth-needed with the policy's questions the chart leaves open.",
    ),
    "priorauth-order-dispatch": (
        "order-dispatch",
        "Prior authorization when an order is dispatched",
        "The same coverage answer for a medication order sent to a performer.",
    ),
    "priorauth-order-select": (
        "order-select",
        "Prior authorization when an order is selected",
        "The same coverage answer, early: for the selected medication orders.",
    ),
    "priorauth-appointment-book": (
        "appointment-book",
        "Prior authorization when an infusion is booked",
        "The coverage answer for the drug an appointment is booked for (its service type or "
        "the request it is based on, coded in HCPCS, NDC or RxNorm).",
    ),
}

# What the services read, as prefetch templates (CDS Hooks 2.0 tokens).
PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}&status=active",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
    # The ordering user, as the role they act in or as the practitioner (one of the two).
    "userRole": "PractitionerRole?_id={{userPractitionerRoleId}}"
    "&_include=PractitionerRole:practitioner",
    "practitionerRoles": "PractitionerRole?practitioner={{userPractitionerId}}"
    "&_include=PractitionerRole:practitioner",
    # Forms answered before (DTR): their answers count as the requester's.
    "questionnaireResponses": "QuestionnaireResponse?patient={{context.patientId}}"
    "&status=completed",
}
# Extra prefetch for a hook whose orders are references, not resources.
_HOOK_PREFETCH: dict[str, dict[str, str]] = {
    "order-dispatch": {"dispatchedOrders": "MedicationRequest?_id={{context.dispatchedOrders}}"},
}
_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def discovery() -> dict[str, Any]:
    """The discovery document (`GET /cds-services`)."""
    services = []
    for service_id, (hook, title, description) in HOOKS.items():
        services.append(
            {
                "hook": hook,
                "id": service_id,
                "title": title,
                "description": description,
                "prefetch": {**PREFETCH, **_HOOK_PREFETCH.get(hook, {})},
                "usageRequirements": "Send the bearer token of a submitter account "
                "(Authorization: Bearer ...). Prefetch what you can; a key left out is "
                "read from fhirServer with fhirAuthorization when both are given.",
            }
        )
    return {"services": services}


@dataclass(frozen=True, slots=True)
class CoverageAnswer:
    """What the payer says about one order, as the coverage-information extension carries it."""

    covered: str
    pa_needed: str | None
    assertion_id: str
    date: str
    doc_needed: str | None = None
    info_needed: str | None = None
    questionnaire: str | None = None
    reason: str | None = None
    # A coded reason beside the text (CRD's temporary code system), e.g. `gold-card`.
    reason_code: str | None = None
    billing_code: dict[str, str] | None = None
    satisfied_pa_id: str | None = None
    expiry_date: str | None = None
    coverage: str | None = None

    def extension(self) -> dict[str, Any]:
        """The `ext-coverage-information` extension (CRD STU 2.x)."""
        parts: list[dict[str, Any]] = []
        if self.coverage:
            parts.append({"url": "coverage", "valueReference": {"reference": self.coverage}})
        parts.append({"url": "covered", "valueCode": self.covered})
        if self.pa_needed:
            parts.append({"url": "pa-needed", "valueCode": self.pa_needed})
        if self.doc_needed:
            parts.append({"url": "doc-needed", "valueCode": self.doc_needed})
        if self.info_needed:
            parts.append(
                {
                    "url": "info-needed",
                    "valueCode": self.info_needed,
                }
            )
        if self.billing_code:
            parts.append({"url": "billingCode", "valueCoding": self.billing_code})
        if self.reason:
            concept: dict[str, Any] = {"text": self.reason}
            if self.reason_code:
                concept["coding"] = [{"system": INFO_NEEDED_SYSTEM, "code": self.reason_code}]
            parts.append({"url": "reason", "valueCodeableConcept": concept})
        if self.questionnaire:
            parts.append({"url": "questionnaire", "valueCanonical": self.questionnaire})
        parts.append({"url": "date", "valueDate": self.date})
        parts.append({"url": "coverage-assertion-id", "valueString": self.assertion_id})
        if self.satisfied_pa_id:
            parts.append({"url": "satisfied-pa-id", "valueString": self.satisfied_pa_id})
        if self.expiry_date:
            parts.append({"url": "expiry-date", "valueDate": self.expiry_date})
        return {"url": COVERAGE_INFORMATION, "extension": parts}


@dataclass
class HookCall:
    """A hook call read: its hook, the orders to answer for, the chart, and what is missing."""

    hook: str
    hook_instance: str
    patient_id: str | None
    user_id: str | None
    fhir_server: str | None
    access_token: str | None
    chart: Chart
    # The resources to answer for (MedicationRequests, or Appointments for appointment-book).
    targets: list[Located] = field(default_factory=list)
    # Order references named in the context but not found in it or in prefetch.
    unresolved: list[str] = field(default_factory=list)
    # Prefetch keys the service declares that the call did not send.
    missing_prefetch: list[str] = field(default_factory=list)
    context: Mapping[str, Any] = field(default_factory=dict)


def _problem(path: str, message: str, code: IssueCode = "required") -> Problem:
    return Problem(path, "error", message, code)


def _text(value: object, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value.strip() else None


def read_hook(service_id: str, body: object) -> HookCall | list[Problem]:
    """Read a hook call to a service; the problems (each naming its JSON path) when it is
    not one this service can answer."""
    if service_id not in HOOKS:
        return [_problem("service", f"no CDS service {service_id!r} here", "not-found")]
    hook = HOOKS[service_id][0]
    if not isinstance(body, dict):
        return [_problem("$", "a hook call is a JSON object", "structure")]
    problems: list[Problem] = []
    if body.get("hook") != hook:
        problems.append(_problem("hook", f"this service answers the {hook} hook", "value"))
    instance = body.get("hookInstance")
    if not isinstance(instance, str) or not _UUID.match(instance):
        problems.append(_problem("hookInstance", "a UUID naming this call is required"))
    context = body.get("context")
    if not isinstance(context, dict):
        problems.append(_problem("context", "the hook's context (an object) is required"))
        context = {}
    prefetch = body.get("prefetch", {})
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        problems.append(_problem("prefetch", "prefetch is an object of resources", "structure"))
        prefetch = {}
    server = body.get("fhirServer")
    if server is not None and (
        not isinstance(server, str) or not server.startswith(("http://", "https://"))
    ):
        problems.append(_problem("fhirServer", "an http(s) base URL", "value"))
        server = None
    authorization = body.get("fhirAuthorization")
    token = None
    if authorization is not None:
        if not isinstance(authorization, dict) or not _text(authorization.get("access_token")):
            problems.append(
                _problem("fhirAuthorization.access_token", "the access token is required")
            )
        else:
            token = str(authorization["access_token"])
    patient_id = _text(context.get("patientId"), 64)
    if patient_id is None:
        problems.append(_problem("context.patientId", "the patient's id is required"))
    elif not _ID.match(patient_id):
        problems.append(_problem("context.patientId", "not a FHIR id", "value"))
    user_id = _text(context.get("userId"))
    if problems:
        return problems
    chart = Chart()
    call = HookCall(
        hook,
        str(instance),
        patient_id,
        user_id,
        server,
        token,
        chart,
        context=context,
    )
    # The orders in the context first: a copy of one in prefetch (an earlier version of the
    # draft) does not take its place. Dispatched orders are references into prefetch.
    problems = [] if hook == "order-dispatch" else _targets(call, context)
    for key, value in prefetch.items():
        if value is not None:
            chart.add(value, f"prefetch.{key}")
    if hook == "order-dispatch":
        problems = _targets(call, context)
    declared = {**PREFETCH, **_HOOK_PREFETCH.get(hook, {})}
    call.missing_prefetch = [key for key in declared if key not in prefetch]
    problems += [p for p in chart.problems if p.blocking]
    problems += status_problems(chart.of_type("Coverage"))
    return problems or call


def _targets(call: HookCall, context: Mapping[str, Any]) -> list[Problem]:
    """The resources the hook asks about, from its context."""
    chart = call.chart
    if call.hook in ("order-sign", "order-select"):
        orders = context.get("draftOrders")
        if not isinstance(orders, dict) or orders.get("resourceType") != "Bundle":
            return [_problem("context.draftOrders", "a Bundle of the draft orders is required")]
        drafted = chart.collect(orders, "context.draftOrders")
        known = {r.key for r in drafted}
        if call.hook == "order-select":
            selections = context.get("selections")
            if not isinstance(selections, list) or not selections:
                return [_problem("context.selections", "the selected orders are required")]
            wanted = {s for s in selections if isinstance(s, str)}
            drafted = [r for r in drafted if r.key in wanted]
            call.unresolved = sorted(w for w in wanted if w not in known)
        call.targets = [r for r in drafted if r.resource.get_resource_type() == "MedicationRequest"]
        return []
    if call.hook == "order-dispatch":
        dispatched = context.get("dispatchedOrders")
        if not isinstance(dispatched, list) or not dispatched:
            return [_problem("context.dispatchedOrders", "references to the orders are required")]
        for index, reference in enumerate(dispatched):
            if not isinstance(reference, str):
                return [_problem(f"context.dispatchedOrders[{index}]", "a reference", "value")]
            found = chart.get(reference)
            if found is None:
                call.unresolved.append(reference)
            elif found.resource.get_resource_type() == "MedicationRequest":
                call.targets.append(found)
        return []
    appointments = context.get("appointments")
    if not isinstance(appointments, dict) or appointments.get("resourceType") != "Bundle":
        return [_problem("context.appointments", "a Bundle of the appointments is required")]
    call.targets = [
        r
        for r in chart.collect(appointments, "context.appointments")
        if r.resource.get_resource_type() == "Appointment"
    ]
    return []


def render_template(template: str, call: HookCall) -> str | None:
    """A prefetch template with its tokens filled from the call; None when a token has no
    value (that key cannot be fetched)."""
    user = call.user_id or ""
    values: dict[str, str] = {}
    if call.patient_id:
        values["context.patientId"] = call.patient_id
    if user.startswith("Practitioner/"):
        values["userPractitionerId"] = user.split("/", 1)[1]
    if user.startswith("PractitionerRole/"):
        values["userPractitionerRoleId"] = user.split("/", 1)[1]
    dispatched = call.context.get("dispatchedOrders")
    if isinstance(dispatched, list):
        ids = [r.split("/")[-1] for r in dispatched if isinstance(r, str)]
        if ids and all(_ID.match(i) for i in ids):
            values["context.dispatchedOrders"] = ",".join(ids)
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = values.get(match.group(1))
        if value is None:
            missing = True
            return ""
        return value

    rendered = _TOKEN.sub(fill, template)
    return None if missing else rendered


def appointment_order(call: HookCall, appointment: Located) -> Located:
    """The drug an appointment is booked for, as a MedicationRequest the mapping reads: the
    codes of its service types and of the requests it is based on."""
    raw = appointment.raw
    codings: list[dict[str, Any]] = []
    for concept in raw.get("serviceType") or ():
        if isinstance(concept, dict):
            codings += [c for c in concept.get("coding") or () if isinstance(c, dict)]
    for based in raw.get("basedOn") or ():
        found = call.chart.get(based.get("reference")) if isinstance(based, dict) else None
        if found is not None:
            concept = found.raw.get("code") or found.raw.get("medicationCodeableConcept") or {}
            codings += [c for c in concept.get("coding") or () if isinstance(c, dict)]
    requester = None
    for participant in raw.get("participant") or ():
        actor = participant.get("actor", {}) if isinstance(participant, dict) else {}
        reference = actor.get("reference", "") if isinstance(actor, dict) else ""
        if reference.startswith(("Practitioner/", "PractitionerRole/")):
            requester = {"reference": reference}
            break
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": appointment.resource.id or "appointment",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": codings} if codings else {"text": "unknown"},
        "subject": {"reference": f"Patient/{call.patient_id}"},
    }
    if requester:
        order["requester"] = requester
    start = raw.get("start")
    if isinstance(start, str):
        order["dosageInstruction"] = [
            {"timing": {"repeat": {"boundsPeriod": {"start": start[:10]}}}}
        ]
    model = MedicationRequest.model_validate(order)
    located = Located(model, appointment.path, f"MedicationRequest/{model.id}", order, None)
    call.chart.resources.append(located)
    # The answer goes on the Appointment: keep it as the target's raw resource.
    return Located(model, appointment.path, located.key, raw, None)
