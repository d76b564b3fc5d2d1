"""CRD and DTR use cases: a hook call answered, a questionnaire package, a ValueSet expanded.

Nothing a hook call carries is stored: each call leaves one audit event (who, which hook, the
policy, the answer and its assertion id; never a clinical value). A later PAS request may cite
the assertion id, which the audit trail holds.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from priorauth.adapters import cds, fhir
from priorauth.adapters.fhir import adaptive, dtr
from priorauth.adapters.fhir.bundle import Located, Rejected
from priorauth.engine.answers import answerable
from priorauth.engine.compiled import CompiledPolicy
from priorauth.engine.determination import Determination
from priorauth.engine.request import parse_request
from priorauth.errors import InvalidRequest
from priorauth.policy.model import Policy
from priorauth.service.audit import append_event
from priorauth.service.errors import Forbidden
from priorauth.service.pas import FhirAnswer
from priorauth.service.people import Actor
from priorauth.service.uow import UnitOfWork
from priorauth.service.workflow import PriorAuthService

__all__ = ["CrdService", "fhir_hosts_from_env"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_PAYER = "priorauth payer rules"


def dtr_launch_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The DTR SMART app to launch from a card (PRIORAUTH_DTR_LAUNCH_URL); None: the card
    links to the questionnaire itself."""
    env = os.environ if environ is None else environ
    return env.get("PRIORAUTH_DTR_LAUNCH_URL") or None


def fhir_hosts_from_env(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The EHR FHIR server hosts a hook may have read (PRIORAUTH_CRD_FHIR_HOSTS, comma-
    separated; loopback only by default): the token goes with each read."""
    env = os.environ if environ is None else environ
    text = env.get("PRIORAUTH_CRD_FHIR_HOSTS")
    if not text:
        return _LOOPBACK
    return frozenset(h.strip().lower() for h in text.split(",") if h.strip())


@cache
def _templates(service_id: str) -> dict[str, str]:
    """The prefetch templates a service declares in discovery (read once)."""
    for entry in cds.discovery()["services"]:
        if entry["id"] == service_id:
            return dict(entry["prefetch"])
    return {**cds.PREFETCH}


def _outcome(status: int, problems: list[fhir.Problem]) -> FhirAnswer:
    return FhirAnswer(status, fhir.operation_outcome(problems))


def _problem(path: str, message: str, code: Any = "invalid") -> fhir.Problem:
    return fhir.Problem(path, "error", message, code)


def _json(body: bytes | object, what: str) -> tuple[object, FhirAnswer | None]:
    if not isinstance(body, bytes | bytearray | str):
        return body, None
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError:
        return None, _outcome(400, [_problem(what, "the body is not JSON", "structure")])


@dataclass(frozen=True, slots=True)
class _Decided:
    """One order decided: the determination (None when the order names no drug priorauth
    reads), the policy, and the answer."""

    target: Located
    determination: Determination | None
    compiled: CompiledPolicy | None
    answer: cds.OrderAnswer | None
    note: str | None


class CrdService:
    """CRD hooks and DTR operations over a started workflow service."""

    def __init__(
        self,
        service: PriorAuthService,
        fhir_hosts: frozenset[str] | None = None,
        dtr_launch: str | None = None,
    ) -> None:
        self.service = service
        self.fhir_hosts = fhir_hosts if fhir_hosts is not None else fhir_hosts_from_env()
        self.dtr_launch = dtr_launch if dtr_launch is not None else dtr_launch_from_env()

    @property
    def policies(self) -> list[CompiledPolicy]:
        return self.service.policies.policies

    # ------------------------------------------------------------------ CRD

    def hook(self, actor: Actor, service_id: str, body: bytes | object, base: str) -> FhirAnswer:
        """Answer one hook call: a CDS Hooks response (200) with a coverage-information
        systemAction per medication order, or an OperationOutcome (400) naming what is wrong
        with the call. `base` is this service's FHIR base URL (the canonicals)."""
        if actor.role != "submitter" or actor.organization is None:
            raise Forbidden("only a submitter (the EHR's account) calls the CDS services")
        document, failed = _json(body, "$")
        if failed is not None:
            return failed
        call = cds.read_hook(service_id, document)
        if isinstance(call, list):
            status = 404 if any(p.code == "not-found" for p in call) else 400
            return _outcome(status, call)
        fetched = cds.fetch_missing(call, _templates(service_id), self.fhir_hosts)
        if call.unresolved:
            for reference in list(call.unresolved):
                found = call.chart.get(reference)
                if found is not None:
                    call.unresolved.remove(reference)
                    if found.resource.get_resource_type() == "MedicationRequest":
                        call.targets.append(found)
        if call.hook == "appointment-book":
            call.targets = [cds.appointment_order(call, t) for t in call.targets]
        now = self.service.clock()
        decided: list[_Decided] = []
        for target in call.targets:
            result = self._decide(call, target, now, base)
            if isinstance(result, FhirAnswer):
                return result
            decided.append(result)
        response = _response(call, decided, fetched, self.dtr_launch)
        self._audit(actor, service_id, call, decided, fetched, now)
        return FhirAnswer(200, response)

    def _decide(
        self, call: cds.HookCall, target: Located, now: dt.datetime, base: str
    ) -> _Decided | FhirAnswer:
        mapped = cds.chart_request(
            target, call.chart, self.service.policies, patient_id=call.patient_id, created=now
        )
        if isinstance(mapped, Rejected):
            return _outcome(400, list(mapped.problems))
        if mapped.request is None:
            return _Decided(target, None, None, None, mapped.note)
        try:
            parsed = mapped.parsed or parse_request(mapped.request)
            determination = self.service.policies.decide(parsed, now.date(), mapped.request)
        except InvalidRequest as exc:
            problems = [
                _problem(target.path, f"{p.field}: {p.message}", "value") for p in exc.problems
            ]
            return _outcome(400, problems)
        compiled = self.service.policies.find(parsed.service)
        coverage = next(
            (f"Coverage/{c.resource.id}" for c in call.chart.of_type("Coverage") if c.resource.id),
            None,
        )
        # The member's coverage on the service date: the order's first dose, else today.
        member = cds.eligibility(
            call.chart.of_type("Coverage"), parsed.service.start_date or now.date()
        )

        def questionnaire_url(facts: tuple[str, ...]) -> str:
            assert compiled is not None
            ident = dtr.questionnaire_id(compiled.policy, facts)
            return f"{base}/Questionnaire/{ident}|{compiled.policy.version}"

        answer = cds.coverage_answer(
            determination,
            compiled,
            answerable(compiled.policy) if compiled else {},
            now.date(),
            coverage,
            questionnaire_url,
            member,
        )
        return _Decided(target, determination, compiled, answer, None)

    def _audit(
        self,
        actor: Actor,
        service_id: str,
        call: cds.HookCall,
        decided: list[_Decided],
        fetched: cds.Fetched,
        now: dt.datetime,
    ) -> None:
        """One audit event per call: identifiers, codes and counts only."""
        orders = [
            {
                "policy": d.answer.policy_id,
                "pa_needed": d.answer.coverage.pa_needed,
                "assertion_id": d.answer.coverage.assertion_id,
                "questions": len(d.answer.questions),
            }
            if d.answer is not None
            else {"pa_needed": None}
            for d in decided
        ]
        with UnitOfWork(self.service.database) as uow:
            uow.lock_writes()
            append_event(
                uow,
                actor.name,
                "crd.hook",
                None,
                {
                    "service": service_id,
                    "hook_instance": call.hook_instance,
                    "orders": orders,
                    "fetched": list(fetched.read),
                },
                now,
            )
            uow.commit()

    # ------------------------------------------------------------------ DTR

    def questionnaire(self, ident: str, base: str) -> FhirAnswer:
        """`GET Questionnaire/{id}`: a form generated from a policy."""
        policies = [p.policy for p in self.policies]
        adaptive_policy = adaptive.read_adaptive_id(ident, policies)
        if adaptive_policy is not None:
            return FhirAnswer(200, adaptive.adaptive_questionnaire(adaptive_policy, base))
        found = dtr.read_questionnaire_id(ident, policies)
        if found is None:
            return _outcome(404, [_problem("Questionnaire", "no such questionnaire", "not-found")])
        policy, facts = found
        return FhirAnswer(200, dtr.build_questionnaire(policy, facts, base))

    def library(self, ident: str, base: str) -> FhirAnswer:
        """`GET Library/{id}`: a policy's pre-population library (CQL and ELM)."""
        compiled = self.service.policies.get(ident)
        if compiled is None:
            return _outcome(404, [_problem("Library", "no such library", "not-found")])
        return FhirAnswer(200, dtr.build_library(compiled.policy, base))

    def _value_set(self, ident: str, base: str) -> dict[str, Any] | None:
        for compiled in self.policies:
            for value_set in dtr.value_sets(compiled.policy, base):
                if value_set["id"] == ident or value_set["url"] == ident:
                    return value_set
        return None

    def value_set(self, ident: str, base: str) -> FhirAnswer:
        found = self._value_set(ident, base)
        if found is None:
            return _outcome(404, [_problem("ValueSet", "no such value set", "not-found")])
        return FhirAnswer(200, found)

    def expand(self, ident: str | None, url: str | None, base: str) -> FhirAnswer:
        """`ValueSet/$expand` by id or by `url` (a canonical, `|version` allowed)."""
        key = ident or (url.split("|", 1)[0] if url else None)
        if key is None:
            return _outcome(400, [_problem("url", "name the ValueSet by id or url", "required")])
        found = self._value_set(key, base)
        if found is None:
            return _outcome(404, [_problem("ValueSet", "no such value set", "not-found")])
        return FhirAnswer(200, dtr.expand(found, self.service.clock().date()))

    def questionnaire_package(self, actor: Actor, body: bytes | object, base: str) -> FhirAnswer:
        """`Questionnaire/$questionnaire-package`: Parameters in (`questionnaire` canonicals,
        or the `order` with the patient's data as resources or a Bundle in `data`), a
        Parameters with one `PackageBundle` per form out."""
        if actor.role != "submitter" or actor.organization is None:
            raise Forbidden("only a submitter (the EHR's account) asks for questionnaires")
        document, failed = _json(body, "Parameters")
        if failed is not None:
            return failed
        if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
            return _outcome(400, [_problem("Parameters", "a Parameters resource is expected")])
        chart = cds.Chart()
        canonicals: list[str] = []
        patient: str | None = None
        for index, parameter in enumerate(document.get("parameter") or ()):
            if not isinstance(parameter, dict):
                continue
            name = parameter.get("name")
            where = f"Parameters.parameter[{index}]"
            if name == "questionnaire" and isinstance(parameter.get("valueCanonical"), str):
                canonicals.append(parameter["valueCanonical"])
            elif name in ("order", "data", "coverage", "referenced") and "resource" in parameter:
                chart.add(parameter["resource"], f"{where}.resource")
        blocking = [p for p in chart.problems if p.blocking]
        if blocking:
            return _outcome(400, blocking)
        patients = list(chart.of_type("Patient"))
        if patients:
            patient = patients[0].key
        now = self.service.clock()
        forms: list[tuple[Policy, list[str]]] = []
        adaptive_forms: list[Policy] = []
        policies = [p.policy for p in self.policies]
        for canonical in canonicals:
            ident = canonical.split("|", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            adaptive_policy = adaptive.read_adaptive_id(ident, policies)
            if adaptive_policy is not None:
                adaptive_forms.append(adaptive_policy)
                continue
            found = dtr.read_questionnaire_id(ident, policies)
            if found is None:
                return _outcome(
                    404, [_problem("questionnaire", "no such questionnaire here", "not-found")]
                )
            forms.append(found)
        decided: dict[str, Determination] = {}
        records: dict[str, dict[str, Any]] = {}
        for order in cds.orders_of(chart):
            mapped = cds.chart_request(
                order,
                chart,
                self.service.policies,
                patient_id=patient.split("/")[1] if patient else None,
                created=now,
            )
            if isinstance(mapped, Rejected):
                return _outcome(400, list(mapped.problems))
            if mapped.request is None:
                continue
            try:
                parsed = mapped.parsed or parse_request(mapped.request)
                determination = self.service.policies.decide(parsed, now.date(), mapped.request)
            except InvalidRequest as exc:
                return _outcome(
                    400, [_problem(order.path, str(p.message), "value") for p in exc.problems]
                )
            compiled = self.service.policies.find(parsed.service)
            if compiled is None:
                continue
            decided[compiled.policy.id] = determination
            records[compiled.policy.id] = {
                k: v for k, v in mapped.request.items() if k != "sources"
            }
            if not canonicals:
                asked = [m.fact for m in determination.missing]
                kinds = answerable(compiled.policy)
                facts = [f for f in dtr.ask_order(compiled.policy) if f in asked and f in kinds]
                if facts:
                    forms.append((compiled.policy, facts))
        if not forms and not adaptive_forms:
            return _outcome(
                400,
                [
                    _problem(
                        "Parameters.parameter",
                        "name a questionnaire, or send an order of a drug a policy governs "
                        "whose chart leaves questions open",
                        "required",
                    )
                ],
            )
        parameters = []
        for policy, facts in forms:
            bundle = dtr.package(policy, facts, base, decided.get(policy.id), patient, now)
            parameters.append({"name": "PackageBundle", "resource": bundle})
        for policy in adaptive_forms:
            bundle = adaptive.package(policy, base, records.get(policy.id), patient, now)
            parameters.append({"name": "PackageBundle", "resource": bundle})
        names = [dtr.questionnaire_id(p, f) for p, f in forms]
        names += [adaptive.adaptive_id(p) for p in adaptive_forms]
        with UnitOfWork(self.service.database) as uow:
            uow.lock_writes()
            append_event(uow, actor.name, "dtr.package", None, {"forms": names}, now)
            uow.commit()
        return FhirAnswer(200, {"resourceType": "Parameters", "parameter": parameters})

    def next_question(self, actor: Actor, body: bytes | object, base: str) -> FhirAnswer:
        """`Questionnaire/$next-question` (SDC adaptive forms): the QuestionnaireResponse so
        far in (alone, or in a Parameters as `questionnaire-response`); back, the same
        response with the next questions added to its contained Questionnaire, or completed
        with what the answers lead to. Decided by the engine with the chart the form was
        started with and the answers; nothing of them is stored (the audit event counts)."""
        if actor.role != "submitter" or actor.organization is None:
            raise Forbidden("only a submitter (the EHR's account) fills in the plan's forms")
        document, failed = _json(body, "$")
        if failed is not None:
            return failed
        form = adaptive.read_form(document, [p.policy for p in self.policies])
        if isinstance(form, tuple):
            status, problems = form
            return _outcome(status, problems)
        compiled = self.service.policies.get(form.policy.id)
        assert compiled is not None
        now = self.service.clock()
        request = adaptive.request_of(form, _service_code(compiled))
        try:
            parsed = parse_request(request)
            if self.service.policies.find(parsed.service) is not compiled:
                return _outcome(
                    400,
                    [
                        _problem(
                            adaptive.RECORD_ITEM,
                            f"the chart's order is not one policy {form.policy.id} governs",
                        )
                    ],
                )
            determination = self.service.policies.decide(parsed, now.date(), request)
        except InvalidRequest as exc:
            return _outcome(
                400,
                [_problem(_answer_path(form, p.field), p.message, "value") for p in exc.problems],
            )
        response, added = adaptive.advance(
            form, determination, base, now.date(), cds.COVERAGE_INFORMATION
        )
        with UnitOfWork(self.service.database) as uow:
            uow.lock_writes()
            append_event(
                uow,
                actor.name,
                "dtr.next-question",
                None,
                {
                    "form": adaptive.adaptive_id(form.policy),
                    "asked": len(form.asked),
                    "added": len(added),
                    "completed": not added,
                },
                now,
            )
            uow.commit()
        return FhirAnswer(200, response)

    def log_errors(self, actor: Actor, body: bytes | object) -> FhirAnswer:
        """`$log-questionnaire-errors`: a DTR app reports pre-population errors. The count and
        the questionnaire are kept in the audit trail (the messages may name a patient's data,
        so they are not stored)."""
        document, failed = _json(body, "Parameters")
        if failed is not None:
            return failed
        if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
            return _outcome(400, [_problem("Parameters", "a Parameters resource is expected")])
        issues = 0
        questionnaire = None
        for parameter in document.get("parameter") or ():
            if not isinstance(parameter, dict):
                continue
            resource = parameter.get("resource")
            if isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome":
                issues += len(resource.get("issue") or ())
            if parameter.get("name") == "questionnaire" and isinstance(
                parameter.get("valueCanonical"), str
            ):
                questionnaire = parameter["valueCanonical"][:200]
        if issues == 0:
            return _outcome(
                400, [_problem("Parameters", "an OperationOutcome of the errors is required")]
            )
        with UnitOfWork(self.service.database) as uow:
            uow.lock_writes()
            append_event(
                uow,
                actor.name,
                "dtr.errors-logged",
                None,
                {"questionnaire": questionnaire, "issues": issues},
                self.service.clock(),
            )
            uow.commit()
        return FhirAnswer(
            200,
            {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "informational",
                        "diagnostics": f"{issues} issue(s) logged",
                    }
                ],
            },
        )


def _service_code(compiled: CompiledPolicy) -> dict[str, str]:
    """A code of the policy's drug, for a form started without the chart's order."""
    for drug in compiled.policy.drugs:
        for code in drug.hcpcs:
            return {"system": "hcpcs", "code": code}
        for code in drug.rxnorm:
            return {"system": "rxnorm", "code": code}
    drug = compiled.policy.drugs[0]
    return {"system": "ndc", "code": drug.ndc_products[0]}


def _answer_path(form: adaptive.AdaptiveForm, field: str) -> str:
    """The response element a request field came from: an answer's item, else the chart."""
    if field.startswith("answers."):
        link = field.split(".")[1]
        for index, item in enumerate(form.response.get("item") or ()):
            if isinstance(item, dict) and item.get("linkId") == link:
                return f"QuestionnaireResponse.item[{index}].answer[0]"
    return f"{adaptive.RECORD_ITEM}: {field}" if field else adaptive.RECORD_ITEM


def _card_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "priorauth:" + ":".join(parts)))


def _dtr_link(questionnaire: str, order: str, assertion: str, launch: str | None) -> dict[str, Any]:
    """The card's link to the form: the DTR SMART app with the form in its appContext when
    one is configured, else the questionnaire itself."""
    if launch is None:
        return {
            "label": "Answer the plan's questions (DTR)",
            "url": questionnaire.split("|", 1)[0],
            "type": "absolute",
        }
    context = {"questionnaire": [questionnaire], "order": order, "coverageAssertionId": assertion}
    return {
        "label": "Answer the plan's questions (DTR)",
        "url": launch,
        "type": "smart",
        "appContext": orjson.dumps(context).decode(),
    }


def _response(
    call: cds.HookCall, decided: list[_Decided], fetched: cds.Fetched, launch: str | None
) -> dict[str, Any]:
    """The CDS Hooks response: a systemAction per order, cards for what a person does."""
    actions: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    source = {"label": _PAYER}
    for item in decided:
        if item.answer is None:
            continue
        resource = dict(item.target.raw)
        extensions = [
            e
            for e in resource.get("extension") or ()
            if not (isinstance(e, dict) and e.get("url") == cds.COVERAGE_INFORMATION)
        ]
        resource["extension"] = [*extensions, item.answer.coverage.extension()]
        actions.append(
            {
                "type": "update",
                "description": "Coverage information for the order",
                "resource": resource,
            }
        )
        coverage = item.answer.coverage
        if coverage.questionnaire:
            count = len(item.answer.questions)
            cards.append(
                {
                    "uuid": _card_id(call.hook_instance, coverage.assertion_id, "dtr"),
                    "summary": f"Prior authorization needed: answer the plan's {count} "
                    f"question{'s' if count != 1 else ''}"[:140],
                    "indicator": "info",
                    "source": source,
                    "links": [
                        _dtr_link(
                            coverage.questionnaire,
                            item.target.key,
                            coverage.assertion_id,
                            launch,
                        )
                    ],
                }
            )
        if item.answer.not_askable:
            detail = "\n".join(f"- {question}" for _, question in item.answer.not_askable)
            cards.append(
                {
                    "uuid": _card_id(call.hook_instance, coverage.assertion_id, "chart"),
                    "summary": "Prior authorization: the chart lacks what the plan's policy reads"[
                        :140
                    ],
                    "detail": "Record in the chart, then sign again:\n" + detail,
                    "indicator": "info",
                    "source": source,
                }
            )
    if call.unresolved:
        cards.append(
            {
                "uuid": _card_id(call.hook_instance, "unresolved"),
                "summary": "Coverage not checked for an order the plan could not read",
                "detail": "Not in the call nor readable from the EHR: "
                + ", ".join(call.unresolved)
                + ". Send it in prefetch, or give fhirServer and fhirAuthorization.",
                "indicator": "warning",
                "source": source,
            }
        )
    if fetched.failed and any(d.answer for d in decided):
        cards.append(
            {
                "uuid": _card_id(call.hook_instance, "unread"),
                "summary": "Some of the chart could not be read; what it holds is unknown",
                "detail": "\n".join(f"- {key}: {why}" for key, why in fetched.failed),
                "indicator": "info",
                "source": source,
            }
        )
    return {"cards": cards, "systemActions": actions}
