"""Defines for the `measure` facts: body weight, body surface area, creatinine clearance.

The same steps as engine/measures.py: each input is the latest observation of its LOINC codes
(within the fact's `within_days`), null when implausible for its unit and the patient, in the
measure's unit (serum creatinine given by amount through its molar mass); a measured body
surface area or clearance comes first; the formulas are clinical/bsa.py's and
clinical/renal.py's, rounded half up as `round_half_up` does (with its 1e-9 nudge).
"""

from __future__ import annotations

from priorauth.adapters.cql.charted import AGE
from priorauth.adapters.cql.elm import (
    Define,
    Elm,
    add,
    any_of,
    decimal,
    divide,
    expression,
    if_,
    in_,
    integer,
    is_null,
    multiply,
    null,
    prop,
    quote,
    subtract,
)
from priorauth.adapters.cql.observations import implausible, latest
from priorauth.adapters.cql.units import by_amount, convert
from priorauth.clinical.observations import BSA, CRCL, CREATININE, HEIGHT, KNOWN, WEIGHT, Measure
from priorauth.policy.model import MeasureFact

__all__ = ["measure"]


def _codes(measure: Measure) -> list[str]:
    return sorted(code for code, known in KNOWN.items() if known == measure)


def _label(measure: Measure, within_days: int | None) -> str:
    words = measure.name.title().replace(" ", "")
    return f"Latest{words}" + (f"Within{within_days}Days" if within_days is not None else "")


def _reading(measure: Measure, within_days: int | None) -> tuple[list[Define], str]:
    """The defines of one input: its latest record, and its value in the measure's unit."""
    codes = _codes(measure)
    record_name = _label(measure, within_days)
    name = record_name.replace("Latest", "", 1) + "Value"
    record = expression(record_name)
    doubt, doubt_cql = implausible(record, codes)
    number, unit = prop("number", source=record), prop("unit", source=record)
    r = f'"{record_name}"'
    target = quote(measure.unit)
    if measure.molar_mass is None:
        value = convert(number, unit, measure.unit)
        converted = f'"ConvertTo"({r}.number, {r}.unit, {target})'
    else:
        value = by_amount(number, unit, measure.unit, measure.molar_mass)
        converted = f'"ConvertByAmount"({r}.number, {r}.unit, {target}, {measure.molar_mass!r})'
    elm = if_(any_of([is_null(record), {"type": "IsTrue", "operand": doubt}]), null(), value)
    cql = f"if {r} is null or ({doubt_cql.replace('R.', r + '.')}) then null\n  else {converted}"
    return [latest(record_name, codes, "loinc", within_days), Define(name, cql, elm)], name


# round_half_up in CQL (the 1e-9 keeps a decimal half that a double stores a hair low).
_ROUND_CQL = "Floor({value} * {d} + 0.5 + 1e-9) / {d}"


def _round(value: Elm, decimals: int) -> Elm:
    """round_half_up: Floor(value x 10^d + 0.5 + 1e-9) / 10^d."""
    factor = decimal(10.0**decimals)
    shifted = add(add(multiply(value, factor), decimal(0.5)), decimal(1e-9))
    return divide({"type": "Floor", "operand": shifted}, factor)


def _power(base: Elm, exponent: Elm) -> Elm:
    return {"type": "Power", "operand": [base, exponent]}


def _bsa_formula(formula: str, h: Elm, w: Elm) -> tuple[Elm, str]:
    """A clinical/bsa.py formula over the height (cm) and weight (kg) defines, as ELM and
    CQL (the operations in the same order, so the doubles agree)."""
    height, weight = f'"{h["name"]}"', f'"{w["name"]}"'
    if formula == "mosteller":
        elm = _power(divide(multiply(h, w), decimal(3600.0)), decimal(0.5))
        return elm, f"Power({height} * {weight} / 3600.0, 0.5)"
    if formula == "boyd":
        grams = multiply(w, decimal(1000.0))
        log10 = {"type": "Log", "operand": [grams, decimal(10.0)]}
        exponent = subtract(decimal(0.7285), multiply(decimal(0.0188), log10))
        elm = multiply(
            multiply(decimal(0.0003207), _power(h, decimal(0.3))), _power(grams, exponent)
        )
        g = f"({weight} * 1000.0)"
        return elm, f"0.0003207 * Power({height}, 0.3) * Power({g}, 0.7285 - 0.0188 * Log({g}, 10))"
    constants = {
        "dubois": (0.007184, 0.725, 0.425),
        "haycock": (0.024265, 0.3964, 0.5378),
        "gehan-george": (0.0235, 0.42246, 0.51456),
    }
    k, a, b = constants[formula]
    elm = multiply(multiply(decimal(k), _power(h, decimal(a))), _power(w, decimal(b)))
    return elm, f"{k} * Power({height}, {a}) * Power({weight}, {b})"


def measure(name: str, spec: MeasureFact) -> list[Define]:
    """The defines of a `measure` fact, the fact's own last."""
    within = spec.within_days
    defines: list[Define] = []

    def reading(of: Measure) -> Elm:
        found, value_name = _reading(of, within)
        for define in found:
            if define.name not in {d.name for d in defines}:
                defines.append(define)
        return expression(value_name)

    if spec.function == "body-weight":
        weight = reading(WEIGHT)
        defines.append(Define(name, f'"{weight["name"]}"', weight))
        return defines
    if spec.function == "body-surface-area":
        measured = reading(BSA)
        h, w = reading(HEIGHT), reading(WEIGHT)
        computed, formula_cql = _bsa_formula(spec.formula, h, w)
        value = if_(
            is_null(measured),
            if_(any_of([is_null(h), is_null(w)]), null(), _round(computed, 2)),
            _round(measured, 2),
        )
        bsa = f'"{measured["name"]}"'
        cql = (
            f"if {bsa} is not null then {_ROUND_CQL.format(value=bsa, d=100)}\n"
            f'    else if "{h["name"]}" is null or "{w["name"]}" is null then null\n'
            f"    // {spec.formula}:\n"
            f"    else {_ROUND_CQL.format(value=formula_cql, d=100)}"
        )
        if spec.cap_m2 is not None:
            cap = decimal(spec.cap_m2)
            value = if_({"type": "Greater", "operand": [value, cap]}, cap, value)
            cql = f"if ({cql}) > {spec.cap_m2!r}\n  then {spec.cap_m2!r}\n  else ({cql})"
        defines.append(Define(name, cql, value))
        return defines
    measured = reading(CRCL)
    creatinine, weight = reading(CREATININE), reading(WEIGHT)
    patient = expression("Patient")
    sex = prop("gender.value", source=patient)
    age = expression(AGE)
    clearance = divide(
        multiply(subtract(integer(140), age), weight), multiply(integer(72), creatinine)
    )
    female = {
        "type": "Equal",
        "operand": [
            sex,
            {"type": "Literal", "valueType": "{urn:hl7-org:elm-types:r1}String", "value": "female"},
        ],
    }
    estimated = if_(
        any_of(
            [
                is_null(creatinine),
                is_null(weight),
                is_null(age),
                {"type": "Not", "operand": in_(sex, ["female", "male"])},
                {"type": "LessOrEqual", "operand": [creatinine, decimal(0)]},
            ]
        ),
        null(),
        _round(if_(female, multiply(clearance, decimal(0.85)), clearance), 1),
    )
    value = if_(is_null(measured), estimated, measured)
    estimate = (
        f'(140 - "{AGE}") * "{weight["name"]}" / (72 * "{creatinine["name"]}")'
        " * (if Patient.gender.value = 'female' then 0.85 else 1.0)"
    )
    cql = (
        f'Coalesce("{measured["name"]}",\n'
        "    // Cockcroft-Gault, with the actual body weight; null without an age, a weight,\n"
        "    // a serum creatinine above 0, or a sex (female, male):\n"
        f"    {_ROUND_CQL.format(value=estimate, d=10)})"
    )
    defines.append(Define(name, cql, value))
    return defines
