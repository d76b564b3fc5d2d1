"""The compiler: a policy's facts -> CQL text and ELM JSON, one define per fact it expresses.

Each per-kind module (`charted`, `observations`, `measures`, `answers`) builds a define's CQL
text and its ELM together (`elm.Define`); this module picks them for a policy's facts, adds
the shared defines they read, and writes the library in both forms.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from priorauth.adapters.cql import answers, charted, measures, observations, order, units
from priorauth.adapters.cql.elm import SYSTEM, Define, expression, if_, null, prop, quote
from priorauth.clinical.observations import ULN
from priorauth.policy.model import (
    AgeFact,
    AnswerFact,
    ConditionFact,
    FactSpec,
    MeasureFact,
    ObservationFact,
    Policy,
    ProductFact,
)

__all__ = ["CqlLibrary", "compile_policy", "not_compiled_reason"]


@dataclass(frozen=True, slots=True)
class CqlLibrary:
    """A generated library: its name, CQL text, ELM JSON (text), the define of each fact it
    expresses, and the facts it does not."""

    name: str
    version: str
    cql: str
    elm_json: str
    defines: dict[str, str]
    not_compiled: tuple[str, ...]

    @property
    def elm(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.elm_json)
        return parsed


# Why the kinds this compiler leaves out have no define (docs/crd-dtr.md says more).
_REASONS = {
    "specialty": "the prescriber's specialty is matched by words the library cannot split alike",
    "medication-history": "agents are matched through the drug vocabulary's names",
    "current-medication": "agents are matched through the drug vocabulary's names",
}


def not_compiled_reason(name: str, spec: FactSpec, policy: Policy) -> str | None:
    """Why a fact has no define (None: it has one)."""
    if isinstance(spec, ProductFact):
        return None if order.compilable(spec, policy) else "a product code in ICD-10-CM"
    if isinstance(spec, AgeFact):
        return None if spec.unit == "years" else "an age in months"
    if isinstance(spec, ConditionFact):
        return "condition statuses" if spec.statuses else None
    if isinstance(spec, ObservationFact):
        return None
    if isinstance(spec, MeasureFact):
        return None
    if isinstance(spec, AnswerFact):
        return None if answers.compilable(name) else "the question fills a patient field"
    return _REASONS[spec.kind]


def _observation(name: str, spec: ObservationFact) -> list[Define]:
    reading = f"{name} reading"  # a space: no fact has one, so no clash
    found = [observations.latest(reading, list(spec.codes), spec.system, spec.within_days)]
    codes = list(spec.codes) if spec.system == "loinc" else []
    if spec.unit == ULN:
        found.append(observations.multiple_of_uln(name, reading))
        return found
    if spec.unit is not None:
        found.append(observations.unit_reading(name, reading, codes, spec.unit))
        return found
    record = expression(reading)
    doubt, doubt_cql = observations.implausible(record, codes)
    elm = if_({"type": "IsTrue", "operand": doubt}, null(), prop("value", source=record))
    r = f'"{reading}"'
    cql = f"if {doubt_cql.replace('R.', r + '.')} then null else {r}.value"
    found.append(Define(name, cql, elm))
    return found


def _fact_defines(name: str, spec: FactSpec, policy: Policy) -> list[Define]:
    if isinstance(spec, ProductFact):
        return [order.product(name, spec, policy)]
    if isinstance(spec, AgeFact):
        return [charted.age(name)]
    if isinstance(spec, ConditionFact):
        return [charted.condition(name, spec)]
    if isinstance(spec, ObservationFact):
        return _observation(name, spec)
    if isinstance(spec, MeasureFact):
        return measures.measure(name, spec)
    assert isinstance(spec, AnswerFact)
    return answers.answer(name, spec)


@functools.cache
def _shared() -> tuple[Define, ...]:
    """The defines and functions the facts' defines read (built once: they depend only on
    the code tables)."""
    return (
        charted.patient_define(),
        charted.known_systems_define(),
        *units.defines(),
        charted.age_define(),
        charted.codings_define(),
        charted.charted_conditions(),
        observations.observation_records(),
        *answers.answered_items(),
        *answers.functions(),
        *order.functions(),
    )


def _references(node: Any, found: set[str]) -> None:
    """The names of the defines and functions an ELM expression refers to."""
    if isinstance(node, dict):
        if node.get("type") in ("ExpressionRef", "FunctionRef"):
            found.add(node["name"])
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)


def _used(defines: list[Define], roots: list[str]) -> list[Define]:
    """The defines the roots need, in their order: a library without observations has no
    ObservationRecords."""
    by_name = {d.name: d for d in defines}
    needed: set[str] = set()
    waiting = list(roots)
    while waiting:
        name = waiting.pop()
        if name in needed:
            continue
        needed.add(name)
        refers: set[str] = set()
        _references(by_name[name].elm, refers)
        waiting.extend(refers - needed)
    return [d for d in defines if d.name in needed]


def _library_name(policy: Policy) -> str:
    return "".join(part.title() for part in re.split(r"[^a-z0-9]+", policy.id)) + "Prepopulation"


def compile_policy(policy: Policy) -> CqlLibrary:
    """The library of one policy: a define per fact the chart can settle (named as the fact),
    the others listed as not compiled."""
    defines: list[Define] = list(_shared())
    names: dict[str, str] = {}
    skipped: list[str] = []
    reasons: list[str] = []
    for name, spec in policy.facts.items():
        reason = not_compiled_reason(name, spec, policy)
        if reason is not None:
            skipped.append(name)
            reasons.append(f"//   {name}: {reason}")
            continue
        for define in _fact_defines(name, spec, policy):
            if all(d.name != define.name for d in defines):
                defines.append(define)
        names[name] = name
    defines = _used(defines, ["Patient", *names])
    library = _library_name(policy)
    # The order is a parameter, its id: the library reads it only for a fact that needs it.
    reads_order = any(d.name == "Order" for d in defines)
    parameters = [("ServiceDate", "Date")] + ([(order.ORDER_ID, "String")] if reads_order else [])
    lines = [
        f"// Generated by priorauth from policy {policy.id} version {policy.version}.",
        f"library {library} version {quote(policy.version)}",
        "",
        "using FHIR version '4.0.1'",
        "",
        *(f'parameter "{p}" {kind}' for p, kind in parameters),
        "",
        "context Patient",
        "",
    ]
    for define in defines:
        if define.name == "Patient":
            continue
        lines.append(define.text())
    if skipped:
        lines.append("// Not pre-filled by this library (asked on the form):")
        lines.extend(reasons)
    elm = {
        "library": {
            "identifier": {"id": library, "version": policy.version},
            "schemaIdentifier": {"id": "urn:hl7-org:elm", "version": "r1"},
            "usings": {
                "def": [
                    {"localIdentifier": "System", "uri": "urn:hl7-org:elm-types:r1"},
                    {"localIdentifier": "FHIR", "uri": "http://hl7.org/fhir", "version": "4.0.1"},
                ]
            },
            "parameters": {
                "def": [
                    {
                        "name": p,
                        "accessLevel": "Public",
                        "parameterTypeSpecifier": {
                            "type": "NamedTypeSpecifier",
                            "name": f"{SYSTEM}{kind}",
                        },
                    }
                    for p, kind in parameters
                ]
            },
            "contexts": {"def": [{"name": "Patient"}]},
            "statements": {"def": [d.statement() for d in defines]},
        }
    }
    return CqlLibrary(
        library,
        policy.version,
        "\n".join(lines),
        json.dumps(elm, separators=(",", ":")),
        names,
        tuple(skipped),
    )
