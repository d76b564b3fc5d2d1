"""Da Vinci DTR from the policy: the SDC Questionnaire, its ValueSets and Library, and a
QuestionnaireResponse pre-filled from the chart.

One item per question the policy lets a requester answer (an `answer` fact, or an attestable
one), its linkId the fact's name: the key the request's `answers` and a PAS bundle's
QuestionnaireResponse use, so a completed form fills the request without a mapping table.
The item's type follows the fact (yes/no, a count, a number, a choice from the policy's
ValueSet, a date, text); an item under an ANY of the criteria is asked only while the
questions before it in that ANY leave the criterion open (enableWhen).

A Questionnaire asks every question of the policy (id: the policy's id) or a part of them
(id: `policy.<hex>`, the bits naming the questions in the policy's order): the form CRD points
to asks exactly what the chart left open, and its id says which, so nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.library import Library
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.valueset import ValueSet

from priorauth.adapters.cql import CqlLibrary, compile_policy
from priorauth.clinical.systems import SYSTEMS
from priorauth.engine.answers import answerable
from priorauth.engine.determination import Determination
from priorauth.policy.model import (
    AnswerFact,
    ConditionFact,
    CriterionSpec,
    ObservationFact,
    Policy,
)

__all__ = [
    "DTR_QUESTIONNAIRE",
    "ask_order",
    "build_library",
    "build_questionnaire",
    "expand",
    "form_order",
    "library_of",
    "package",
    "prefill",
    "questionnaire_id",
    "read_questionnaire_id",
    "validate",
    "value_sets",
]

DTR_QUESTIONNAIRE = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-std-questionnaire"
DTR_RESPONSE = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaireresponse"
SDC_LIBRARY = "http://hl7.org/fhir/StructureDefinition/cqf-library"
SDC_INITIAL = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression"
_ITEM_TYPE = {
    "boolean": "boolean",
    "number": "decimal",
    "choice": "choice",
    "date": "date",
    "text": "string",
    "any": "string",
}
_PART = re.compile(r"^([a-z0-9][a-z0-9-]*)\.([0-9a-f]{1,16})$")


def ask_order(policy: Policy) -> list[str]:
    """The questions a requester may answer, in the policy's order of facts."""
    kinds = answerable(policy)
    return [name for name in policy.facts if name in kinds]


def questionnaire_id(policy: Policy, facts: Iterable[str] | None = None) -> str:
    """The id of the form asking `facts` (all the policy's questions when None)."""
    order = ask_order(policy)
    wanted = set(order if facts is None else facts)
    if wanted >= set(order):
        return policy.id
    mask = sum(1 << index for index, name in enumerate(order) if name in wanted)
    return f"{policy.id}.{mask:x}"


def read_questionnaire_id(text: str, policies: Iterable[Policy]) -> tuple[Policy, list[str]] | None:
    """The policy and questions a questionnaire id names; None when it names none."""
    by_id = {p.id: p for p in policies}
    if text in by_id:
        return by_id[text], ask_order(by_id[text])
    match = _PART.match(text)
    if match is None or match.group(1) not in by_id:
        return None
    policy = by_id[match.group(1)]
    order = ask_order(policy)
    mask = int(match.group(2), 16)
    if mask == 0 or mask >> len(order):
        return None
    return policy, [name for index, name in enumerate(order) if mask >> index & 1]


def _item_kind(policy: Policy, fact: str) -> str:
    kind = answerable(policy)[fact]
    spec = policy.facts[fact]
    if kind == "number" and spec.kind == "medication-history":
        return "integer"
    return _ITEM_TYPE.get(kind, "string")


def _leaves(node: CriterionSpec) -> Iterator[CriterionSpec]:
    if node.fact is not None:
        yield node
    for child in (*(node.all or ()), *(node.any or ()), *(node.of or ())):
        yield from _leaves(child)
    if node.not_ is not None:
        yield from _leaves(node.not_)


def _trees(policy: Policy) -> list[CriterionSpec]:
    trees = [i.criteria for i in policy.indications]
    for indication in policy.indications:
        if indication.continuation is not None and indication.continuation.criteria is not None:
            trees.append(indication.continuation.criteria)
    if policy.continuation is not None and policy.continuation.criteria is not None:
        trees.append(policy.continuation.criteria)
    return trees


def _anys(node: CriterionSpec) -> Iterator[CriterionSpec]:
    if node.any:
        yield node
    for child in (*(node.all or ()), *(node.any or ()), *(node.of or ())):
        yield from _anys(child)
    if node.not_ is not None:
        yield from _anys(node.not_)


def _still_open(leaf: CriterionSpec, item_type: str) -> dict[str, Any] | None:
    """The enableWhen condition under which an earlier ANY branch leaves the ANY open: the
    leaf's answer does not meet it. None when it cannot be said as one comparison."""
    assert leaf.fact is not None
    if item_type == "boolean" and leaf.at_least is None and leaf.at_most is None:
        wanted = True if leaf.is_ is None else leaf.is_
        return {"question": leaf.fact, "operator": "!=", "answerBoolean": wanted}
    if item_type in ("integer", "decimal") and leaf.at_least is not None:
        key = "answerInteger" if item_type == "integer" else "answerDecimal"
        limit = int(leaf.at_least) if item_type == "integer" else leaf.at_least
        return {"question": leaf.fact, "operator": "<", key: limit}
    if item_type in ("integer", "decimal") and leaf.at_most is not None:
        key = "answerInteger" if item_type == "integer" else "answerDecimal"
        limit = int(leaf.at_most) if item_type == "integer" else leaf.at_most
        return {"question": leaf.fact, "operator": ">", key: limit}
    return None


def _enable_when(policy: Policy, facts: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """For each question asked in one place of the criteria, under an ANY: the conditions
    that the ANY's earlier branches (also asked) leave it open."""
    # A criterion reused as is (a YAML anchor: the same node) is one place.
    places: dict[str, set[str]] = {}
    for tree in _trees(policy):
        for leaf in _leaves(tree):
            assert leaf.fact is not None
            places.setdefault(leaf.fact, set()).add(leaf.model_dump_json())
    asked = set(facts)
    found: dict[str, list[dict[str, Any]]] = {}
    for tree in _trees(policy):
        for node in _anys(tree):
            earlier: list[CriterionSpec] = []
            for child in node.any or ():
                if child.fact is None or child.fact not in asked:
                    continue
                if len(places.get(child.fact, ())) == 1 and earlier:
                    conditions = [_still_open(e, _item_kind(policy, e.fact or "")) for e in earlier]
                    if all(c is not None for c in conditions):
                        found[child.fact] = [c for c in conditions if c is not None]
                earlier.append(child)
    return found


def form_order(policy: Policy) -> list[str]:
    """The questions in the order the form asks them: as the criteria first name them (so an
    ANY's branches follow each other), then the others in the policy's order."""
    order = ask_order(policy)
    seen: dict[str, None] = {}
    for tree in _trees(policy):
        for leaf in _leaves(tree):
            if leaf.fact in order:
                seen.setdefault(leaf.fact, None)
    return [*seen, *(f for f in order if f not in seen)]


def _choice_url(base: str, policy: Policy, fact: str) -> str:
    return f"{base}/ValueSet/{policy.id}-{fact.replace('_', '-')}"


def build_questionnaire(
    policy: Policy, facts: Sequence[str] | None, base: str, library: CqlLibrary | None = None
) -> dict[str, Any]:
    """The SDC Questionnaire asking `facts` (every question when None), as FHIR JSON.
    `base` is the FHIR base URL the canonicals are under."""
    chosen = [f for f in form_order(policy) if facts is None or f in set(facts)]
    library = library or library_of(policy)
    conditions = _enable_when(policy, chosen)
    items: list[dict[str, Any]] = []
    for fact in chosen:
        spec = policy.facts[fact]
        item_type = _item_kind(policy, fact)
        item: dict[str, Any] = {
            "linkId": fact,
            "text": spec.question,
            "type": item_type,
            "required": False,
        }
        if isinstance(spec, AnswerFact) and spec.type == "choice":
            item["answerValueSet"] = _choice_url(base, policy, fact)
        define = library.defines.get(fact)
        if define is not None:
            item["extension"] = [
                {
                    "url": SDC_INITIAL,
                    "valueExpression": {
                        "language": "text/cql-identifier",
                        "expression": define,
                    },
                }
            ]
        if fact in conditions:
            item["enableWhen"] = conditions[fact]
            item["enableBehavior"] = "all"
        items.append(item)
    ident = questionnaire_id(policy, chosen)
    return {
        "resourceType": "Questionnaire",
        "id": ident,
        "meta": {"profile": [DTR_QUESTIONNAIRE]},
        "extension": [{"url": SDC_LIBRARY, "valueCanonical": library_url(base, policy)}],
        "url": f"{base}/Questionnaire/{ident}",
        "version": policy.version,
        "name": re.sub(r"[^A-Za-z0-9]", "", policy.id.title()) + "Questions",
        "title": f"{policy.title}: questions",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Generated by priorauth from the policy: one item per question the "
        "chart may not settle; each linkId is the policy's question id.",
        "item": items,
    }


# The CQL library of each policy object, compiled once (1 to 7 ms a policy): the forms, the
# packages and every `$next-question` need it. Keyed by the object (kept alive here, so its id
# is not reused); a reloaded policy is a new object and compiles anew.
_LIBRARIES: dict[int, tuple[Policy, CqlLibrary]] = {}


def library_of(policy: Policy) -> CqlLibrary:
    """The policy's CQL library (adapters.cql), compiled once per policy object."""
    found = _LIBRARIES.get(id(policy))
    if found is not None and found[0] is policy:
        return found[1]
    if len(_LIBRARIES) >= 64:
        _LIBRARIES.clear()
    library = compile_policy(policy)
    _LIBRARIES[id(policy)] = (policy, library)
    return library


def library_url(base: str, policy: Policy) -> str:
    return f"{base}/Library/{policy.id}"


def build_library(policy: Policy, base: str, library: CqlLibrary | None = None) -> dict[str, Any]:
    """The Library that pre-fills the form: the CQL text and its ELM JSON, both generated
    from the policy's facts (adapters.cql)."""
    import base64

    library = library or library_of(policy)
    return {
        "resourceType": "Library",
        "id": policy.id,
        "url": library_url(base, policy),
        "version": policy.version,
        "name": library.name,
        "title": f"{policy.title}: pre-population",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/library-type",
                    "code": "logic-library",
                }
            ]
        },
        "content": [
            {
                "contentType": "text/cql",
                "data": base64.b64encode(library.cql.encode()).decode(),
            },
            {
                "contentType": "application/elm+json",
                "data": base64.b64encode(library.elm_json.encode()).decode(),
            },
        ],
    }


def _code_set(policy: Policy, fact: str) -> tuple[str, list[str], list[str]] | None:
    spec = policy.facts[fact]
    if isinstance(spec, ConditionFact | ObservationFact):
        return (
            SYSTEMS.get(spec.system, spec.system),
            list(spec.codes),
            list(getattr(spec, "exclude", [])),
        )
    return None


def value_sets(policy: Policy, base: str) -> list[dict[str, Any]]:
    """The ValueSets of the policy: each condition's and observation's code set (a `C50.*`
    pattern is the code and its descendants, `is-a`), and each choice question's choices."""
    found: list[dict[str, Any]] = []
    for fact, spec in policy.facts.items():
        url = _choice_url(base, policy, fact)
        ident = url.rsplit("/", 1)[1]
        common = {
            "resourceType": "ValueSet",
            "id": ident,
            "url": url,
            "version": policy.version,
            "name": re.sub(r"[^A-Za-z0-9]", "", fact.title()),
            "status": "active",
            "description": spec.description or spec.question,
        }
        if isinstance(spec, AnswerFact) and spec.type == "choice":
            system = f"{base}/CodeSystem/{policy.id}-{fact.replace('_', '-')}"
            found.append(
                {
                    **common,
                    "compose": {
                        "include": [
                            {"system": system, "concept": [{"code": c} for c in spec.choices]}
                        ]
                    },
                }
            )
            continue
        code_set = _code_set(policy, fact)
        if code_set is None:
            continue
        system, codes, exclude = code_set
        compose: dict[str, Any] = {"include": _includes(system, codes)}
        if exclude:
            compose["exclude"] = _includes(system, exclude)
        found.append({**common, "compose": compose})
    return found


def _includes(system: str, patterns: list[str]) -> list[dict[str, Any]]:
    exact = [p for p in patterns if not p.endswith("*")]
    prefixes = [p[:-1].rstrip(".") for p in patterns if p.endswith("*")]
    includes: list[dict[str, Any]] = []
    if exact:
        includes.append({"system": system, "concept": [{"code": c} for c in exact]})
    for prefix in prefixes:
        includes.append(
            {"system": system, "filter": [{"property": "concept", "op": "is-a", "value": prefix}]}
        )
    return includes


def expand(value_set: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """`ValueSet/$expand` without a terminology server: the listed codes, and each `is-a`
    root as an abstract entry (its descendants are the code system's, matched by prefix)."""
    contains: list[dict[str, Any]] = []
    for include in value_set["compose"]["include"]:
        system = include["system"]
        for concept in include.get("concept", ()):
            contains.append({"system": system, "code": concept["code"]})
        for rule in include.get("filter", ()):
            contains.append(
                {
                    "system": system,
                    "code": rule["value"],
                    "abstract": True,
                    "display": f"{rule['value']} and every code under it",
                }
            )
    expanded = dict(value_set)
    expanded["expansion"] = {
        "timestamp": dt.datetime.combine(today, dt.time(), dt.UTC).isoformat(),
        "total": len(contains),
        "contains": contains,
    }
    return expanded


def _answer(value: object, item_type: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if item_type == "boolean" and isinstance(value, bool):
        return {"valueBoolean": value}
    if item_type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return {"valueInteger": int(value)}
    if item_type == "decimal" and isinstance(value, int | float) and not isinstance(value, bool):
        return {"valueDecimal": value}
    if item_type == "date" and isinstance(value, str):
        return {"valueDate": value}
    if item_type == "choice" and isinstance(value, str):
        return {"valueCoding": {"code": value}}
    if item_type == "string" and isinstance(value, str | int | float):
        return {"valueString": str(value)}
    return None


def prefill(
    questionnaire: dict[str, Any],
    determination: Determination | None,
    patient: str | None,
    authored: dt.datetime,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """A QuestionnaireResponse with each item the chart settles answered with the engine's
    value of its fact (unknown ones left for the person), status in-progress."""
    items: list[dict[str, Any]] = []
    facts = determination.facts if determination is not None else {}
    for item in questionnaire["item"]:
        entry: dict[str, Any] = {"linkId": item["linkId"], "text": item["text"]}
        found = facts.get(item["linkId"])
        answer = _answer(found.value if found else None, item["type"])
        if answer is not None and item["type"] == "choice" and policy is not None:
            system = f"{questionnaire['url'].rsplit('/Questionnaire/', 1)[0]}/CodeSystem/"
            answer["valueCoding"]["system"] = (
                system + f"{policy.id}-{item['linkId'].replace('_', '-')}"
            )
        if answer is not None:
            entry["answer"] = [answer]
        items.append(entry)
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": f"{questionnaire['id']}-prefill",
        "meta": {"profile": [DTR_RESPONSE]},
        "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
        "status": "in-progress",
        "authored": authored.isoformat(),
        "item": items,
    }
    if patient:
        response["subject"] = {"reference": patient}
    return response


def package(
    policy: Policy,
    facts: Sequence[str] | None,
    base: str,
    determination: Determination | None,
    patient: str | None,
    authored: dt.datetime,
) -> dict[str, Any]:
    """The `$questionnaire-package` Bundle of one form: the Questionnaire, its Library, the
    ValueSets and the pre-filled QuestionnaireResponse."""
    library = library_of(policy)
    questionnaire = build_questionnaire(policy, facts, base, library)
    resources = [
        questionnaire,
        build_library(policy, base, library),
        *value_sets(policy, base),
        prefill(questionnaire, determination, patient, authored, policy),
    ]
    return package_bundle(resources, base, authored)


def package_bundle(
    resources: Sequence[dict[str, Any]], base: str, authored: dt.datetime
) -> dict[str, Any]:
    """A `$questionnaire-package` Bundle (a collection) of a form's resources, each with its
    full URL under `base`."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": authored.isoformat(),
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }


_MODELS: dict[str, type[Any]] = {
    "Questionnaire": Questionnaire,
    "QuestionnaireResponse": QuestionnaireResponse,
    "ValueSet": ValueSet,
    "Library": Library,
    "Bundle": Bundle,
}


def validate(resource: dict[str, Any]) -> None:
    """Check a generated resource with fhir.resources (pydantic ValidationError if not)."""
    _MODELS[resource["resourceType"]].model_validate(resource)
