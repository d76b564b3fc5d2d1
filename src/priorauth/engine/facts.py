"""Derive the facts a policy speaks of from a request, each with its value and provenance.

A fact is true, false, a number, a choice, or None (unknown). Each kind of fact (policy.model)
compiles once into a function of the request and the service date. Contradicting evidence never
picks a side: the fact is unknown and a Conflict says why. A fact the requester may attest
(`attestable`, or a question of kind `answer`) reads `answers[<fact name>]`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from priorauth.clinical.codes import CodeSet, normalize_ndc
from priorauth.clinical.dates import age_in_months, age_in_years
from priorauth.clinical.drugs import Vocabulary
from priorauth.clinical.observations import ULN
from priorauth.engine import measures
from priorauth.engine.agents import AgentMatcher, name_key
from priorauth.engine.determination import Conflict, Evidence, FactResult
from priorauth.engine.products import coding_keys, drug_keys
from priorauth.engine.request import Answer, Medication, Request
from priorauth.policy.model import (
    AgeFact,
    AnswerFact,
    ConditionFact,
    CurrentMedicationFact,
    FactSpec,
    MeasureFact,
    MedicationHistoryFact,
    ObservationFact,
    Policy,
    ProductFact,
    SpecialtyFact,
)

__all__ = [
    "CompiledFact",
    "Derived",
    "ServiceDate",
    "compile_fact",
    "product_keys",
    "specialty_key",
]

Value = bool | int | float | str | None


class ServiceDate(NamedTuple):
    """The date the policy is applied on, and which request field it came from."""

    date: dt.date
    field: str


# A derived fact and, when the evidence disagrees, the conflict behind it.
Derived = tuple[FactResult, Conflict | None]


@dataclass(frozen=True)
class CompiledFact:
    """A fact prepared once: how to derive it, and the request fields that would settle it."""

    name: str
    derive: Callable[[Request, ServiceDate], Derived]
    fields: tuple[str, ...]
    question: str


class _Maker:
    """Builds the results of one fact."""

    def __init__(self, name: str, description: str, unit: str | None = None) -> None:
        self.name, self.description, self.unit = name, description, unit

    def __call__(
        self,
        value: Value,
        evidence: tuple[Evidence, ...] = (),
        note: str | None = None,
        conflict: str | None = None,
        bounds: tuple[int, int | None] | None = None,
    ) -> Derived:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        fact = FactResult(
            self.name,
            self.description,
            value,
            evidence,
            note,
            self.unit if numeric or bounds is not None else None,
            bounds,
        )
        return fact, (Conflict(self.name, conflict, evidence) if conflict is not None else None)


def _answer_value(answer: Answer) -> Value:
    value = answer.value
    return value.isoformat() if isinstance(value, dt.date) else value


def _answer_evidence(name: str, answer: Answer) -> Evidence:
    shown = _answer_value(answer)
    return Evidence(f"answers.{name}", shown if answer.by is None else f"{shown} (by {answer.by})")


def _attested(
    make: _Maker, derive: Callable[[Request, ServiceDate], Derived]
) -> Callable[[Request, ServiceDate], Derived]:
    """Let the requester's answer settle the fact when the record does not; an answer that
    contradicts the record is a conflict, and the fact stays unknown."""
    name = make.name

    def attested(request: Request, service: ServiceDate) -> Derived:
        found, conflict = derive(request, service)
        answer = request.answers.get(name)
        if answer is None or conflict is not None:
            return found, conflict
        given = _answer_value(answer)
        evidence = (*found.evidence, _answer_evidence(name, answer))
        if found.value is None and found.bounds is not None and _outside(given, found.bounds):
            least, most = found.bounds
            shown = f"at least {least}" if most is None else f"{least} to {most}"
            message = f"attested {given!r}, yet the record shows {shown}"
            return make(None, evidence, "conflicting evidence", conflict=message)
        if found.value is None:
            return make(given, evidence, "attested", bounds=None)
        if found.value == given:
            return make(found.value, evidence, f"{found.note or 'the record'}, and attested")
        message = f"attested {given!r}, yet the record shows {found.value!r}"
        return make(None, evidence, "conflicting evidence", conflict=message)

    return attested


def _outside(value: Value, bounds: tuple[int, int | None]) -> bool:
    """Whether an attested count falls outside what the record allows."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    least, most = bounds
    return value < least or (most is not None and value > most)


def _age(make: _Maker, spec: AgeFact) -> Callable[[Request, ServiceDate], Derived]:
    count = age_in_years if spec.unit == "years" else age_in_months

    def derive(request: Request, service: ServiceDate) -> Derived:
        birth = request.patient.birth_date
        if birth is None:
            return make(None, (), "no birth date given")
        evidence = (
            Evidence("patient.birth_date", birth.isoformat()),
            Evidence(service.field, service.date.isoformat()),
        )
        if birth > service.date:
            message = "the birth date is after the service date"
            return make(None, evidence, message, conflict=message)
        return make(count(birth, service.date), evidence)

    return derive


def _condition(make: _Maker, spec: ConditionFact) -> Callable[[Request, ServiceDate], Derived]:
    codes, excluded = CodeSet(spec.codes), CodeSet(spec.exclude)
    statuses = frozenset(spec.statuses)
    patterns = ", ".join(spec.codes)

    def derive(request: Request, service: ServiceDate) -> Derived:
        if not request.conditions:
            return make(None, (), "no conditions given")
        unsure: list[Evidence] = []
        for i, condition in enumerate(request.conditions):
            if (
                condition.system != spec.system
                or not codes.matches(condition.code)
                or excluded.matches(condition.code)
            ):
                continue
            if not statuses or condition.status in statuses:
                return make(
                    True, (Evidence(f"conditions[{i}]", condition.code),), f"matches {patterns}"
                )
            if condition.status is None:
                unsure.append(Evidence(f"conditions[{i}]", condition.code))
        if unsure:
            # A matching code whose status is not given may be one the policy counts.
            wanted = " or ".join(spec.statuses)
            return make(None, tuple(unsure), f"matches {patterns}, but is it {wanted}?")
        given = tuple(c.code for c in request.conditions)
        if spec.absent == "false":
            return make(False, (Evidence("conditions", given),), f"no condition matches {patterns}")
        return make(None, (Evidence("conditions", given),), f"no condition matches {patterns}")

    return derive


def _observation(make: _Maker, spec: ObservationFact) -> Callable[[Request, ServiceDate], Derived]:
    codes = frozenset(spec.codes)

    def derive(request: Request, service: ServiceDate) -> Derived:
        found = measures.latest(request, codes, spec.system, service.date, spec.within_days)
        if found is None:
            return make(None, (), f"no observation {', '.join(spec.codes)} given")
        if isinstance(found, str):
            return make(None, (), found)
        if spec.unit != ULN:
            # A value implausible for its unit and the patient is not a fact: it is asked.
            doubt = measures.implausible_observation(request, found[1], service.date)
            if doubt is not None:
                reading = measures.quantity(*found, None)
                return make(None, reading.evidence, doubt)
        reading = measures.quantity(*found, spec.unit)
        return make(reading.value, reading.evidence, reading.note)

    return derive


def _measure(make: _Maker, spec: MeasureFact) -> Callable[[Request, ServiceDate], Derived]:
    def derive(request: Request, service: ServiceDate) -> Derived:
        if spec.function == "body-surface-area":
            reading = measures.body_surface_area(
                request, service.date, spec.formula, 2, spec.cap_m2, spec.within_days
            )
        elif spec.function == "body-weight":
            reading = measures.body_weight(request, service.date, spec.within_days)
        else:
            reading = measures.creatinine_clearance(request, service.date, spec.within_days)
        return make(reading.value, reading.evidence, reading.note)

    return derive


def specialty_key(text: str) -> str:
    """A specialty name reduced for matching: `Hematology & Oncology` -> `hematology-oncology`."""
    words = [
        {"oncologist": "oncology", "hematologist": "hematology", "haematology": "hematology"}.get(
            w, w
        )
        for w in "".join(c if c.isalnum() else " " for c in text.lower()).split()
        if w != "and"
    ]
    return "-".join(words)


def _specialty(make: _Maker, spec: SpecialtyFact) -> Callable[[Request, ServiceDate], Derived]:
    accepted: dict[str, str] = {}
    for code, label in spec.specialties.items():
        accepted[code.upper()] = code
        accepted[specialty_key(label)] = code
    for alias, code in spec.aliases.items():
        accepted[specialty_key(alias)] = code
    roles = ("prescriber", "consultant") if spec.consultants else ("prescriber",)

    def derive(request: Request, service: ServiceDate) -> Derived:
        seen: list[Evidence] = []
        for i, practitioner in enumerate(request.practitioners):
            if practitioner.role not in roles:
                continue
            field = f"practitioners[{i}].specialty"
            if practitioner.specialty is None:
                seen.append(Evidence(f"practitioners[{i}]", practitioner.npi or practitioner.role))
                continue
            given = practitioner.specialty
            code = accepted.get(given.upper()) or accepted.get(specialty_key(given))
            if code is not None:
                who = "the prescriber" if practitioner.role == "prescriber" else "a consultant"
                return make(True, (Evidence(field, given),), f"{who}: specialty {code}")
            seen.append(Evidence(field, given))
        if not seen:
            return make(None, (), "no prescriber or consultant specialty given")
        # A prescriber outside the listed specialties may still be working with one: unknown
        # until someone says so, never a failed criterion.
        return make(None, tuple(seen), "no listed specialty among the practitioners given")

    return derive


def _within(medication: Medication, since: dt.date) -> bool | None:
    """Whether a medication was taken on or after `since` (None: its dates are not given)."""
    if medication.end_date is not None:
        return medication.end_date >= since
    if medication.status == "active":
        return True
    if medication.start_date is not None and medication.start_date >= since:
        return True
    return None


def _duration(medication: Medication, on: dt.date) -> int | None:
    """Days a medication was taken (to the service date while active), or None."""
    if medication.start_date is None:
        return None
    end = medication.end_date
    if end is None:
        if medication.status != "active":
            return None
        end = on
    return (end - medication.start_date).days + 1


def _outcome(medication: Medication) -> str | None:
    if medication.outcome is not None:
        return medication.outcome
    if medication.progression_date is not None or medication.progressed_on_therapy:
        return "progressed"
    return None


def _history(
    make: _Maker, spec: MedicationHistoryFact, matcher: AgentMatcher
) -> Callable[[Request, ServiceDate], Derived]:
    settings, outcomes = frozenset(spec.settings), frozenset(spec.outcomes)
    what = f"{spec.count} of {', '.join(spec.classes)}"

    def counts(medication: Medication, on: dt.date) -> bool | None:
        """Whether a medication of the classes counts: true, false, or unknown."""
        tests: list[bool | None] = []
        if settings:
            tests.append(None if medication.setting is None else medication.setting in settings)
        if spec.within_months is not None:
            tests.append(_within(medication, on - relativedelta(months=spec.within_months)))
        if spec.min_days is not None:
            days = _duration(medication, on)
            tests.append(None if days is None else days >= spec.min_days)
        if outcomes:
            outcome = _outcome(medication)
            tests.append(None if outcome is None else outcome in outcomes)
        if medication.outcome == "contraindicated" and "contraindicated" not in outcomes:
            tests.append(False)  # never given: it could not be
        if False in tests:
            return False
        return None if None in tests else True

    def derive(request: Request, service: ServiceDate) -> Derived:
        sure: list[tuple[int, Medication, str]] = []
        maybe: list[tuple[int, Medication, str]] = []
        for i, medication in enumerate(request.medications):
            agent = matcher.agent(medication)
            if agent is None:
                continue
            verdict = counts(medication, service.date)
            if verdict is True:
                sure.append((i, medication, agent))
            elif verdict is None:
                maybe.append((i, medication, agent))
        evidence = tuple(
            Evidence(f"medications[{i}]", m.name or f"{m.system} {m.code}")
            for i, m, _ in sure + maybe
        )
        if spec.count == "agents":
            least = len({agent for _, _, agent in sure})
            most = len({agent for _, _, agent in sure + maybe})
        else:
            least, most = _regimens(sure), _regimens(sure + maybe, upper=True)
        if most == 0 and spec.absent == "unknown":
            given = "no medications given" if not request.medications else f"no {what} given"
            return make(None, (), given)
        if spec.absent == "false" and least == most:
            return make(least, evidence, f"{least} {what}")
        if spec.absent == "false":
            note = f"{least} to {most} {what}: some records lack what would settle them"
            return make(None, evidence, note, bounds=(least, most))
        # The list may not be complete: the count is at least the sure one, with no upper bound.
        return make(None, evidence, f"at least {least} {what}", bounds=(least, None))

    return derive


def _regimens(found: list[tuple[int, Medication, str]], upper: bool = False) -> int:
    """Distinct regimens: medications with the same `regimen` label (or, without one, the same
    start date) are one regimen. Medications with neither count as one regimen in all for the
    least, and as one each for the most."""
    keys = {m.regimen or m.start_date for _, m, _ in found if m.regimen or m.start_date}
    loose = sum(1 for _, m, _ in found if not (m.regimen or m.start_date))
    if upper:
        return len(keys) + loose
    return len(keys) + (1 if loose and not keys else 0)


def _current(
    make: _Maker, spec: CurrentMedicationFact, matcher: AgentMatcher
) -> Callable[[Request, ServiceDate], Derived]:
    def derive(request: Request, service: ServiceDate) -> Derived:
        if spec.partners:
            for i, partner in enumerate(request.service.with_):
                if matcher.in_text(partner):
                    return make(True, (Evidence(f"service.with[{i}]", partner),), "given alongside")
        unsure: list[Evidence] = []
        if spec.medications:
            for i, medication in enumerate(request.medications):
                if matcher.agent(medication) is None:
                    continue
                ended = medication.end_date is not None and medication.end_date < service.date
                if medication.status in ("completed", "stopped") or ended:
                    continue
                shown = medication.name or f"{medication.system} {medication.code}"
                if medication.status == "unknown":
                    unsure.append(Evidence(f"medications[{i}]", shown))
                    continue
                return make(True, (Evidence(f"medications[{i}]", shown),), "taken now")
        if unsure:
            return make(None, tuple(unsure), "whether it is taken now is not known")
        if spec.absent == "false":
            return make(False, (), f"none of {', '.join(spec.classes)} taken now")
        return make(None, (), f"no current medication of {', '.join(spec.classes)} given")

    return derive


def _product_key(system: str, code: str) -> tuple[str, str]:
    """How a product code a policy lists is looked for: an NDC product (labeler-product) or
    package in the request's 5-4-2 form, other codes in upper case."""
    if system == "ndc":
        if re.fullmatch(r"[0-9]{5}-[0-9]{4}", code):
            return ("ndc-product", code)
        try:
            return ("ndc", normalize_ndc(code))
        except ValueError:
            return ("ndc", code)
    return (system, code.upper())


def product_keys(spec: ProductFact, policy: Policy) -> set[tuple[str, str]]:
    """The keys a `product` fact matches a requested code's keys (`coding_keys`) against."""
    wanted: set[tuple[str, str]] = {_product_key(c.system, c.code) for c in spec.codes}
    if not spec.codes:
        for drug in policy.drugs:
            if drug.preferred:
                wanted.update(drug_keys(drug))
    return wanted


def _product(
    make: _Maker, spec: ProductFact, policy: Policy
) -> Callable[[Request, ServiceDate], Derived]:
    wanted = product_keys(spec, policy)

    def derive(request: Request, service: ServiceDate) -> Derived:
        for i, coding in enumerate(request.service.codes):
            if coding_keys(coding) & wanted:
                return make(
                    True, (Evidence(f"service.codes[{i}]", coding.code),), "a listed product"
                )
        shown = tuple(c.code for c in request.service.codes)
        return make(False, (Evidence("service.codes", shown),), "not a listed product")

    return derive


def _answer(make: _Maker, spec: AnswerFact) -> Callable[[Request, ServiceDate], Derived]:
    choices = {name_key(c): c for c in spec.choices}

    def derive(request: Request, service: ServiceDate) -> Derived:
        answer = request.answers.get(make.name)
        if answer is None:
            return make(None, (), "not answered")
        value = _answer_value(answer)
        if spec.type == "choice" and isinstance(value, str):
            value = choices.get(name_key(value), value)
        return make(value, (_answer_evidence(make.name, answer),), "attested")

    return derive


def compile_fact(
    name: str, spec: FactSpec, policy: Policy, vocabulary: Vocabulary | None = None
) -> CompiledFact:
    """The named fact prepared: a function of a request and the service date, and the request
    fields that would settle the fact when it is unknown. With the drug vocabulary, the
    medication facts know drugs by their brand and combination names too."""
    unit: str | None = None
    if isinstance(spec, AgeFact | ObservationFact):
        unit = spec.unit
    elif isinstance(spec, MeasureFact):
        unit = {"body-surface-area": "m2", "body-weight": "kg"}.get(spec.function, "mL/min")
    make = _Maker(name, spec.description, unit)
    derive: Callable[[Request, ServiceDate], Derived]
    fields: tuple[str, ...]
    if isinstance(spec, AgeFact):
        derive, fields = _age(make, spec), ("patient.birth_date",)
    elif isinstance(spec, ConditionFact):
        derive, fields = _condition(make, spec), ("conditions",)
    elif isinstance(spec, ObservationFact):
        derive = _observation(make, spec)
        fields = tuple(f"observations[{code}]" for code in spec.codes)
    elif isinstance(spec, MeasureFact):
        derive, fields = _measure(make, spec), ("observations", "patient")
    elif isinstance(spec, SpecialtyFact):
        derive, fields = _specialty(make, spec), ("practitioners",)
    elif isinstance(spec, MedicationHistoryFact):
        matcher = AgentMatcher((policy.agent_classes[c] for c in spec.classes), vocabulary)
        derive, fields = _history(make, spec, matcher), ("medications",)
    elif isinstance(spec, CurrentMedicationFact):
        matcher = AgentMatcher((policy.agent_classes[c] for c in spec.classes), vocabulary)
        derive, fields = _current(make, spec, matcher), ("medications", "service.with")
    elif isinstance(spec, ProductFact):
        derive, fields = _product(make, spec, policy), ("service.codes",)
    else:
        return CompiledFact(name, _answer(make, spec), (f"answers.{name}",), spec.question)
    if getattr(spec, "attestable", False):
        derive, fields = _attested(make, derive), (*fields, f"answers.{name}")
    return CompiledFact(name, derive, fields, spec.question)
