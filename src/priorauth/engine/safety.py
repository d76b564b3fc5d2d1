"""Label safety screens, the label indication and guideline context, for one request.

`SafetyReviewer(data)` compiles a policy's safety data once: each screen becomes one function of
the request (a closure over its prepared names, codes, limits and messages). `review(request,
dosing, bsa_m2)` runs them in the data file's order and returns the alerts (most serious first),
the screens that could not run, the label indication and the receptor-status context. It reads
only the request and the dosing result: pure, no clock, no I/O.

A screen gives one of three answers: a finding (an Alert), nothing to report, or "could not run"
(a ScreenNotRun naming the request fields it lacked). A missing lab is never a finding.

What the screens read (docs/safety.md has the whole list): the latest observation of each LOINC
code, converted to the screen's unit (`{ULN}`: its uln_multiple); the medications taken now
(status active, intended or on-hold, or none given, and not ended before the service date) and
the agents given alongside (service.with); allergies; conditions (ICD-10-CM); the patient's
pregnancy and breastfeeding; and the dose. The dose a screen compares in mg/m2 is the requested
dose when it is given per m2, else the dosing step's mg per dose over the body surface area.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from fractions import Fraction
from operator import attrgetter
from typing import Literal, NamedTuple

from priorauth.clinical.codes import CodeSet
from priorauth.clinical.drugs import Identified, Vocabulary, mentions, words
from priorauth.clinical.observations import BSA, HEIGHT, WEIGHT
from priorauth.clinical.resistance import resistance
from priorauth.clinical.schedules import doses_per_day
from priorauth.clinical.units import UnitError, convert
from priorauth.engine.agents import name_key
from priorauth.engine.determination import SEVERITY_ORDER, Alert, DosingResult, JsonScalar
from priorauth.engine.measures import implausible_observation, round_half_up
from priorauth.engine.request import Medication, Observation, Request, Schedule
from priorauth.engine.review import (
    GuidelineContext,
    LabelIndication,
    LabelIndicationCheck,
    ScreenNotRun,
    TherapyFinding,
    Unrecognized,
)
from priorauth.errors import PolicyError, PolicyIssue
from priorauth.policy.safety_model import (
    ULN,
    AgentClass,
    AllergyScreen,
    AttestedScreen,
    Band,
    BandObservation,
    ConditionScreen,
    Guideline,
    InteractionScreen,
    ObservationBandsScreen,
    ObservationCondition,
    ObservationLimitsScreen,
    ObservationResultScreen,
    Resistance,
    SafetyData,
    Screen,
    Severity,
)
from priorauth.policy.staged import did_you_mean

__all__ = ["SEVERITY_ORDER", "Review", "SafetyReviewer", "number"]

# A finding of these severities holds an otherwise approvable request for a pharmacist.
_HOLDING = frozenset({"contraindication", "dose-limit", "review"})
# A medication in one of these states, or with none given, is taken now (unless it ended).
_CURRENT = frozenset({"active", "intended", "on-hold", None})
# What lets the body surface area be known: the BSA, or height and weight.
_BSA_FIELDS = tuple(f"observations[{m.code}]" for m in (BSA, HEIGHT, WEIGHT))
_WEIGHT_FIELD = f"observations[{WEIGHT.code}]"
# A dose compared with a limit: a hair above it (from rounding) is not above it.
_EPSILON = 1e-9
_UNSCREENED_SOURCE = (
    "priorauth: a regimen whose partner cannot be identified cannot be screened, so it is "
    "never approved without a pharmacist (docs/safety.md)"
)


class Review(NamedTuple):
    """What the screens found for one request."""

    alerts: tuple[Alert, ...]
    not_run: tuple[ScreenNotRun, ...]
    label_indication: LabelIndication | None
    guideline: GuidelineContext | None
    holds: bool  # a contraindication, a dose limit or a review: a pharmacist must look
    unrecognized: tuple[Unrecognized, ...] = ()
    # Observations a screen would have read but did not, their values being implausible for
    # their unit and the patient: (field, why), e.g. (`observations[3]`, ...), to ask about.
    doubted: tuple[tuple[str, str], ...] = ()


class Reading(NamedTuple):
    """An observation's value in a screen's unit, with its date."""

    value: float
    date: dt.date | None


class _Drug(NamedTuple):
    """A medication or an agent given alongside, as the vocabulary knows it."""

    field: str  # where it is in the request: medications[0].name, service.with[1]
    name: str
    identified: Identified


class _Names:
    """Names found as whole words inside a drug name, case and spacing aside, as the policy's
    agent classes are (engine.agents): "Examplumab 200 MG Oral Tablet" names examplumab,
    "lopinavir/ritonavir" names both, "epirubicinol" does not name epirubicin and
    "nab-examplumab" does not name examplumab (a hyphen joins a word)."""

    def __init__(self, names: Iterable[str]) -> None:
        # Longest first, so "liposomal examplumab" is found before "examplumab".
        keys = sorted({name_key(name) for name in names}, key=len, reverse=True)
        alternatives = "|".join(map(re.escape, keys)) or r"(?!)"
        self._pattern = re.compile(rf"(?<![\w-])({alternatives})(?![\w-])")

    def found(self, key: str) -> list[str]:
        """The names in a name key (`name_key`), in the order they appear."""
        return self._pattern.findall(key)


def number(value: float) -> str:
    """A number as a reviewer reads it: 1,200 for whole counts of a thousand or more, else 2.6."""
    if value >= 1000 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:g}"


def _reading(observation: Observation, unit: str) -> float | None:
    """An observation's value in `unit` (`{ULN}`: its uln_multiple), or None when it gives none:
    no numeric value, no unit, or a unit that does not convert."""
    if unit == ULN:
        return observation.uln_multiple
    value, given = observation.value, observation.unit
    if isinstance(value, bool) or not isinstance(value, int | float) or given is None:
        return None
    try:
        return convert(float(value), given, unit)
    except UnitError:
        return None


def _shown(unit: str) -> str:
    """How a unit follows a value in a message: `1,200/mm3`, `2.6 x ULN`, `5 mg/dL`."""
    if unit == ULN:
        return " x ULN"
    return unit if unit.startswith("/") else f" {unit}"


def _medication_name(medication: Medication) -> str:
    return medication.name or f"{medication.system} {medication.code}"


def _rate(schedule: Schedule | None) -> Fraction | None:
    """The requested schedule's doses per day in the long run, or None when it does not say."""
    if schedule is None:
        return None
    doses = schedule.doses_per_cycle
    if doses is None and schedule.cycle_days is not None:
        doses = len(schedule.cycle_days)
    return doses_per_day(
        cycle_length=schedule.cycle_length_days,
        doses_per_cycle=doses,
        interval=schedule.interval_days,
        interval_months=schedule.interval_months,
    )


class _Case:
    """What the screens read from one request, worked out once: its observations by code, the
    medications taken now and the agents given alongside as the vocabulary knows them, the body
    surface area, the dose and the dose rate."""

    def __init__(
        self,
        request: Request,
        dosing: DosingResult | None,
        bsa_m2: float | None,
        service_date: dt.date | None,
        vocabulary: Vocabulary,
    ) -> None:
        self.request = request
        self.partners = tuple(
            _Drug(f"service.with[{j}]", agent, vocabulary.identify(agent))
            for j, agent in enumerate(request.service.with_)
        )
        self.unknown_partners = tuple(d for d in self.partners if not d.identified.recognized)
        day = service_date or request.service.start_date
        if day is None and request.received_at is not None:
            day = request.received_at.date()
        # Observations by code, each with its place in the request; an implausible value is
        # not read (engine.measures.implausible_observation) but noted, to be asked about.
        self.observations: dict[str, list[tuple[int, Observation]]] = {}
        for index, observation in enumerate(request.observations):
            if observation.system == "loinc":
                self.observations.setdefault(observation.code, []).append((index, observation))
        self.doubted: dict[str, str] = {}
        self.medications: list[tuple[bool, _Drug]] = []  # (taken now, the drug)
        for i, medication in enumerate(request.medications):
            field = f"medications[{i}].name" if medication.name else f"medications[{i}].code"
            drug = _Drug(
                field,
                _medication_name(medication),
                vocabulary.identify(medication.name, medication.code, medication.system),
            )
            now = medication.status in _CURRENT and not (
                day and medication.end_date and medication.end_date < day
            )
            self.medications.append((now, drug))
        self.current = tuple(drug for now, drug in self.medications if now)
        self.unknown_current = tuple(d for d in self.current if not d.identified.recognized)
        if bsa_m2 is None and dosing is not None:
            bsa_m2 = dosing.bsa_m2
        self.bsa = bsa_m2
        self.dose_mg_per_m2, self.dose_fields = _dose_per_m2(request, dosing, bsa_m2)
        self.dose_mg_per_kg = _dose_per_kg(request, dosing)
        self.rate = _rate(request.service.schedule)
        self.day = day

    def unrecognized(self) -> tuple[Unrecognized, ...]:
        """The medications and partners the vocabulary does not know, in request order."""
        drugs = [drug for _, drug in self.medications] + list(self.partners)
        return tuple(Unrecognized(d.field, d.name) for d in drugs if not d.identified.recognized)

    def latest(self, code: str, unit: str) -> Reading | None:
        """The latest LOINC observation of `code` that gives a value in `unit`. An undated
        observation counts as older than any dated one; of two on one day, the later listed."""
        found: tuple[tuple[bool, dt.date, int], Reading] | None = None
        for index, observation in self.observations.get(code, ()):
            value = _reading(observation, unit)
            if value is None:
                continue
            if self.day is not None:
                why = implausible_observation(self.request, observation, self.day)
                if why is not None:
                    self.doubted[f"observations[{index}]"] = why
                    continue
            date = observation.date
            order = (date is not None, date or dt.date.min, index)
            if found is None or order > found[0]:
                found = (order, Reading(value, date))
        return found[1] if found is not None else None

    def above(self, limit: float, per_days: int | None) -> bool:
        """Whether the dose (mg/m2, known) is above `limit` a dose or, with `per_days`, above
        `limit` on average over so many days of the requested schedule."""
        dose = self.dose_mg_per_m2
        assert dose is not None
        if dose > limit + _EPSILON:
            return True
        if per_days is None or self.rate is None:
            return False
        return float(dose * self.rate * per_days) > limit + _EPSILON

    def dose_words(self, per_days: int | None) -> str:
        """The dose as a message says it: `16 mg/m2` and, with a rate and `per_days`, what that
        comes to over so many days (`48 mg/m2 in 21 days on average`)."""
        dose = self.dose_mg_per_m2
        if dose is None:
            return "an unknown dose"
        text = f"{number(dose)} mg/m2"
        if per_days is not None and self.rate is not None and self.rate * per_days != 1:
            average = round(float(dose * self.rate * per_days), 1)
            text += f" ({number(average)} mg/m2 in {per_days} days on average)"
        return text


def _dose_per_m2(
    request: Request, dosing: DosingResult | None, bsa: float | None
) -> tuple[float | None, tuple[str, ...]]:
    """The dose in mg/m2 and, when it is unknown, the request fields that would give it. A dose
    in mg is divided by the body surface area the dosing step used (capped when the policy caps
    it), so 52 mg on a BSA of 2.6 m2 capped at 2.2 is 23.6 mg/m2."""
    dose = request.service.dose
    if dose is None:
        return None, ("service.dose",)
    mass, _, per = dose.unit.partition("/")
    if per == "m2":
        return convert(dose.value, mass, "mg"), ()
    mg = dosing.mg_per_dose if dosing is not None else None
    if mg is not None and bsa:
        return round_half_up(mg / bsa, 1), ()
    missing: list[str] = []
    if mg is None and per == "kg":
        missing.append(_WEIGHT_FIELD)
    if bsa is None:
        missing.extend(_BSA_FIELDS)
    return None, tuple(dict.fromkeys(missing)) or ("service.dose",)


def _dose_per_kg(request: Request, dosing: DosingResult | None) -> float | None:
    """The dose in mg/kg: as requested, or the dosing step's mg a dose over its body weight."""
    dose = request.service.dose
    if dose is None:
        return None
    mass, _, per = dose.unit.partition("/")
    if per == "kg":
        return convert(dose.value, mass, "mg")
    if dosing is None or dosing.mg_per_dose is None or not dosing.weight_kg:
        return None
    return round_half_up(dosing.mg_per_dose / dosing.weight_kg, 2)


ScreenResult = Alert | ScreenNotRun | None
ScreenFn = Callable[[_Case], ScreenResult]


def _ingredients(names: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(words(name)) for name in names)


def _given_with(case: _Case, wanted: tuple[tuple[str, ...], ...]) -> tuple[_Drug, ...]:
    """The partners that are (or contain) one of the wanted ingredients."""
    return tuple(d for d in case.partners if mentions(d.name, d.identified, wanted))


def _unknown_partners(spec_id: str, title: str, case: _Case, what: str) -> ScreenNotRun:
    """A screen that cannot tell whether it applies: a partner the vocabulary does not know."""
    names = ", ".join(f"{d.field} {d.name!r}" for d in case.unknown_partners)
    return ScreenNotRun(
        spec_id,
        title,
        tuple(d.field for d in case.unknown_partners),
        f"{names} is not in the drug vocabulary, so whether {what} cannot be told",
    )


def _observation_limits(spec: ObservationLimitsScreen) -> ScreenFn:
    """Fires when one observation is beyond its limit, even with others missing; otherwise a
    missing one means the screen could not run. With `given_with`, only for that combination:
    a partner the vocabulary does not know leaves it unknown (not run)."""
    partners = _ingredients(spec.given_with)
    conditions = [(c, f"observations[{c.code}]", _shown(c.unit)) for c in spec.any]
    combination = " or ".join(spec.given_with)

    def beyond(condition: ObservationCondition, value: float) -> str | None:
        if condition.below is not None and value < condition.below:
            return f"below {number(condition.below)}"
        if condition.above is not None and value > condition.above:
            return f"above {number(condition.above)}"
        return None

    def run(case: _Case) -> ScreenResult:
        matched: tuple[_Drug, ...] = ()
        if partners:
            matched = _given_with(case, partners)
            if not matched:
                if case.unknown_partners:
                    what = f"the drug is given with {combination}"
                    return _unknown_partners(spec.id, spec.title, case, what)
                return None
        readings = [case.latest(c.code, c.unit) for c in spec.any]
        found: list[str] = []
        facts: dict[str, JsonScalar] = {}
        for (condition, field, unit), reading in zip(conditions, readings, strict=True):
            facts[field] = reading.value if reading is not None else None
            if reading is None:
                continue
            if reading.date is not None:
                facts[f"{field}.date"] = reading.date.isoformat()
            limit = beyond(condition, reading.value)
            if limit is not None:
                found.append(f"{condition.label} {number(reading.value)}{unit}, {limit}{unit}")
        if found:
            for drug in matched:
                facts[drug.field] = drug.name
            message = spec.message.format_map({"found": "; ".join(found)})
            return Alert(spec.id, spec.severity, message, spec.source, facts)
        missing = tuple(
            field for (_, field, _), r in zip(conditions, readings, strict=True) if r is None
        )
        if missing:
            labels = ", ".join(
                c.label for (c, _, _), r in zip(conditions, readings, strict=True) if r is None
            )
            return ScreenNotRun(spec.id, spec.title, missing, f"no value for {labels}")
        return None

    return run


def _observation_bands(spec: ObservationBandsScreen) -> ScreenFn:
    """The first band whose limits all hold sets the dose allowed. A band is passed over when a
    known value is above its limit. When values are missing, the bands the known values leave
    possible are weighed together: a dose above what every one of them allows is a finding
    now, a dose within what each allows passes, and only a dose in between waits for the
    missing values."""
    observations = list(spec.observations.items())
    units = {o.unit for o in spec.observations.values()}
    shared_unit = _shown(units.pop()) if len(units) == 1 else None
    avoided = _ingredients(spec.not_with)
    combination = " or ".join(spec.not_with)
    allows = {
        band.id: f"{number(band.dose_mg_per_m2)} mg/m2"
        + (
            f" to start, up to {number(band.dose_max_mg_per_m2)} mg/m2 in later cycles if tolerated"
            if band.dose_max_mg_per_m2 is not None
            else ""
        )
        for band in spec.bands
        if band.dose_mg_per_m2 is not None
    }

    def possible(readings: dict[str, Reading | None]) -> list[Band]:
        """The bands the known values leave possible, in order: from the first no known value
        rules out, to the first whose values are all known (it holds if reached)."""
        bands: list[Band] = []
        for band in spec.bands:
            if any(
                (reading := readings[key]) is not None and reading.value > limit
                for key, limit in band.at_most.items()
            ):
                continue
            bands.append(band)
            if all(readings[key] is not None for key in band.at_most):
                break
        return bands

    def allowed(band: Band, continuation: bool) -> float:
        if band.not_recommended:
            return 0.0
        assert band.dose_mg_per_m2 is not None
        if continuation and band.dose_max_mg_per_m2 is not None:
            return band.dose_max_mg_per_m2
        return band.dose_mg_per_m2

    def found(readings: dict[str, Reading | None]) -> str:
        def value(key: str, observation: BandObservation) -> str:
            reading = readings[key]
            text = "unknown" if reading is None else number(reading.value)
            return f"{observation.label} {text}" + ("" if shared_unit else _shown(observation.unit))

        return ", ".join(value(key, o) for key, o in observations) + (shared_unit or "")

    def alert(
        severity: Severity,
        template: str,
        bands: list[Band],
        readings: dict[str, Reading | None],
        case: _Case,
        most: float | None = None,
    ) -> Alert:
        facts: dict[str, JsonScalar] = {}
        for key, observation in observations:
            reading = readings[key]
            field = f"observations[{observation.code}]"
            facts[field] = reading.value if reading is not None else None
            if reading is not None and reading.date is not None:
                facts[f"{field}.date"] = reading.date.isoformat()
        if case.dose_mg_per_m2 is not None and most is not None:
            facts["dose_mg_per_m2"] = case.dose_mg_per_m2
        if len(bands) == 1:
            band_text, allowed_text = bands[0].text, allows.get(bands[0].id, "")
        else:
            band_text = "whichever of these applies: " + "; ".join(b.text for b in bands)
            allowed_text = f"at most {number(most or 0)} mg/m2 in any of them"
        message = template.format_map(
            {
                "found": found(readings),
                "band": band_text,
                "dose": case.dose_words(spec.per_days),
                "allowed": allowed_text,
            }
        )
        return Alert(spec.id, severity, message, spec.source, facts)

    def run(case: _Case) -> ScreenResult:
        if avoided and _given_with(case, avoided):
            return None  # another screen covers the drug given with these
        if case.unknown_partners:
            what = f"the drug is given with {combination}" if avoided else "the bands apply"
            return _unknown_partners(spec.id, spec.title, case, what)
        readings = {key: case.latest(o.code, o.unit) for key, o in observations}
        bands = possible(readings)
        missing = tuple(
            f"observations[{o.code}]" for key, o in observations if readings[key] is None
        )
        needed = ", ".join(o.label for key, o in observations if readings[key] is None)
        if len(bands) == 1 and bands[0].not_recommended:
            return alert(
                spec.not_recommended_severity, spec.not_recommended_message, bands, readings, case
            )
        if case.dose_mg_per_m2 is None:
            return ScreenNotRun(
                spec.id, spec.title, case.dose_fields, "the dose in mg/m2 is unknown"
            )
        continuation = case.request.type == "continuation"
        limits = [allowed(band, continuation) for band in bands]
        most, least = max(limits), min(limits)
        if case.above(most, spec.per_days):
            return alert(spec.severity, spec.message, bands, readings, case, most)
        if not case.above(least, spec.per_days) and (least > 0 or len(bands) == 1):
            return None
        reason = f"no value for {needed}"
        if len(missing) < len(observations):
            possible_ids = ", ".join(b.id for b in bands)
            reason += f": the known values leave the bands {possible_ids} possible"
        return ScreenNotRun(spec.id, spec.title, missing, reason)

    return run


def _allergy(spec: AllergyScreen, vocabulary: Vocabulary) -> ScreenFn:
    """An allergy whose name contains one of the substances, names a product of one of the
    classes (by the vocabulary) or has a listed RxNorm code, of a listed severity. No allergies
    listed: not run (none cannot be told from not asked)."""
    substances = tuple(name_key(s) for s in spec.substances)
    codes = frozenset(spec.rxnorm)
    classes = frozenset(spec.classes)
    severities = frozenset(spec.allergy_severity)
    not_given = ScreenNotRun(spec.id, spec.title, ("allergies",), "the request lists no allergies")

    def run(case: _Case) -> ScreenResult:
        allergies = case.request.allergies
        if not allergies:
            return not_given
        for i, allergy in enumerate(allergies):
            severity = allergy.severity or "unspecified"
            if severity not in severities:
                continue
            key = name_key(allergy.name)
            coded = allergy.system == "rxnorm" and allergy.code in codes
            named = any(s in key for s in substances)
            if not (coded or named) and classes:
                named = not classes.isdisjoint(vocabulary.identify(allergy.name).classes)
            if coded or named:
                facts: dict[str, JsonScalar] = {
                    f"allergies[{i}].name": allergy.name,
                    f"allergies[{i}].severity": allergy.severity,
                }
                if allergy.code is not None:
                    facts[f"allergies[{i}].code"] = allergy.code
                message = spec.message.format_map({"substance": allergy.name, "severity": severity})
                return Alert(spec.id, spec.severity, message, spec.source, facts)
        return None

    return run


def _attested(spec: AttestedScreen) -> ScreenFn:
    """A yes/no patient field: true fires, false passes, unknown does not run (except for a
    male patient, who is not asked about pregnancy or breastfeeding)."""
    read = attrgetter(spec.attested.removeprefix("patient."))
    message = spec.message.format_map({})
    unknown = ScreenNotRun(spec.id, spec.title, (spec.attested,), f"{spec.attested} is not given")

    def run(case: _Case) -> ScreenResult:
        patient = case.request.patient
        value = read(patient)
        if value is None:
            return None if patient.sex == "male" else unknown
        if not value:
            return None
        return Alert(spec.id, spec.severity, message, spec.source, {spec.attested: True})

    return run


def _interaction(spec: InteractionScreen, vocabulary: Vocabulary) -> ScreenFn:
    """A medication taken now or an agent given alongside of one of the classes, as the
    vocabulary knows it (by RxNorm code, then by the names in its text). Without any medication
    taken now the screen could not look at the patient's own list: not run, unless an agent
    given alongside is of the class; a medication the vocabulary does not know leaves the
    screen unable to vouch for it (not run, naming it)."""
    classes = frozenset(spec.classes)
    excepted = _ingredients(spec.except_ingredients)
    strengths = {c: vocabulary.classes()[c].strength for c in spec.classes}
    limit = spec.dose_above_mg_per_m2
    limit_text = "" if limit is None else f"{number(limit)} mg/m2"
    not_given = ScreenNotRun(
        spec.id, spec.title, ("medications",), "the request lists no medications taken now"
    )

    def run(case: _Case) -> ScreenResult:
        hits = [
            (drug, sorted(drug.identified.classes & classes))
            for drug in (*case.current, *case.partners)
            if not classes.isdisjoint(drug.identified.classes)
            and not (excepted and mentions(drug.name, drug.identified, excepted))
        ]
        if not hits:
            if case.unknown_current:
                names = ", ".join(f"{d.field} {d.name!r}" for d in case.unknown_current)
                return ScreenNotRun(
                    spec.id,
                    spec.title,
                    tuple(d.field for d in case.unknown_current),
                    f"{names} is not in the drug vocabulary, so it could not be checked",
                )
            return None if case.current else not_given
        facts: dict[str, JsonScalar] = {drug.field: drug.name for drug, _ in hits}
        found_strengths = [strengths[c] for _, ids in hits for c in ids if strengths[c]]
        values = {
            "drug": ", ".join(drug.name for drug, _ in hits),
            "strength": found_strengths[0] if found_strengths else "",
            "limit": limit_text,
            "dose": case.dose_words(spec.per_days),
        }
        if limit is None:
            return Alert(
                spec.id, spec.severity, spec.message.format_map(values), spec.source, facts
            )
        facts["dose_mg_per_m2"] = case.dose_mg_per_m2
        if case.dose_mg_per_m2 is not None and case.above(limit, spec.per_days):
            return Alert(
                spec.id, spec.severity, spec.message.format_map(values), spec.source, facts
            )
        assert spec.otherwise_severity is not None and spec.otherwise_message is not None
        message = spec.otherwise_message.format_map(values)
        return Alert(spec.id, spec.otherwise_severity, message, spec.source, facts)

    return run


def _condition(spec: ConditionScreen) -> ScreenFn:
    """The first ICD-10-CM condition matching the codes. No ICD-10-CM condition: not run."""
    codes = CodeSet(spec.codes)
    not_given = ScreenNotRun(
        spec.id, spec.title, ("conditions",), "the request lists no ICD-10-CM conditions"
    )

    def run(case: _Case) -> ScreenResult:
        coded = [
            (i, condition.code)
            for i, condition in enumerate(case.request.conditions)
            if condition.system == "icd-10-cm"
        ]
        if not coded:
            return not_given
        for i, code in coded:
            if not codes.matches(code):
                continue
            facts: dict[str, JsonScalar] = {f"conditions[{i}].code": code}
            limit = spec.dose_above_mg_per_kg
            if limit is None:
                message = spec.message.format_map({"code": code, "dose": ""})
                return Alert(spec.id, spec.severity, message, spec.source, facts)
            dose = case.dose_mg_per_kg
            facts["dose_mg_per_kg"] = dose
            values = {
                "code": code,
                "dose": "an unknown dose" if dose is None else f"{number(dose)} mg/kg",
            }
            if dose is not None and dose > limit + _EPSILON:
                message = spec.message.format_map(values)
                return Alert(spec.id, spec.severity, message, spec.source, facts)
            assert spec.otherwise_severity is not None and spec.otherwise_message is not None
            message = spec.otherwise_message.format_map(values)
            return Alert(spec.id, spec.otherwise_severity, message, spec.source, facts)
        return None

    return run


def _observation_result(spec: ObservationResultScreen) -> ScreenFn:
    """The latest result of the codes within the window, when it is one of the results."""
    codes = frozenset(spec.codes)
    results = frozenset(r.casefold() for r in spec.results)
    fields = tuple(f"observations[{code}]" for code in spec.codes)

    def run(case: _Case) -> ScreenResult:
        latest: tuple[dt.date, int, Observation] | None = None
        for index, observation in enumerate(case.request.observations):
            if observation.system != "loinc" or observation.code not in codes:
                continue
            date = observation.date
            if date is None or case.day is None:
                continue
            if not (0 <= (case.day - date).days <= spec.within_days):
                continue
            if latest is None or (date, index) > latest[:2]:
                latest = (date, index, observation)
        if latest is None:
            return ScreenNotRun(
                spec.id,
                spec.title,
                fields,
                f"no dated {spec.label} result in the {spec.within_days} days before the "
                "service date",
            )
        date, index, observation = latest
        value = observation.value
        if not isinstance(value, str) or value.casefold() not in results:
            return None
        found = f"{spec.label} {value} on {date.isoformat()}"
        facts: dict[str, JsonScalar] = {
            f"observations[{index}].value": value,
            f"observations[{index}].date": date.isoformat(),
        }
        return Alert(
            spec.id, spec.severity, spec.message.format_map({"found": found}), spec.source, facts
        )

    return run


def _compile(spec: Screen, vocabulary: Vocabulary) -> ScreenFn:
    """One screen of the data as a function of the request."""
    match spec:
        case ObservationLimitsScreen():
            return _observation_limits(spec)
        case ObservationBandsScreen():
            return _observation_bands(spec)
        case AllergyScreen():
            return _allergy(spec, vocabulary)
        case AttestedScreen():
            return _attested(spec)
        case InteractionScreen():
            return _interaction(spec, vocabulary)
        case ConditionScreen():
            return _condition(spec)
        case ObservationResultScreen():
            return _observation_result(spec)


def _unscreened(case: _Case) -> Alert:
    """The finding for a regimen whose partner the vocabulary does not know."""
    names = ", ".join(f"{d.name!r} ({d.field})" for d in case.unknown_partners)
    message = (
        f"Given with {names}, which the drug vocabulary does not know: the screens cannot tell "
        "what the combination is, so a pharmacist must check it before it is approved."
    )
    facts: dict[str, JsonScalar] = {d.field: d.name for d in case.unknown_partners}
    return Alert("partner-not-recognized", "review", message, _UNSCREENED_SOURCE, facts)


def check_classes(data: SafetyData, vocabulary: Vocabulary, source: str) -> None:
    """PolicyError (PS309) when a screen names a drug class the vocabulary does not have."""
    known = vocabulary.classes()
    issues: list[PolicyIssue] = []
    for i, screen in enumerate(data.screens):
        for j, class_id in enumerate(getattr(screen, "classes", ())):
            if class_id not in known:
                hint = did_you_mean(class_id, known) or f" (known: {', '.join(sorted(known))})"
                issues.append(
                    PolicyIssue(
                        "PS309",
                        "references",
                        f"screens[{i}].classes[{j}]",
                        None,
                        "error",
                        f"{class_id!r} is not a class of the drug vocabulary{hint}",
                    )
                )
    if issues:
        raise PolicyError(source, issues)


# Kleene logic over true / false / unknown (None).
def _all(values: list[bool | None]) -> bool | None:
    if False in values:
        return False
    return None if None in values else True


def _any(values: list[bool | None]) -> bool | None:
    if True in values:
        return True
    return None if None in values else False


_STATUS: dict[bool | None, Literal["met", "not-met", "unknown"]] = {
    True: "met",
    False: "not-met",
    None: "unknown",
}


def _windows(agent_class: AgentClass) -> Callable[[str | None], tuple[int, ...]]:
    """The windows (months) that apply to a therapy of the class in a setting: the setting's
    own, or every window the class gives when the setting is unknown or has none. A class
    without windows counts only progression on therapy (a window of 0)."""
    given: dict[str | None, int] = {str(k): v for k, v in agent_class.windows_months.items()}
    every = tuple(sorted(set(given.values()))) or (0,)

    def windows(setting: str | None) -> tuple[int, ...]:
        return (given[setting],) if setting in given else every

    return windows


class _LabelIndications:
    """The label's resistance rules prepared once: agent look-up, windows, indications."""

    def __init__(self, spec: Resistance) -> None:
        self._class_of = {
            name_key(agent): class_id
            for class_id, agent_class in spec.classes.items()
            for agent in agent_class.agents
        }
        self._names = _Names(self._class_of)
        self._windows = {class_id: _windows(c) for class_id, c in spec.classes.items()}
        self._classes = tuple(spec.classes)
        self._conditions = spec.conditions
        self._indications = [
            (indication, _ingredients(indication.given_with)) for indication in spec.indications
        ]
        # Each indication's check in each status, made once (the records are immutable).
        self._checks = {
            (indication.id, truth): LabelIndicationCheck(indication.id, indication.text, status)
            for indication in spec.indications
            for truth, status in _STATUS.items()
        }

    def _classify(self, agent: str) -> list[str]:
        """The classes of the agents named in a medication's name; a combination
        (`agent-a / agent-b + agent-c`) counts for each class among its agents."""
        found = self._names.found(name_key(agent))
        return sorted({self._class_of[name] for name in found})

    def evaluate(self, request: Request, partners: tuple[_Drug, ...]) -> LabelIndication:
        """The label indication for the request's medication history and the agents given
        alongside. A medication the patient could not take (outcome `contraindicated`) or has
        not started (status `intended`) is not judged for resistance."""
        findings: list[TherapyFinding] = []
        outcomes: set[tuple[str, str]] = set()
        for index, medication in enumerate(request.medications):
            if medication.name is None:
                continue
            for class_id in self._classify(medication.name):
                if medication.outcome is not None:
                    outcomes.add((class_id, medication.outcome))
                if medication.outcome == "contraindicated" or medication.status == "intended":
                    continue
                truth, detail = resistance(
                    medication.progressed_on_therapy,
                    medication.start_date,
                    medication.end_date,
                    medication.progression_date,
                    self._windows[class_id](medication.setting),
                )
                findings.append(
                    TherapyFinding(
                        index, medication.name, class_id, medication.setting, truth, detail
                    )
                )
        flags: dict[str, bool | None] = {}
        terms: dict[str, bool | None] = {}
        for class_id in self._classes:
            # Resistant when any therapy of the class failed; a class never given is unknown
            # (the history in a request may be incomplete).
            values = [f.resistant for f in findings if f.agent_class == class_id]
            terms[class_id] = flags[f"{class_id}_resistant"] = _any(values) if values else None
        for condition_id, condition in self._conditions.items():
            # Shown by a medication with the outcome; otherwise unknown, never false.
            terms[condition_id] = (
                True if (condition.agent_class, condition.outcome) in outcomes else None
            )
        checks: list[LabelIndicationCheck] = []
        requested: str | None = None
        fits: str | None = None
        for indication, agents in self._indications:
            truth = _any([_all([terms[term] for term in group]) for group in indication.any_of])
            checks.append(self._checks[indication.id, truth])
            if agents:
                matches = any(mentions(d.name, d.identified, agents) for d in partners)
            else:
                matches = not partners
            if requested is None and matches:
                requested = indication.id
                fits = indication.id if truth else None
        return LabelIndication(flags, requested, fits, tuple(checks), tuple(findings))


class _Receptors:
    """Receptor status from ICD-10-CM Z17.* conditions, and the guideline summary."""

    def __init__(self, spec: Guideline) -> None:
        self._codes = {code.replace(".", ""): found for code, found in spec.receptor_codes.items()}
        self._summary, self._source = spec.summary, spec.source

    def context(self, request: Request) -> GuidelineContext:
        """The receptor context of a request. Codes that disagree about one marker leave it
        unknown and are listed as a conflict."""
        seen: dict[str, list[tuple[str, str]]] = {}  # marker -> (status, where), in order
        for i, condition in enumerate(request.conditions):
            if condition.system != "icd-10-cm":
                continue
            code = self._codes.get(condition.code.replace(".", ""))
            if code is not None:
                seen.setdefault(code.marker, []).append(
                    (code.status, f"conditions[{i}]={condition.code}")
                )
        status: dict[str, tuple[str, str]] = {}  # marker -> (status, where)
        conflicts: list[str] = []
        for marker, found in seen.items():
            if len({s for s, _ in found}) > 1:
                says = ", yet ".join(f"{where} says {s}" for s, where in found)
                conflicts.append(f"{marker.upper()}: {says}")
            else:
                status[marker] = found[0]
        evidence: dict[str, str] = {}
        her2: str | None = None
        if "her2" in status:
            her2, evidence["her2"] = status["her2"]
        # Hormone receptor: positive when ER or PR is; negative when both are negative.
        hormone: str | None = None
        er, pr = status.get("er"), status.get("pr")
        positive = [s for s in (er, pr) if s is not None and s[0] == "positive"]
        if positive:
            hormone, evidence["hormone_receptor"] = "positive", positive[0][1]
        elif er is not None and pr is not None:
            hormone, evidence["hormone_receptor"] = "negative", f"{er[1]}, {pr[1]}"
        triple: bool | None = None
        if hormone == "positive" or her2 == "positive":
            triple = False
        elif hormone == "negative" and her2 == "negative":
            triple = True
        if triple is not None:
            evidence["triple_negative"] = "from the receptor status"
        return GuidelineContext(
            her2, hormone, triple, evidence, tuple(conflicts), self._summary, self._source
        )


class SafetyReviewer:
    """A policy's safety data compiled once; `review` screens one request.

    Without data (a policy that names none) no label screen runs, but the medications and
    partners the drug vocabulary does not know are still listed, and an unknown partner still
    holds the request. The vocabulary is the shipped one unless another is given.
    """

    def __init__(self, data: SafetyData | None, vocabulary: Vocabulary | None = None) -> None:
        self.data = data
        self._screens: tuple[ScreenFn, ...] = ()
        self._label: _LabelIndications | None = None
        self._receptors: _Receptors | None = None
        if vocabulary is None:
            from priorauth.catalog import default_vocabulary

            vocabulary = default_vocabulary()
        self._vocabulary = vocabulary
        if data is not None:
            check_classes(data, vocabulary, data.id)
            self._screens = tuple(_compile(spec, vocabulary) for spec in data.screens)
            if data.resistance is not None:
                self._label = _LabelIndications(data.resistance)
            if data.guideline is not None:
                self._receptors = _Receptors(data.guideline)

    def review(
        self,
        request: Request,
        dosing: DosingResult | None,
        bsa_m2: float | None,
        service_date: dt.date | None = None,
    ) -> Review:
        """Screen one request. `dosing` and `bsa_m2` are the dosing step's results (or None;
        without `bsa_m2`, dosing.bsa_m2). `service_date` decides which medications have ended;
        by default the service's start date, else the day the request was received.

        Alerts come most serious first, screens of one severity in the data file's order.
        """
        case = _Case(request, dosing, bsa_m2, service_date, self._vocabulary)
        alerts: list[Alert] = [_unscreened(case)] if case.unknown_partners else []
        not_run: list[ScreenNotRun] = []
        for screen in self._screens:
            result = screen(case)
            if isinstance(result, Alert):
                alerts.append(result)
            elif result is not None:
                not_run.append(result)
        alerts.sort(key=lambda alert: SEVERITY_ORDER[alert.severity])
        label = self._label.evaluate(request, case.partners) if self._label else None
        guideline = self._receptors.context(request) if self._receptors else None
        holds = bool(alerts) and alerts[0].severity in _HOLDING
        return Review(
            tuple(alerts),
            tuple(not_run),
            label,
            guideline,
            holds,
            case.unrecognized(),
            tuple(case.doubted.items()),
        )
