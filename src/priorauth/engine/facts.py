"""Derive the facts a policy speaks of from a request, each with its value and provenance.

A fact is true, false, a number, or None (unknown). Contradicting evidence never picks a side:
the fact is unknown and a Conflict says why. Results that do not depend on the request (a flag
that was not given) are built once, when the policy is compiled.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from operator import attrgetter
from typing import NamedTuple

from priorauth.clinical.codes import CodeSet
from priorauth.clinical.dates import age_in_years
from priorauth.engine.determination import Conflict, Evidence, FactResult
from priorauth.engine.kept import remember
from priorauth.engine.request import Request
from priorauth.policy.model import (
    AgeFact,
    AttestedFact,
    AttestedOrDiagnosisFact,
    DiagnosisFact,
    FactSpec,
    SpecialtyFact,
)

__all__ = ["Derived", "FactDeriver", "ServiceDate", "compile_fact", "specialty_key"]


class ServiceDate(NamedTuple):
    """The date the policy is applied on, and which request field it came from."""

    date: dt.date
    field: str


# A derived fact and, when the evidence disagrees, the conflict behind it.
Derived = tuple[FactResult, Conflict | None]
FactDeriver = Callable[[Request, ServiceDate], Derived]


class _Maker:
    """Builds the results of one fact; keeps its name and description."""

    __slots__ = ("description", "name")

    def __init__(self, name: str, description: str) -> None:
        self.name, self.description = name, description

    def __call__(
        self,
        value: bool | int | None,
        evidence: tuple[Evidence, ...],
        note: str | None,
        conflict: str | None = None,
    ) -> Derived:
        fact = FactResult(self.name, self.description, value, evidence, note)
        found = Conflict(self.name, conflict, evidence) if conflict is not None else None
        return fact, found


def _diagnosis_evidence(diagnoses: tuple[str, ...], code: str) -> Evidence:
    return Evidence(f"diagnoses[{diagnoses.index(code)}]", code)


def _compile_age(make: _Maker, spec: AgeFact) -> FactDeriver:
    unknown = make(None, (), "no birth date given")
    # Few service dates recur (a regimen's start, a received day): their evidence is kept.
    on_date: dict[ServiceDate, Evidence] = {}
    name, description = make.name, make.description

    def derive(request: Request, service: ServiceDate) -> Derived:
        birth = request.patient.birth_date
        if birth is None:
            return unknown
        on = on_date.get(service)
        if on is None:
            on = remember(on_date, service, Evidence(service.field, service.date.isoformat()))
        evidence = (Evidence("patient.birth_date", birth.isoformat()), on)
        if birth > service.date:
            message = "the birth date is after the service date"
            return make(None, evidence, message, conflict=message)
        return FactResult(
            name, description, age_in_years(birth, service.date), evidence, None
        ), None

    return derive


def _compile_diagnosis(make: _Maker, spec: DiagnosisFact) -> FactDeriver:
    codes = CodeSet(spec.codes)
    patterns = ", ".join(spec.codes)
    unknown = make(None, (), "no diagnoses given")
    matched, unmatched = f"matches {patterns}", f"no diagnosis matches {patterns}"
    kept: dict[tuple[str, ...], Derived] = {}

    def derive(request: Request, service: ServiceDate) -> Derived:
        diagnoses = request.diagnoses
        if not diagnoses:
            return unknown
        found = kept.get(diagnoses)
        if found is not None:
            return found
        hit = codes.first_match(diagnoses)
        if hit is not None:
            found = make(True, (_diagnosis_evidence(diagnoses, hit),), matched)
        else:
            found = make(False, (Evidence("diagnoses", diagnoses),), unmatched)
        return remember(kept, diagnoses, found)

    return derive


def _compile_attested(make: _Maker, spec: AttestedFact) -> FactDeriver:
    read = attrgetter(spec.attested)
    path = spec.attested
    # Three possible answers, all known in advance.
    answers = {
        None: make(None, (), f"{path} not given"),
        True: make(True, (Evidence(path, True),), "attested"),
        False: make(False, (Evidence(path, False),), "attested"),
    }

    def derive(request: Request, service: ServiceDate) -> Derived:
        return answers[read(request)]

    return derive


def _compile_attested_or_diagnosis(make: _Maker, spec: AttestedOrDiagnosisFact) -> FactDeriver:
    read = attrgetter(spec.attested)
    path = spec.attested
    codes = CodeSet(spec.codes)
    patterns = ", ".join(spec.codes)
    by_code = f"diagnosis matches {patterns}"
    nothing = make(None, (), f"{path} not given and no diagnosis matches {patterns}")
    attested_only = {
        True: make(True, (Evidence(path, True),), "attested"),
        False: make(False, (Evidence(path, False),), "attested"),
    }
    kept: dict[tuple[bool | None, tuple[str, ...]], Derived] = {}

    def settle(attested: bool | None, diagnoses: tuple[str, ...]) -> Derived:
        hit = codes.first_match(diagnoses)
        if hit is None:
            return nothing if attested is None else attested_only[attested]
        code = _diagnosis_evidence(diagnoses, hit)
        if attested is None:
            return make(True, (code,), by_code)
        evidence = (Evidence(path, attested), code)
        if attested:
            return make(True, evidence, f"attested, and diagnosis {hit}")
        message = f"{path} is attested false, yet diagnosis {hit} shows it"
        return make(None, evidence, "conflicting evidence", conflict=message)

    def derive(request: Request, service: ServiceDate) -> Derived:
        attested = read(request)
        diagnoses = request.diagnoses
        if not diagnoses:
            return nothing if attested is None else attested_only[attested]
        key = (attested, diagnoses)
        found = kept.get(key)
        return found if found is not None else remember(kept, key, settle(attested, diagnoses))

    return derive


_WORD = re.compile(r"[a-z0-9]+")
_SYNONYMS = {"oncologist": "oncology", "hematologist": "hematology", "haematology": "hematology"}


def specialty_key(text: str) -> str:
    """A specialty name reduced for matching: `Hematology & Oncology` -> `hematology-oncology`."""
    words = [_SYNONYMS.get(w, w) for w in _WORD.findall(text.lower()) if w != "and"]
    return "-".join(words)


def _compile_specialty(make: _Maker, spec: SpecialtyFact) -> FactDeriver:
    accepted: dict[str, str] = {}
    for code, label in spec.specialties.items():
        accepted[code.upper()] = code
        accepted[specialty_key(label)] = code
    for alias, code in spec.aliases.items():
        accepted[specialty_key(alias)] = code
    consultant_path = spec.consultant
    read_consultant = attrgetter(consultant_path) if consultant_path else None
    notes = {code: f"specialty {code}" for code in spec.specialties}
    nothing = make(None, (), "no specialty and no consultant given")
    kept: dict[tuple[str, str | None], Derived] = {}

    def settle(specialty: str | None, consultant: str | None) -> Derived:
        if specialty:
            given = Evidence("prescriber.specialty", specialty)
            code = accepted.get(specialty.upper()) or accepted.get(specialty_key(specialty))
            if code is not None:
                return make(True, (given,), notes[code])
            if not consultant:
                # A prescriber outside the listed specialties may still be working with one:
                # unknown until someone says so, never a failed criterion.
                return make(None, (given,), "not a listed specialty, and no consultant named")
            return make(
                True,
                (given, Evidence(consultant_path or "", consultant)),
                "a consulting specialist is named",
            )
        if consultant:
            return make(
                True,
                (Evidence(consultant_path or "", consultant),),
                "a consulting specialist is named",
            )
        return nothing

    def derive(request: Request, service: ServiceDate) -> Derived:
        specialty = request.prescriber.specialty
        consultant = read_consultant(request) if read_consultant else None
        if not specialty and not consultant:
            return nothing
        key = (specialty or "", consultant)
        found = kept.get(key)
        return found if found is not None else remember(kept, key, settle(specialty, consultant))

    return derive


def compile_fact(name: str, spec: FactSpec) -> tuple[FactDeriver, tuple[str, ...]]:
    """A function that derives the named fact from a request on a service date, and the request
    fields that would settle the fact when it is unknown."""
    make = _Maker(name, spec.description)
    if isinstance(spec, AgeFact):
        return _compile_age(make, spec), ("patient.birth_date",)
    if isinstance(spec, DiagnosisFact):
        return _compile_diagnosis(make, spec), ("diagnoses",)
    if isinstance(spec, AttestedFact):
        return _compile_attested(make, spec), (spec.attested,)
    if isinstance(spec, AttestedOrDiagnosisFact):
        return _compile_attested_or_diagnosis(make, spec), (spec.attested, "diagnoses")
    fields = ("prescriber.specialty",) + ((spec.consultant,) if spec.consultant else ())
    return _compile_specialty(make, spec), fields
