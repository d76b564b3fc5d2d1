"""SDC adaptive forms for DTR (`Questionnaire/$next-question`), decided by the engine.

An adaptive form asks a few questions at a time. The DTR client posts the
QuestionnaireResponse (the form so far, a Questionnaire `contained` in it, and the answers);
priorauth decides the request again with those answers, and adds to the contained
Questionnaire only the questions whose answers can still change the outcome, or marks the
response `completed`, saying what the answers lead to.

Which questions come next is read from the engine's own evaluation (three-valued): a
criterion already met or not met asks nothing; of an ANY still open, one branch at a time (the
first whose question is not asked yet), so an answer that meets it makes the other branches
moot; of an ALL still open, each open part; then the questions the dose needs. A question is
never asked twice: one left unanswered stays unknown, and the form goes on without it.

The chart the EHR sent with `$questionnaire-package` travels in the response itself, as the
answer to a hidden, read-only item (`priorauth.record`: the request contract as JSON), so the
payer stores nothing between calls (DTR: `$next-question` carries no other context). Its
linkId is not a question id, so a PAS request carrying the completed form ignores it. The
questions' linkIds are the policy's question ids, their types and ValueSets those of the
standard form (`adapters.fhir.dtr`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from priorauth.adapters.cql import compile_policy
from priorauth.adapters.fhir import dtr
from priorauth.adapters.fhir.problems import Problem, problems_from_validation
from priorauth.engine.answers import answerable
from priorauth.engine.determination import CriterionResult, Determination
from priorauth.policy.model import Policy

__all__ = [
    "ADAPTIVE_SUFFIX",
    "QUESTIONNAIRE_ADAPTIVE",
    "RECORD_ITEM",
    "AdaptiveForm",
    "adaptive_id",
    "adaptive_questionnaire",
    "advance",
    "next_questions",
    "outcome_text",
    "package",
    "read_adaptive_id",
    "read_form",
    "request_of",
    "start_response",
]

# A policy's adaptive form is `Questionnaire/{policy}.adaptive` ("adaptive" is not hex, so it
# never reads as a part of the standard form, `{policy}.<hex>`).
ADAPTIVE_SUFFIX = ".adaptive"
QUESTIONNAIRE_ADAPTIVE = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
)
HIDDEN = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
ADAPT_SEARCH = (
    "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaire-adapt-search"
)
ADAPT = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaire-adapt"
RESPONSE_ADAPT = (
    "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaireresponse-adapt"
)
RECORD_ITEM = "priorauth.record"
OUTCOME_ITEM = "priorauth.outcome"
CONTAINED_ID = "form"
_OWN_ITEMS = frozenset({RECORD_ITEM, OUTCOME_ITEM})
_CANONICAL = re.compile(r"(?:^|/)Questionnaire/([a-z0-9][a-z0-9-]*)\.adaptive(?:\|([^|]+))?$")
_ANSWER_KEYS = {
    "boolean": "valueBoolean",
    "decimal": "valueDecimal",
    "integer": "valueInteger",
    "date": "valueDate",
    "choice": "valueCoding",
    "string": "valueString",
}


def adaptive_id(policy: Policy) -> str:
    return policy.id + ADAPTIVE_SUFFIX


def read_adaptive_id(ident: str, policies: Sequence[Policy]) -> Policy | None:
    """The policy an adaptive form's id (`{policy}.adaptive`) names; None for any other id."""
    if not ident.endswith(ADAPTIVE_SUFFIX):
        return None
    wanted = ident.removesuffix(ADAPTIVE_SUFFIX)
    return next((p for p in policies if p.id == wanted), None)


def adaptive_questionnaire(policy: Policy, base: str) -> dict[str, Any]:
    """The adaptive form as `$questionnaire-package` and `GET Questionnaire/{id}` return it:
    no items (they come from `$next-question`, whose base URL the `questionnaireAdaptive`
    extension gives), its Library for pre-population."""
    ident = adaptive_id(policy)
    return {
        "resourceType": "Questionnaire",
        "id": ident,
        "meta": {"profile": [ADAPT_SEARCH]},
        "extension": [
            {"url": QUESTIONNAIRE_ADAPTIVE, "valueUrl": base},
            {"url": dtr.SDC_LIBRARY, "valueCanonical": dtr.library_url(base, policy)},
        ],
        "url": f"{base}/Questionnaire/{ident}",
        "version": policy.version,
        "name": re.sub(r"[^A-Za-z0-9]", "", policy.id.title()) + "AdaptiveQuestions",
        "title": f"{policy.title}: questions (adaptive)",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Generated by priorauth from the policy: the questions come from "
        "$next-question, a few at a time, only those whose answers can still change the "
        "outcome; each linkId is the policy's question id.",
    }


def _record_item(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hidden item carrying the chart's request, and its answer."""
    data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    question = {
        "linkId": RECORD_ITEM,
        "text": "The chart sent to the plan (read by the plan; not shown)",
        "type": "attachment",
        "readOnly": True,
        "extension": [{"url": HIDDEN, "valueBoolean": True}],
    }
    answer = {
        "linkId": RECORD_ITEM,
        "answer": [
            {
                "valueAttachment": {
                    "contentType": "application/json",
                    "data": base64.b64encode(data).decode(),
                }
            }
        ],
    }
    return question, answer


def start_response(
    policy: Policy,
    base: str,
    record: Mapping[str, Any] | None,
    patient: str | None,
    authored: dt.datetime,
) -> dict[str, Any]:
    """The QuestionnaireResponse a package hands out with the adaptive form: the contained
    Questionnaire (derived from the form, no questions yet) and, when the call sent the chart,
    the hidden item carrying it. The client then calls `$next-question` with it."""
    canonical = f"{base}/Questionnaire/{adaptive_id(policy)}|{policy.version}"
    contained: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": CONTAINED_ID,
        "meta": {"profile": [ADAPT]},
        "extension": [
            {"url": QUESTIONNAIRE_ADAPTIVE, "valueUrl": base},
            {"url": dtr.SDC_LIBRARY, "valueCanonical": dtr.library_url(base, policy)},
        ],
        "url": f"{base}/Questionnaire/{adaptive_id(policy)}",
        "version": policy.version,
        "derivedFrom": [canonical],
        "status": "active",
        "subjectType": ["Patient"],
        "item": [],
    }
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": f"{adaptive_id(policy)}-response",
        "meta": {"profile": [RESPONSE_ADAPT]},
        "contained": [contained],
        "questionnaire": f"#{CONTAINED_ID}",
        "status": "in-progress",
        "authored": authored.isoformat(),
        "item": [],
    }
    if record is not None:
        question, answer = _record_item(record)
        contained["item"].append(question)
        response["item"].append(answer)
    if not contained["item"]:
        del contained["item"]
        del response["item"]
    if patient:
        response["subject"] = {"reference": patient}
    return response


@dataclass(frozen=True, slots=True)
class AdaptiveForm:
    """A `$next-question` input read: the policy, the response as sent, the questions the
    form has asked (in order), the answers given, and the chart's request (None: not sent)."""

    policy: Policy
    response: dict[str, Any]
    asked: tuple[str, ...]
    answers: dict[str, bool | int | float | str]
    record: dict[str, Any] | None


def _problem(path: str, message: str, code: Any = "invalid") -> Problem:
    return Problem(path, "error", message, code)


def _response_of(document: object) -> tuple[dict[str, Any] | None, str]:
    """The QuestionnaireResponse in a `$next-question` body (a Parameters with
    `questionnaire-response`, or the resource itself) and its path."""
    if not isinstance(document, dict):
        return None, "$"
    if document.get("resourceType") == "QuestionnaireResponse":
        return document, "QuestionnaireResponse"
    if document.get("resourceType") != "Parameters":
        return None, "resourceType"
    for index, parameter in enumerate(document.get("parameter") or ()):
        if not isinstance(parameter, dict):
            continue
        # DTR 2.0 named the parameter `questionnaire-response-in`; SDC and DTR 2.1 do not.
        if parameter.get("name") in ("questionnaire-response", "questionnaire-response-in"):
            resource = parameter.get("resource")
            if isinstance(resource, dict):
                return resource, f"Parameters.parameter[{index}].resource"
    return None, "Parameters.parameter"


def _invalid(model: type[Any], data: dict[str, Any], path: str) -> list[Problem]:
    """What fhir.resources finds wrong with a resource (nothing: an empty list)."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return problems_from_validation(path, exc)
    except Exception as exc:  # the library's own failures on odd input: report, never crash
        message = f"the resource could not be read ({exc.__class__.__name__})"
        return [_problem(path, message, "structure")]
    return []


def _items(items: object) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, item in enumerate(items if isinstance(items, list) else ()):
        if isinstance(item, dict):
            yield index, item


def read_form(
    document: object, policies: Sequence[Policy]
) -> AdaptiveForm | tuple[int, list[Problem]]:
    """Read a `$next-question` body; the status (400, 404) and the problems, each naming the
    element, when it is not an adaptive form of priorauth's that can go on."""
    response, where = _response_of(document)
    if response is None:
        return 400, [
            _problem(
                where,
                "a QuestionnaireResponse, or a Parameters with one as `questionnaire-response`",
                "required",
            )
        ]
    failed = _invalid(QuestionnaireResponse, response, where)
    if failed:
        return 400, failed
    contained = [
        (index, r)
        for index, r in _items(response.get("contained"))
        if r.get("resourceType") == "Questionnaire"
    ]
    reference = response.get("questionnaire")
    form = next(
        (
            (i, r)
            for i, r in contained
            if isinstance(reference, str) and reference == f"#{r.get('id')}"
        ),
        None,
    )
    if form is None:
        message = "the adaptive form's Questionnaire, contained and named by `questionnaire`"
        return 400, [_problem(f"{where}.questionnaire", message, "required")]
    form_index, questionnaire = form
    form_path = f"{where}.contained[{form_index}]"
    failed = _invalid(Questionnaire, questionnaire, form_path)
    if failed:
        return 400, failed
    policy: Policy | None = None
    version: str | None = None
    for derived in questionnaire.get("derivedFrom") or ():
        match = _CANONICAL.search(derived) if isinstance(derived, str) else None
        if match is not None:
            policy = next((p for p in policies if p.id == match.group(1)), None)
            version = match.group(2)
            break
    if policy is None:
        return 404, [
            _problem(
                f"{form_path}.derivedFrom",
                "not derived from an adaptive form of this service (Questionnaire/{policy}"
                ".adaptive)",
                "not-found",
            )
        ]
    if version is not None and version != policy.version:
        return 400, [
            _problem(
                f"{form_path}.derivedFrom",
                f"the form was made for version {version} of policy {policy.id}; version "
                f"{policy.version} is in force now: start a new form",
                "business-rule",
            )
        ]
    kinds = answerable(policy)
    types: dict[str, str] = {}
    problems: list[Problem] = []
    asked: list[str] = []
    for index, item in _items(questionnaire.get("item")):
        link = item.get("linkId")
        if link in _OWN_ITEMS:
            continue
        if link not in kinds:
            problems.append(
                _problem(
                    f"{form_path}.item[{index}].linkId",
                    f"{link!r} is not a question of policy {policy.id}'s adaptive form",
                    "value",
                )
            )
            continue
        if link in types:
            problems.append(
                _problem(f"{form_path}.item[{index}].linkId", f"{link!r} is asked twice", "value")
            )
            continue
        types[link] = str(item.get("type"))
        asked.append(link)
    answers: dict[str, bool | int | float | str] = {}
    record: dict[str, Any] | None = None
    for index, item in _items(response.get("item")):
        here = f"{where}.item[{index}]"
        link = item.get("linkId")
        given = [a for a in item.get("answer") or () if isinstance(a, dict)]
        if link == OUTCOME_ITEM:
            continue
        if link == RECORD_ITEM:
            found = _record(given, f"{here}.answer[0].valueAttachment.data")
            if isinstance(found, Problem):
                problems.append(found)
            else:
                record = found
            continue
        if link not in types:
            problems.append(
                _problem(f"{here}.linkId", f"{link!r} is not a question the form asked", "value")
            )
            continue
        if not given:
            continue  # unanswered: unknown
        if len(given) > 1:
            problems.append(_problem(f"{here}.answer", "one answer per question", "value"))
            continue
        value = _value(given[0], types[link])
        if value is None:
            key = _ANSWER_KEYS.get(types[link], "value[x]")
            problems.append(_problem(f"{here}.answer[0]", f"this question takes {key}", "value"))
            continue
        answers[str(link)] = value
    if problems:
        return 400, problems
    return AdaptiveForm(policy, response, tuple(asked), answers, record)


def _record(answers: list[dict[str, Any]], path: str) -> dict[str, Any] | Problem:
    attachment = answers[0].get("valueAttachment") if answers else None
    data = attachment.get("data") if isinstance(attachment, dict) else None
    if not isinstance(data, str):
        return _problem(path, "the chart the form was started with is missing", "required")
    try:
        found = orjson.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return _problem(path, "not the chart this service put there (base64 JSON)", "value")
    if not isinstance(found, dict):
        return _problem(path, "not the chart this service put there (a JSON object)", "value")
    return found


def _value(answer: Mapping[str, Any], item_type: str) -> bool | int | float | str | None:
    """An answer's value as the request's `answers` carry it; None when it is not of the
    item's type."""
    key = _ANSWER_KEYS.get(item_type)
    value = answer.get(key) if key else None
    if item_type == "boolean":
        return value if isinstance(value, bool) else None
    if item_type in ("decimal", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value
    if item_type == "choice":
        code = value.get("code") if isinstance(value, dict) else None
        return code if isinstance(code, str) and code else None
    if item_type in ("date", "string"):
        return value if isinstance(value, str) and value else None
    return None


def request_of(form: AdaptiveForm, service_code: Mapping[str, str]) -> dict[str, Any]:
    """The request to decide: the chart's (or, without one, the requested drug alone) with
    the form's answers laid over the chart's."""
    if form.record is not None:
        request = copy.deepcopy(form.record)
    else:
        request = {"request_id": "adaptive-form", "service": {"codes": [dict(service_code)]}}
    answers = request.get("answers")
    merged = dict(answers) if isinstance(answers, dict) else {}
    merged.update(form.answers)
    request["answers"] = merged
    return request


def _walk(node: CriterionResult, askable: set[str]) -> list[str]:
    """The questions to ask for an open node: each open part of an ALL; one branch of an ANY
    or AT LEAST (the first that has a question to ask); the child of a NOT."""
    if node.status != "unknown":
        return []
    if node.operator == "fact":
        return [f for f in node.facts if f in askable]
    if node.operator in ("any", "at-least"):
        for child in node.children:
            branch = _walk(child, askable)
            if branch:
                return branch
        return []
    found: list[str] = []
    for child in node.children:
        found += [f for f in _walk(child, askable) if f not in found]
    return found


def _leaves(node: CriterionResult | None) -> Iterator[str]:
    if node is None:
        return
    yield from node.facts
    for child in node.children:
        yield from _leaves(child)


def next_questions(determination: Determination, policy: Policy, asked: Sequence[str]) -> list[str]:
    """The questions to add, in the order asked: those of the criteria still open (see
    `_walk`), then those the dose needs; none once the criteria are decided against the
    request (nothing asked could change where it goes), or a question was asked before."""
    kinds = answerable(policy)
    askable = {f for f in kinds if f not in set(asked)}
    if determination.indication is None or determination.indication.status == "not-met":
        return []
    criteria = determination.criteria
    if criteria is not None and criteria.status == "not-met":
        return []
    found = _walk(criteria, askable) if criteria is not None else []
    in_criteria = set(_leaves(criteria))
    for missing in determination.missing:
        fact = missing.fact
        if fact in askable and fact not in in_criteria and fact not in found:
            found.append(fact)
    return found


def _assertion(determination: Determination, answers: Mapping[str, object]) -> str:
    basis = orjson.dumps(
        {
            "policy": determination.policy.content_hash if determination.policy else None,
            "request": determination.request_hash,
            "answers": dict(answers),
            "as_of": determination.as_of.isoformat(),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return "dtr-" + hashlib.sha256(basis).hexdigest()[:32]


def outcome_text(determination: Determination) -> str:
    """What the answers lead to, in words: software approves or pends, people deny."""
    if determination.outcome == "approved":
        return (
            "The chart and these answers meet the policy's criteria and dosing: a prior "
            "authorization request with them can be approved at once. Send this form with "
            "the request (PAS)."
        )
    who = (determination.route or "clinician").replace("-", " ")
    lead = {
        "criteria-not-met": f"A criterion is not met: a request goes to a {who} for review "
        "(software does not deny).",
        "not-covered-indication": "The diagnosis is not one the policy lists: a request goes "
        f"to a {who} for review (software does not deny).",
        "missing-information": "Some of what the policy needs is still unknown: a request "
        "is pended until it is given.",
    }
    first = determination.reasons[0] if determination.reasons else ""
    words = lead.get(first, f"A request is pended for review by a {who}.")
    return f"{words} {determination.summary}"[:1000]


def advance(
    form: AdaptiveForm,
    determination: Determination,
    base: str,
    today: dt.date,
    coverage_information: str,
) -> tuple[dict[str, Any], list[str]]:
    """The response to send back, and the questions added (none: completed, with what the
    answers lead to as a display item and a coverage-information extension)."""
    policy = form.policy
    response = copy.deepcopy(form.response)
    response.pop("text", None)
    contained = next(
        r for r in response["contained"] if f"#{r.get('id')}" == response["questionnaire"]
    )
    for holder in (contained, response):
        kept = [i for i in holder.get("item") or () if i.get("linkId") != OUTCOME_ITEM]
        holder["item"] = kept
    response["extension"] = [
        e
        for e in response.get("extension") or ()
        if not (isinstance(e, dict) and e.get("url") == coverage_information)
    ]
    added = next_questions(determination, policy, form.asked)
    if added:
        built = dtr.build_questionnaire(policy, added, base)["item"]
        by_link = {item["linkId"]: item for item in built}
        for fact in added:
            item = dict(by_link[fact])
            item.pop("enableWhen", None)  # the adaptive profile has none: the server decides
            item.pop("enableBehavior", None)
            contained["item"].append(item)
            response["item"].append({"linkId": fact, "text": item["text"]})
        response["status"] = "in-progress"
    else:
        text = outcome_text(determination)
        contained["item"].append(
            {"linkId": OUTCOME_ITEM, "text": text, "type": "display", "readOnly": True}
        )
        response["item"].append({"linkId": OUTCOME_ITEM, "text": text})
        response["status"] = "completed"
        response["extension"].append(
            _coverage(determination, form.answers, today, coverage_information)
        )
    for holder in (contained, response):
        if not holder["item"]:
            del holder["item"]
    if not response["extension"]:
        del response["extension"]
    return response, added


def _coverage(
    determination: Determination, answers: Mapping[str, object], today: dt.date, url: str
) -> dict[str, Any]:
    """CRD's coverage-information on the completed response (DTR: an adaptive form SHOULD
    say it): prior authorization is needed; the reason says what the answers lead to. No
    `satisfied` and no authorization number: those come with a PAS request."""
    return {
        "url": url,
        "extension": [
            {"url": "covered", "valueCode": "covered"},
            {"url": "pa-needed", "valueCode": "auth-needed"},
            {"url": "reason", "valueCodeableConcept": {"text": outcome_text(determination)[:500]}},
            {"url": "date", "valueDate": today.isoformat()},
            {"url": "coverage-assertion-id", "valueString": _assertion(determination, answers)},
        ],
    }


def package(
    policy: Policy,
    base: str,
    record: Mapping[str, Any] | None,
    patient: str | None,
    authored: dt.datetime,
) -> dict[str, Any]:
    """The `$questionnaire-package` Bundle of an adaptive form: the form (no items; the
    `questionnaireAdaptive` extension names where `$next-question` is), the Library and every
    ValueSet of the policy (a question may come to need any of them), and the response to
    start from."""
    library = compile_policy(policy)
    resources = [
        adaptive_questionnaire(policy, base),
        dtr.build_library(policy, base, library),
        *dtr.value_sets(policy, base),
        start_response(policy, base, record, patient, authored),
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": authored.isoformat(),
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }
