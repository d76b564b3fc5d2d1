"""Fit a requested dose and schedule to the policy's regimens.

How a regimen is judged (docs/dosing.md says the same for users):

* **The dose.** Each dose is converted to the regimen's unit (mg, mg/m2 or mg/kg) with the
  body surface area (measured, or by the policy's formula from height and weight, rounded and
  capped as the policy says) or the body weight, rounded half-up to `rounding.dose_decimals`,
  and must not exceed the limit by more than `rounding.tolerance_percent`. A dose that cannot
  be converted for want of a body measure is unknown (a question), never a dose exception.
* **The schedule.** "N doses in each D-day cycle" means every window of D days holds at most N
  doses (not an average). Doses on given cycle days are placed exactly; N doses on unknown days
  of an L-day cycle fit when even the busiest placement fits, are outside when even the
  quietest does not, and are otherwise unknown (the cycle days are asked for). An induction
  must not come sooner than the regimen's (weeks 0, 2 and 6: no dose before day 14, 42), and
  maintenance doses no more often than the regimen's interval.
* **The route**, when the request gives one, must be one the regimen allows.
* **Which regimens apply**: a regimen with `when` applies only when that fact or criterion
  holds (and `unless`, when it does not); unknown applicability leaves the regimen unknown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from priorauth.clinical.schedules import dose_days, gaps, most_in_window, window_bounds
from priorauth.clinical.units import convert
from priorauth.engine import measures
from priorauth.engine.criteria import CriterionEvaluator, compile_criteria, unknown_leaves
from priorauth.engine.determination import (
    DosingResult,
    FactResult,
    Missing,
    RegimenCheck,
    RequestedRegimen,
)
from priorauth.engine.kleene import Truth, all_of, not_
from priorauth.engine.measures import round_half_up
from priorauth.engine.request import Request, Schedule
from priorauth.policy.model import CriterionSpec, Dosing, Regimen

__all__ = ["DosingEvaluator", "normalize_route"]

_ROUTES = {
    "iv": "intravenous",
    "intravenous": "intravenous",
    "intravenously": "intravenous",
    "sc": "subcutaneous",
    "subq": "subcutaneous",
    "sq": "subcutaneous",
    "subcutaneous": "subcutaneous",
    "subcutaneously": "subcutaneous",
    "im": "intramuscular",
    "intramuscular": "intramuscular",
    "po": "oral",
    "oral": "oral",
    "by mouth": "oral",
}


def normalize_route(route: str) -> str:
    """A route as the policies name it: `IV` -> `intravenous`, `SC` -> `subcutaneous`."""
    key = " ".join(route.casefold().replace("-", " ").split())
    return _ROUTES.get(key, key)


@dataclass(frozen=True)
class _Applicability:
    """A regimen's `when` and `unless`, compiled, with their words."""

    when: tuple[CriterionEvaluator, str] | None
    unless: tuple[CriterionEvaluator, str] | None

    def judge(self, facts: Mapping[str, FactResult]) -> tuple[Truth, list[str], list[str]]:
        """Whether the regimen applies; why not (or why that is not known), in words; and the
        facts left unknown."""
        truths: list[Truth] = []
        words: list[str] = []
        unknown: list[str] = []
        for part, negate in ((self.when, False), (self.unless, True)):
            if part is None:
                continue
            evaluate, text = part
            truth, node = evaluate(facts)
            applies = not_(truth) if negate else truth
            truths.append(applies)
            if applies is not True:
                words.append(f"not for {text}" if negate else f"only for {text}")
            unknown.extend(fact for _, fact in unknown_leaves(node))
        result = all_of(truths)
        if result is False:
            # Name only what rules the regimen out, not what is merely unknown beside it.
            words = [
                w
                for w, t in zip(words, [t for t in truths if t is not True], strict=True)
                if t is False
            ]
        return result, words, unknown


def _as_criterion(spec: str | CriterionSpec, regimen: Regimen, which: str) -> CriterionSpec:
    if isinstance(spec, CriterionSpec):
        return spec
    return CriterionSpec(id=f"{regimen.id}.{which}", text=f"{spec}", fact=spec)


class DosingEvaluator:
    """The policy's dosing section prepared once; `evaluate` fits one request's regimen."""

    def __init__(self, dosing: Dosing) -> None:
        self.dosing = dosing
        self._factor = 1.0 + dosing.rounding.tolerance_percent / 100.0
        self._regimens: list[tuple[Regimen, _Applicability]] = []
        # The routes each regimen allows, spelt as the requests' are read (`IV` is intravenous).
        self._routes = {
            r.id: {normalize_route(route) for route in r.route} for r in dosing.regimens
        }
        for regimen in dosing.regimens:
            when = unless = None
            if regimen.when is not None:
                spec = _as_criterion(regimen.when, regimen, "when")
                when = (compile_criteria(spec), spec.text)
            if regimen.unless is not None:
                spec = _as_criterion(regimen.unless, regimen, "unless")
                unless = (compile_criteria(spec), spec.text)
            self._regimens.append((regimen, _Applicability(when, unless)))

    def body_measures(
        self, request: Request, on: dt.date
    ) -> tuple[measures.Reading, measures.Reading]:
        """The body surface area (as the policy rounds and caps it) and the body weight."""
        bsa = self.dosing.body_surface_area
        return (
            measures.body_surface_area(request, on, bsa.formula, bsa.decimals, bsa.cap_m2),
            measures.body_weight(request, on),
        )

    def evaluate(
        self,
        request: Request,
        on: dt.date,
        facts: Mapping[str, FactResult],
        fact_questions: Mapping[str, Missing],
        allowed: list[str] | None = None,
    ) -> tuple[DosingResult, tuple[Missing, ...]]:
        """The dosing result and, when it is unknown, the questions that would settle it.
        `allowed` limits the regimens to those an indication lists."""
        service = request.service
        schedule = service.schedule
        bsa, weight = self.body_measures(request, on)
        requested = RequestedRegimen(
            dose=service.dose.value if service.dose else None,
            dose_unit=service.dose.unit if service.dose else None,
            cycle_length_days=schedule.cycle_length_days if schedule else None,
            doses_per_cycle=schedule.doses_in_cycle if schedule else None,
            cycle_days=schedule.cycle_days if schedule else None,
            induction_days=schedule.induction_days if schedule else None,
            interval_days=schedule.interval_days if schedule else None,
            interval_months=schedule.interval_months if schedule else None,
            route=service.route,
        )
        checks: list[RegimenCheck] = []
        questions: list[Missing] = []
        for regimen, applies in self._regimens:
            if allowed and regimen.id not in allowed:
                continue
            check, asked = self._check(regimen, applies, request, bsa, weight, facts)
            checks.append(check)
            for name in asked:
                question = _QUESTIONS.get(name)
                if question is None and name in fact_questions:
                    # A fact a regimen's when/unless reads: asked for the dosing.
                    fact = fact_questions[name]
                    question = Missing(fact.fact, fact.question, fact.fields, ("Dosing",))
                if question is not None and question not in questions:
                    questions.append(question)
        fitted = next((c.id for c in checks if c.status == "met"), None)
        status: Literal["within", "outside", "unknown"]
        if fitted is not None:
            status = "within"
        elif all(c.status == "not-met" for c in checks):
            status = "outside"
        else:
            status = "unknown"
        result = DosingResult(
            status=status,
            requested=requested,
            bsa_m2=bsa.value,
            bsa_source=_source(bsa, self.dosing.body_surface_area.formula),
            weight_kg=weight.value,
            weight_source=_source(weight, None),
            mg_per_dose=self._mg_per_dose(request, bsa.value, weight.value),
            regimen=fitted,
            checks=tuple(checks),
        )
        return result, (tuple(questions) if status == "unknown" else ())

    def _mg_per_dose(
        self, request: Request, bsa: float | None, weight: float | None
    ) -> float | None:
        dose = request.service.dose
        if dose is None:
            return None
        mass, _, per = dose.unit.partition("/")
        mg = convert(dose.value, mass, "mg")
        if per == "":
            return mg
        body = bsa if per == "m2" else weight
        return None if body is None else round_half_up(mg * body, 1)

    def convert(
        self, value: float, unit: str, target: str, bsa: float | None, weight: float | None
    ) -> float | None:
        """A dose in `unit` expressed in `target` (mg, mg/m2, mg/kg), rounded as the policy
        says when a body measure was used; None when the measure needed is unknown."""
        mass, _, per = unit.partition("/")
        target_per = target.partition("/")[2]
        mg = convert(value, mass, "mg")
        if per == target_per:
            return mg
        body = {"m2": bsa, "kg": weight, "": 1.0}
        if body[per] is None or body[target_per] is None:
            return None
        flat = mg * (body[per] or 1.0)
        return round_half_up(flat / (body[target_per] or 1.0), self.dosing.rounding.dose_decimals)

    def _check(
        self,
        regimen: Regimen,
        applies: _Applicability,
        request: Request,
        bsa: measures.Reading,
        weight: measures.Reading,
        facts: Mapping[str, FactResult],
    ) -> tuple[RegimenCheck, list[str]]:
        """One regimen against the request: its check and what would settle an unknown."""
        fails: list[str] = []
        unknown: list[str] = []
        asked: list[str] = []
        applicable, why, unsettled = applies.judge(facts)
        if applicable is False:
            fails.append(f"the regimen is {' and '.join(why)}")
        elif applicable is None:
            unknown.append(f"whether the regimen applies ({' and '.join(why)}) is not known")
            asked.extend(unsettled)
        service = request.service
        if (
            service.route is not None
            and normalize_route(service.route) not in self._routes[regimen.id]
        ):
            fails.append(f"route {service.route} is not {' or '.join(regimen.route)}")
        limit = regimen.dose
        dose_value: float | None = None
        if service.dose is None:
            unknown.append("the dose is not known")
            asked.append("service.dose")
        else:
            dose_value = self.convert(
                service.dose.value, service.dose.unit, limit.unit, bsa.value, weight.value
            )
            if dose_value is None:
                unknown.append(f"the dose in {limit.unit} cannot be worked out")
                asked.append("bsa" if "m2" in (service.dose.unit + limit.unit) else "weight")
                if (
                    "kg" in service.dose.unit + limit.unit
                    and "m2" in service.dose.unit + limit.unit
                ):
                    asked.append("weight")
            elif dose_value > limit.max * self._factor:
                fails.append(
                    f"each dose of {dose_value:g} {limit.unit} is above the limit of "
                    f"{limit.max:g} {limit.unit}"
                )
            schedule = service.schedule
            induction = regimen.induction
            if (
                induction is not None
                and induction.dose is not None
                and schedule is not None
                and schedule.induction_days
            ):
                first = self.convert(
                    service.dose.value,
                    service.dose.unit,
                    induction.dose.unit,
                    bsa.value,
                    weight.value,
                )
                if first is not None and first > induction.dose.max * self._factor:
                    fails.append(
                        f"each induction dose of {first:g} {induction.dose.unit} is above the "
                        f"limit of {induction.dose.max:g} {induction.dose.unit}"
                    )
        verdict, detail = _schedule_fit(regimen, service.schedule)
        if verdict is False:
            fails.append(detail)
        elif verdict is None:
            unknown.append(detail)
            asked.append("cycle_days" if "which days" in detail else "schedule")
        if fails:
            return RegimenCheck(
                regimen.id, regimen.text, "not-met", "; ".join(fails), dose_value, limit.unit
            ), []
        if unknown:
            return RegimenCheck(
                regimen.id, regimen.text, "unknown", "; ".join(unknown), dose_value, limit.unit
            ), asked
        dose_text = f"{dose_value:g} {limit.unit}" if dose_value is not None else "the dose"
        return (
            RegimenCheck(
                regimen.id,
                regimen.text,
                "met",
                f"{dose_text} within {limit.max:g} {limit.unit}; {detail}",
                dose_value,
                limit.unit,
            ),
            [],
        )


def _schedule_fit(regimen: Regimen, schedule: Schedule | None) -> tuple[Truth, str]:
    """Whether a requested schedule fits a regimen's, and why, in words."""
    if schedule is None or (
        schedule.cycle_length_days is None
        and schedule.interval is None
        and schedule.induction_days is None
    ):
        return None, "the schedule is not known"
    if regimen.cycle is not None:
        return _cycle_fit(regimen, schedule)
    return _interval_fit(regimen, schedule)


def _cycle_fit(regimen: Regimen, schedule: Schedule) -> tuple[Truth, str]:
    assert regimen.cycle is not None
    window, allowed = regimen.cycle.length_days, regimen.cycle.doses
    rule = f"at most {allowed} dose(s) in each {window}-day cycle"
    limit = f"the regimen allows {allowed} in each {window}-day cycle"
    length = schedule.cycle_length_days
    if schedule.cycle_days is not None and length is not None:
        days = dose_days(
            cycle_length=length, cycle_days=schedule.cycle_days, horizon=4 * max(length, window)
        )
        most = most_in_window(days, window)
        shown = f"days {', '.join(map(str, schedule.cycle_days))} of a {length}-day cycle"
    elif length is not None and schedule.doses_per_cycle is not None:
        least, most = window_bounds(schedule.doses_per_cycle, length, window)
        shown = f"{schedule.doses_per_cycle} dose(s) every {length} days"
        if least > allowed:
            return False, f"{shown} gives at least {least} doses in {window} days; {limit}"
        if most > allowed:
            return None, f"{shown}: which days of the cycle decides whether {rule} holds"
    elif schedule.interval is not None or schedule.induction_days is not None:
        days = dose_days(
            induction_days=schedule.induction_days,
            interval=schedule.interval,
            horizon=4 * max(window, schedule.interval or 1) + 400,
        )
        most = most_in_window(days, window)
        shown = _interval_words(schedule)
    else:
        return None, "the doses in each cycle are not known"
    if most > allowed:
        return False, f"{shown} gives {most} doses in {window} days; {limit}"
    return True, f"{shown}, {rule}"


def _interval_words(schedule: Schedule) -> str:
    parts = []
    if schedule.induction_days:
        parts.append(f"induction on days {', '.join(map(str, schedule.induction_days))}")
    then = "then every" if parts else "every"
    if schedule.interval_months:
        parts.append(f"{then} {schedule.interval_months} month(s)")
    elif schedule.interval_days:
        parts.append(f"{then} {schedule.interval_days} days")
    return " ".join(parts) or "the schedule"


def _interval_fit(regimen: Regimen, schedule: Schedule) -> tuple[Truth, str]:
    assert regimen.interval is not None
    minimum = regimen.interval.days
    months = regimen.interval.min_months
    rule = (
        f"no more often than every {months} month(s)"
        if months is not None
        else f"no more often than every {minimum} days"
    )
    induction = regimen.induction
    if schedule.induction_days:
        if induction is None:
            return False, "the regimen has no induction doses"
        wanted = [d - induction.on_days[0] for d in induction.on_days]
        given = [d - schedule.induction_days[0] for d in schedule.induction_days]
        if len(given) > len(wanted):
            return False, f"{len(given)} induction doses, more than the {len(wanted)} allowed"
        early = [g for g, w in zip(given, wanted, strict=False) if g < w]
        if early:
            return False, (
                f"induction on days {', '.join(map(str, given))} comes sooner than days "
                f"{', '.join(map(str, wanted))}"
            )
    if schedule.interval_months is not None and months is not None:
        # Both in calendar months: compared as months.
        if schedule.interval_months < months:
            return False, f"every {schedule.interval_months} month(s) is more often than {rule}"
        return True, f"{_interval_words(schedule)}, {rule}"
    if schedule.interval is not None:
        if schedule.interval < minimum:
            every = (
                f"{schedule.interval_months} month(s) (as few as {schedule.interval} days)"
                if schedule.interval_months is not None
                else f"{schedule.interval} days"
            )
            return False, f"every {every} is more often than {rule}"
        return True, f"{_interval_words(schedule)}, {rule}"
    length = schedule.cycle_length_days
    if length is not None:
        if schedule.cycle_days is not None:
            days = dose_days(
                cycle_length=length, cycle_days=schedule.cycle_days, horizon=3 * length
            )
            shortest = min(gaps(days), default=length)
        elif schedule.doses_per_cycle == 1:
            shortest = length
        elif schedule.doses_per_cycle is not None:
            if schedule.doses_per_cycle * minimum > length:
                doses = schedule.doses_per_cycle
                return False, f"{doses} doses every {length} days is more often than {rule}"
            return None, "which days of the cycle the doses fall on is not known"
        else:
            return None, "the doses in each cycle are not known"
        if shortest < minimum:
            return False, f"doses {shortest} days apart, more often than {rule}"
        return True, f"doses at least {shortest} days apart, {rule}"
    # An induction alone: the maintenance interval is for a later request.
    return True, f"{_interval_words(schedule)}, {rule}"


def _source(reading: measures.Reading, formula: str | None) -> str | None:
    if reading.value is None:
        return None
    fields = ", ".join(e.field for e in reading.evidence)
    if reading.note and formula and reading.note.startswith(formula):
        return f"{formula}({fields})"
    if reading.note and "capped" in reading.note:
        return f"{fields} ({reading.note})"
    return fields


_QUESTIONS: dict[str, Missing] = {
    "service.dose": Missing(
        fact="service.dose",
        question="What is each dose, with its unit (mg, mg/m2 or mg/kg)?",
        fields=("service.dose",),
        criteria=("Dosing",),
    ),
    "bsa": Missing(
        fact="body-surface-area",
        question="What are the patient's height and weight (or measured body surface area), "
        "to work out the dose per m2?",
        fields=("observations[8302-2]", "observations[29463-7]", "observations[8277-6]"),
        criteria=("Dosing",),
    ),
    "weight": Missing(
        fact="body-weight",
        question="What is the patient's body weight, to work out the dose per kg?",
        fields=("observations[29463-7]",),
        criteria=("Dosing",),
    ),
    "schedule": Missing(
        fact="service.schedule",
        question="How often is each dose given: how many doses in each cycle of how many days, "
        "or every how many days (after which induction doses)?",
        fields=("service.schedule",),
        criteria=("Dosing",),
    ),
    "cycle_days": Missing(
        fact="service.schedule.cycle_days",
        question="On which days of each cycle is a dose given?",
        fields=("service.schedule.cycle_days",),
        criteria=("Dosing",),
    ),
}
