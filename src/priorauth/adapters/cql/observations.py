"""Defines read from the Observations: the records the FHIR mapping reads, the latest of a code
set, a value converted to a UCUM unit, and whether a value is plausible.

The records follow `adapters/fhir/mapping.py` (`_observations`), the latest value and the
plausibility `engine/measures.py` and `clinical/observations.py`, so each define gives what the
engine reads from the same Observations.
"""

from __future__ import annotations

from priorauth.adapters.cql.charted import AGE
from priorauth.adapters.cql.elm import (
    Define,
    Elm,
    all_of,
    any_of,
    boolean,
    case,
    cql_list,
    date_from,
    decimal,
    divide,
    equal,
    expression,
    first,
    if_,
    in_,
    integer,
    is_,
    is_null,
    known_systems,
    multiply,
    not_,
    not_null,
    null,
    parameter,
    prop,
    query,
    quote,
    retrieve,
    string,
    uris,
)
from priorauth.adapters.cql.units import convert, quantity_unit, trimmed, ucum_unit
from priorauth.adapters.fhir.codes import code_table
from priorauth.clinical.observations import ADULT_YEARS, PLAUSIBLE, PlausibleRange
from priorauth.clinical.units import normalize_unit

__all__ = [
    "RECORDS",
    "implausible",
    "latest",
    "multiple_of_uln",
    "observation_records",
    "unit_reading",
]

RECORDS = "ObservationRecords"
_SKIPPED_OBSERVATION = ("entered-in-error", "cancelled")
_VALUE_TEXT_MAX = 200


def _chosen_coding(observation: Elm) -> Elm:
    """The coding the FHIR mapping reads an observation by: its first LOINC coding with a
    code, else its first coding with a code in a known system."""

    def first_in(names: list[str]) -> Elm:
        return first(
            query(
                prop("code.coding", source=observation),
                "X",
                all_of(
                    [
                        in_(prop("system.value", scope="X"), names),
                        not_null(prop("code.value", scope="X")),
                    ]
                ),
            )
        )

    return {"type": "Coalesce", "operand": [first_in(uris("loinc")), first_in(known_systems())]}


def _coded_word(coding: Elm) -> Elm:
    """A coded value as the mapping words it: a well-known result as its word, else its code."""
    system, code = prop("system.value", source=coding), prop("code.value", source=coding)
    items: list[tuple[Elm, Elm]] = []
    for uri, words in code_table().coded_words.items():
        for known, word in words.items():
            test = all_of([equal(system, string(uri)), equal(code, string(known))])
            items.append((test, string(word)))
    clipped: Elm = {
        "type": "Substring",
        "stringToSub": code,
        "startIndex": integer(0),
        "length": integer(_VALUE_TEXT_MAX),
    }
    return case(items, clipped)


def _uln(number: Elm, unit: Elm) -> Elm:
    """The value as a multiple of the upper limit of normal, as the mapping reads it (`_uln`):
    over the first reference range whose upper limit is above 0 and is in the value's unit or
    converts to it (a unit alone `{...}`, or none, is the unit 1); null for a value below 0."""
    high = prop("high", scope="H")
    high_value = prop("value.value", source=high)
    text: Elm = {
        "type": "Coalesce",
        "operand": [prop("code.value", source=high), prop("unit.value", source=high)],
    }
    normalized = ucum_unit(text)
    high_unit = if_(equal(normalized, string("")), null(), normalized)
    one = string("1")
    limits = query(
        prop("referenceRange", scope="O"),
        "H",
        {"type": "Greater", "operand": [high_value, decimal(0)]},
        convert(
            high_value,
            {"type": "Coalesce", "operand": [high_unit, one]},
            {"type": "Coalesce", "operand": [unit, one]},
        ),
    )
    limit = first(query(limits, "L", not_null({"type": "AliasRef", "name": "L"})))
    ratio = {"type": "Round", "operand": divide(number, limit), "precision": integer(6)}
    return if_(
        all_of([{"type": "GreaterOrEqual", "operand": [number, decimal(0)]}, not_null(limit)]),
        ratio,
        null(),
    )


def observation_records() -> Define:
    """Each observation the mapping reads: its coding, date, value (as the mapping gives it),
    its number and UCUM unit when it is a quantity, and whether the value is one the contract
    carries."""
    o: Elm = {"type": "AliasRef", "name": "O"}
    value = prop("value", scope="O")
    coded = first(
        query(prop("value.coding", scope="O"), "V", not_null(prop("code.value", scope="V")))
    )
    readable = case(
        [
            (
                is_(value, "Quantity"),
                all_of(
                    [
                        not_null(prop("value.value.value", scope="O")),
                        is_null(prop("value.comparator.value", scope="O")),
                    ]
                ),
            ),
            (is_(value, "CodeableConcept"), not_null(coded)),
            (is_(value, "boolean"), boolean(True)),
            (is_(value, "integer"), boolean(True)),
            (
                is_(value, "string"),
                {
                    "type": "LessOrEqual",
                    "operand": [
                        {"type": "Length", "operand": prop("value.value", scope="O")},
                        integer(_VALUE_TEXT_MAX),
                    ],
                },
            ),
        ],
        boolean(False),
    )
    # The request contract strips text of the spaces around it.
    reading = case(
        [
            (is_(value, "Quantity"), prop("value.value.value", scope="O")),
            (is_(value, "CodeableConcept"), trimmed(_coded_word(coded))),
            (is_(value, "string"), trimmed(prop("value.value", scope="O"))),
        ],
        prop("value.value", scope="O"),
    )
    number = if_(is_(value, "Quantity"), prop("value.value.value", scope="O"), null())
    unit_text: Elm = {
        "type": "Coalesce",
        "operand": [prop("value.code.value", scope="O"), prop("value.unit.value", scope="O")],
    }
    unit = if_(is_(value, "Quantity"), quantity_unit(unit_text), null())
    uln = if_(is_(value, "Quantity"), _uln(prop("value.value.value", scope="O"), unit), null())
    effective = prop("effective", scope="O")
    date = case(
        [
            (is_(effective, "dateTime"), date_from(prop("effective.value", scope="O"))),
            (
                all_of(
                    [is_(effective, "Period"), not_null(prop("effective.start.value", scope="O"))]
                ),
                date_from(prop("effective.start.value", scope="O")),
            ),
            (is_(effective, "instant"), date_from(prop("effective.value", scope="O"))),
        ],
        date_from(prop("issued.value", scope="O")),
    )
    kept = not_(in_(prop("status.value", scope="O"), list(_SKIPPED_OBSERVATION)))
    rows = query(
        retrieve("Observation"),
        "O",
        kept,
        {
            "type": "Tuple",
            "element": [
                {"name": "coding", "value": _chosen_coding(o)},
                {"name": "date", "value": date},
                {"name": "value", "value": reading},
                {"name": "number", "value": number},
                {"name": "unit", "value": unit},
                {"name": "uln", "value": uln},
                {"name": "readable", "value": readable},
            ],
        },
    )
    where = all_of(
        [
            not_null(prop("coding", scope="R")),
            {"type": "IsTrue", "operand": prop("readable", scope="R")},
        ]
    )
    coded_text = "First(O.value.coding V where V.code.value is not null)"
    words = "\n".join(
        f"                    when {coded_text}.system.value = {quote(uri)}"
        f" and {coded_text}.code.value = {quote(known)} then {quote(word)}"
        for uri, table in code_table().coded_words.items()
        for known, word in table.items()
    )
    text = "Coalesce(O.value.code.value, O.value.unit.value)"
    cql = (
        "([Observation] O\n"
        f"    where not (O.status.value in {cql_list(list(_SKIPPED_OBSERVATION))})\n"
        "    return Tuple {\n"
        "      coding: Coalesce(\n"
        f"        First(O.code.coding X where X.system.value in {cql_list(uris('loinc'))}\n"
        "          and X.code.value is not null),\n"
        '        First(O.code.coding X where X.system.value in "KnownSystems"\n'
        "          and X.code.value is not null)),\n"
        "      date: case when O.effective is FHIR.dateTime then date from O.effective.value\n"
        "            when O.effective is FHIR.Period and O.effective.start.value is not null\n"
        "              then date from O.effective.start.value\n"
        "            when O.effective is FHIR.instant then date from O.effective.value\n"
        "            else date from O.issued.value end,\n"
        "      value: case when O.value is FHIR.Quantity then O.value.value.value\n"
        '             when O.value is FHIR.CodeableConcept then "Trim"(case\n'
        f"{words}\n"
        f"                    else Substring({coded_text}.code.value, 0, {_VALUE_TEXT_MAX}) end)\n"
        '             when O.value is FHIR.string then "Trim"(O.value.value)\n'
        "             else O.value.value end,\n"
        "      number: if O.value is FHIR.Quantity then O.value.value.value else null,\n"
        "      unit: if O.value is not FHIR.Quantity then null\n"
        f'        else "QuantityUnit"({text}),\n'
        "      uln: if O.value is not FHIR.Quantity or O.value.value.value < 0 then null\n"
        "        // over the first reference range's upper limit above 0 that is in the\n"
        "        // value's unit or converts to it (no unit, or one in braces: 1)\n"
        "        else Round(O.value.value.value / First((O.referenceRange H\n"
        "          where H.high.value.value > 0\n"
        '          return "ConvertTo"(H.high.value.value,\n'
        '            Coalesce(if "UcumUnit"(HighUnit) = \'\' then null else "UcumUnit"(HighUnit),\n'
        "              '1'),\n"
        f"            Coalesce(\"QuantityUnit\"({text}), '1'))) L\n"
        "          where L is not null), 6),\n"
        "          // HighUnit: Coalesce(H.high.code.value, H.high.unit.value)\n"
        "      readable: case\n"
        "        when O.value is FHIR.Quantity\n"
        "          then O.value.value.value is not null and O.value.comparator.value is null\n"
        f"        when O.value is FHIR.CodeableConcept then {coded_text} is not null\n"
        "        when O.value is FHIR.boolean then true\n"
        "        when O.value is FHIR.integer then true\n"
        f"        when O.value is FHIR.string then Length(O.value.value) <= {_VALUE_TEXT_MAX}\n"
        "        else false end\n"
        "    }) R\n"
        "  where R.coding is not null and R.readable is true"
    )
    return Define(RECORDS, cql, query(rows, "R", where))


def latest(name: str, codes: list[str], system: str, within_days: int | None) -> Define:
    """The latest record with one of `codes` (undated ones older than any dated one; among
    equals the later in the chart), dated within `within_days` before the service date when
    given; null when there is none."""
    tests: list[Elm] = [
        in_(prop("coding.system.value", scope="R"), uris(system)),
        in_(prop("coding.code.value", scope="R"), list(codes)),
    ]
    words = [
        f"R.coding.system.value in {cql_list(uris(system))}",
        f"R.coding.code.value in {cql_list(list(codes))}",
    ]
    if within_days is not None:
        since = {
            "type": "Subtract",
            "operand": [
                parameter("ServiceDate"),
                {"type": "Quantity", "value": within_days, "unit": "day"},
            ],
        }
        tests.append(not_null(prop("date", scope="R")))
        tests.append({"type": "GreaterOrEqual", "operand": [prop("date", scope="R"), since]})
        words.append(f'R.date >= "ServiceDate" - {within_days} days')
    # Not `sort by date`: cql-execution's sort puts one of two equal dates first at random
    # (it compares them with `<`); the last of the latest date's records, in the chart's order,
    # is the one the engine reads.
    found = query(expression(RECORDS), "R", all_of(tests))
    dates = query(found, "D", not_null(prop("date", scope="D")), prop("date", scope="D"))
    latest_date: Elm = {"type": "Max", "source": dates}
    on_latest = query(
        found, "R", {"type": "IsTrue", "operand": equal(prop("date", scope="R"), latest_date)}
    )
    elm = {"type": "Last", "source": if_(is_null(latest_date), found, on_latest)}
    cql = (
        f"Last(if Max(Found D where D.date is not null return D.date) is null then Found\n"
        "    else Found R where R.date = Max(Found D where D.date is not null return D.date))\n"
        f'  // Found: "{RECORDS}" R where ' + "\n  //   and ".join(words)
    )
    return Define(name, cql, elm)


def _in_row_unit(row: PlausibleRange, number: Elm, unit: Elm) -> Elm:
    """A value in the row's unit; a substance given by amount (mmol/L) through its molar
    mass; null when the unit is not one of the row's (clinical.observations._canonical)."""
    plain = convert(number, unit, row.unit)
    if row.molar_mass is None:
        return plain
    # mmol/L x g/mol = mg/L
    by_amount = convert(
        multiply(convert(number, unit, "mmol/L"), decimal(row.molar_mass)), string("mg/L"), row.unit
    )
    return {"type": "Coalesce", "operand": [plain, by_amount]}


def _outside(row: PlausibleRange, canonical: Elm) -> Elm:
    inside = all_of(
        [
            {"type": "LessOrEqual", "operand": [decimal(row.low), canonical]},
            {"type": "LessOrEqual", "operand": [canonical, decimal(row.high)]},
        ]
    )
    if row.zero:
        inside = any_of([inside, equal(canonical, decimal(0))])
    test = all_of([not_null(canonical), not_({"type": "IsTrue", "operand": inside})])
    if row.adults_only:
        age = expression(AGE)
        test = all_of(
            [
                not_null(age),
                {"type": "GreaterOrEqual", "operand": [age, integer(ADULT_YEARS)]},
                test,
            ]
        )
    return test


def implausible(record: Elm, codes: list[str]) -> tuple[Elm, str]:
    """Whether a record's value is implausible for its unit and the patient
    (clinical.observations.implausible), for the rows of `codes`; false when it cannot be
    judged (no number, no unit, a unit of another kind, an adult range and no adult)."""
    number, unit = prop("number", source=record), prop("unit", source=record)
    code = prop("coding.code.value", source=record)
    rows: list[PlausibleRange] = [r for r in PLAUSIBLE if set(r.codes) & set(codes)]
    if not rows:
        return boolean(False), "false"
    items: list[tuple[Elm, Elm]] = []
    words: list[str] = []
    for row in rows:
        shown = sorted(set(row.codes) & set(codes))
        items.append((in_(code, shown), _outside(row, _in_row_unit(row, number, unit))))
        if row.molar_mass is None:
            canonical = f'"ConvertTo"(R.number, R.unit, {quote(row.unit)})'
        else:
            canonical = (
                f'"ConvertByAmount"(R.number, R.unit, {quote(row.unit)}, {row.molar_mass!r})'
            )
        inside = f"{canonical} between {row.low!r} and {row.high!r}"
        if row.zero:
            inside = f"{inside} or {canonical} = 0"
        adult = (
            f'"{AGE}" is not null and "{AGE}" >= {ADULT_YEARS}\n          and '
            if row.adults_only
            else ""
        )
        words.append(
            f"when R.coding.code.value in {cql_list(shown)} then\n"
            f"          {adult}{canonical} is not null\n"
            f"          and not ({inside})"
        )
    loinc = in_(prop("coding.system.value", source=record), uris("loinc"))
    elm = if_(
        all_of([not_null(number), not_null(unit), loinc]),
        {"type": "IsTrue", "operand": case(items, boolean(False))},
        boolean(False),
    )
    cql = (
        "R.number is not null and R.unit is not null and R.coding.system.value in "
        f"{cql_list(uris('loinc'))}\n"
        "      and case " + "\n      ".join(words) + " else false end"
    )
    return elm, cql


def unit_reading(name: str, reading: str, codes: list[str], target: str) -> Define:
    """A number read in `target` from the latest record (the define `reading`): null when there
    is none, when it is implausible, not a number, without a unit, or in a unit of another
    kind."""
    record = expression(reading)
    doubt, doubt_cql = implausible(record, codes)
    number, unit = prop("number", source=record), prop("unit", source=record)
    elm = if_(
        any_of([is_null(record), {"type": "IsTrue", "operand": doubt}]),
        null(),
        convert(number, unit, target),
    )
    r = f'"{reading}"'
    cql = (
        f"if {r} is null or ({doubt_cql.replace('R.', r + '.')}) then null\n"
        f'  else "ConvertTo"({r}.number, {r}.unit, {quote(normalize_unit(target))})'
    )
    return Define(name, cql, elm)


def multiple_of_uln(name: str, reading: str) -> Define:
    """An observation read as a multiple of the upper limit of normal: the latest record's
    (`reading`), from its reference range; null without one (no plausibility check, as in the
    engine)."""
    return Define(name, f'"{reading}".uln', prop("uln", source=expression(reading)))
