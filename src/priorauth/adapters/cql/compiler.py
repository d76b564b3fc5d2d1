"""The compiler: a policy's facts -> CQL text and ELM JSON, one define per fact it expresses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from priorauth.adapters.fhir.codes import code_table
from priorauth.clinical.systems import URIS
from priorauth.policy.model import AgeFact, ConditionFact, ObservationFact, Policy

__all__ = ["CqlLibrary", "compile_policy"]

_FHIR = "{http://hl7.org/fhir}"
_SYSTEM = "{urn:hl7-org:elm-types:r1}"
_SKIPPED_VERIFICATION = ("refuted", "entered-in-error")

Elm = dict[str, Any]


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


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _string(value: str) -> Elm:
    return {"type": "Literal", "valueType": f"{_SYSTEM}String", "value": value}


def _boolean(value: bool) -> Elm:
    return {"type": "Literal", "valueType": f"{_SYSTEM}Boolean", "value": str(value).lower()}


def _integer(value: int) -> Elm:
    return {"type": "Literal", "valueType": f"{_SYSTEM}Integer", "value": str(value)}


def _null() -> Elm:
    return {"type": "Null"}


def _prop(path: str, source: Elm | None = None, scope: str | None = None) -> Elm:
    node: Elm = {"type": "Property", "path": path}
    if source is not None:
        node["source"] = source
    if scope is not None:
        node["scope"] = scope
    return node


def _list(values: list[Elm]) -> Elm:
    return {"type": "List", "element": values}


def _exists(operand: Elm) -> Elm:
    return {"type": "Exists", "operand": operand}


def _query(source: Elm, alias: str, where: Elm) -> Elm:
    return {
        "type": "Query",
        "source": [{"alias": alias, "expression": source}],
        "relationship": [],
        "where": where,
    }


def _or(items: list[Elm]) -> Elm:
    result = items[0]
    for item in items[1:]:
        result = {"type": "Or", "operand": [result, item]}
    return result


def _in(value: Elm, options: list[str]) -> Elm:
    return {"type": "In", "operand": [value, _list([_string(o) for o in options])]}


def _if(condition: Elm, then: Elm, otherwise: Elm) -> Elm:
    return {"type": "If", "condition": condition, "then": then, "else": otherwise}


def _uris(short: str) -> list[str]:
    """Every name of a code system the FHIR mapping reads: its URIs and its short name."""
    return sorted([short, *(uri for uri, name in URIS.items() if name == short)])


def _known_systems() -> list[str]:
    return sorted({*URIS, *URIS.values()})


def _cql_list(values: list[str]) -> str:
    return "{ " + ", ".join(_quote(v) for v in values) + " }"


@dataclass(frozen=True, slots=True)
class _Define:
    """One statement: its name, CQL text (after `define`), ELM expression, and for a function
    its operand (name, FHIR type)."""

    name: str
    cql: str
    elm: Elm
    operand: tuple[str, str] | None = None

    def statement(self) -> Elm:
        found: Elm = {
            "name": self.name,
            "context": "Patient",
            "accessLevel": "Public",
            "expression": self.elm,
        }
        if self.operand is not None:
            name, kind = self.operand
            found["type"] = "FunctionDef"
            found["operand"] = [
                {
                    "name": name,
                    "operandTypeSpecifier": {
                        "type": "NamedTypeSpecifier",
                        "name": f"{_FHIR}{kind}",
                    },
                }
            ]
        return found

    def text(self) -> str:
        if self.operand is not None:
            name, kind = self.operand
            return f'define function "{self.name}"({name} FHIR.{kind}):\n  {self.cql}\n'
        return f'define "{self.name}":\n  {self.cql}\n'


def _known_systems_define() -> _Define:
    """Every name of a code system priorauth knows (URIs and short names)."""
    return _Define(
        "KnownSystems",
        _cql_list(_known_systems()),
        _list([_string(s) for s in _known_systems()]),
    )


def _patient_define() -> _Define:
    retrieve: Elm = {
        "type": "Retrieve",
        "dataType": f"{_FHIR}Patient",
        "templateId": "http://hl7.org/fhir/StructureDefinition/Patient",
    }
    return _Define(
        "Patient",
        "[Patient]",
        {"type": "SingletonFrom", "operand": retrieve},
    )


def _charted_conditions() -> _Define:
    """The Conditions the FHIR mapping reads: not refuted nor entered in error, with a coding
    in a code system priorauth knows."""
    retrieve: Elm = {
        "type": "Retrieve",
        "dataType": f"{_FHIR}Condition",
        "templateId": "http://hl7.org/fhir/StructureDefinition/Condition",
    }
    refuted = _exists(
        _query(
            _prop("verificationStatus.coding", scope="C"),
            "V",
            _in(_prop("code.value", scope="V"), list(_SKIPPED_VERIFICATION)),
        )
    )
    known = _exists(
        _query(
            _prop("code.coding", scope="C"),
            "X",
            {
                "type": "In",
                "operand": [
                    _prop("system.value", scope="X"),
                    {"type": "ExpressionRef", "name": "KnownSystems"},
                ],
            },
        )
    )
    where: Elm = {"type": "And", "operand": [{"type": "Not", "operand": refuted}, known]}
    cql = (
        "[Condition] C\n"
        "    where not exists (C.verificationStatus.coding V\n"
        f"      where V.code.value in {_cql_list(list(_SKIPPED_VERIFICATION))})\n"
        '      and exists (C.code.coding X where X.system.value in "KnownSystems")'
    )
    return _Define("ChartedConditions", cql, _query(retrieve, "C", where))


def _bare_code(scope: str) -> Elm:
    """The code of a coding without dots, in upper case."""
    return {
        "type": "Upper",
        "operand": {
            "type": "ReplaceMatches",
            "operand": [_prop("code.value", scope=scope), _string("\\."), _string("")],
        },
    }


def _matches(patterns: list[str], scope: str) -> tuple[Elm, str]:
    bare = _bare_code(scope)
    exact = [p.replace(".", "") for p in patterns if not p.endswith("*")]
    stems = [p[:-1].replace(".", "") for p in patterns if p.endswith("*")]
    tests: list[Elm] = []
    words: list[str] = []
    if exact:
        tests.append(_in(bare, exact))
        words.append(f"Code in {_cql_list(exact)}")
    for stem in stems:
        tests.append({"type": "StartsWith", "operand": [bare, _string(stem)]})
        words.append(f"StartsWith(Code, {_quote(stem)})")
    return _or(tests), " or ".join(words)


def _codings_define() -> _Define:
    """A Condition's codings: its code's, and its mCODE histology extension's (as the FHIR
    mapping reads them)."""
    condition: Elm = {"type": "OperandRef", "name": "C"}
    empty = _list([])
    url = code_table().extensions["histology"]
    histology = {
        "type": "Flatten",
        "operand": {
            "type": "Query",
            "source": [{"alias": "E", "expression": _prop("extension", source=condition)}],
            "relationship": [],
            "where": {
                "type": "Equal",
                "operand": [_prop("url.value", scope="E"), _string(url)],
            },
            "return": {
                "distinct": False,
                "expression": _prop("valueCodeableConcept.coding", scope="E"),
            },
        },
    }
    elm: Elm = {
        "type": "Union",
        "operand": [
            {"type": "Coalesce", "operand": [_prop("code.coding", source=condition), empty]},
            {"type": "Coalesce", "operand": [histology, empty]},
        ],
    }
    cql = (
        "Coalesce(C.code.coding, {}) union Coalesce(Flatten(C.extension E\n"
        f"    where E.url.value = {_quote(url)}\n"
        "    return E.valueCodeableConcept.coding), {})"
    )
    return _Define("Codings", cql, elm, ("C", "Condition"))


def _condition(name: str, spec: ConditionFact) -> _Define:
    uris = _uris(spec.system)
    matched, words = _matches(list(spec.codes), "X")
    test = {"type": "And", "operand": [_in(_prop("system.value", scope="X"), uris), matched]}
    cql_test = f"X.system.value in {_cql_list(uris)} and ({words})"
    if spec.exclude:
        excluded, excluded_words = _matches(list(spec.exclude), "X")
        test = {"type": "And", "operand": [test, {"type": "Not", "operand": excluded}]}
        cql_test += f" and not ({excluded_words})"
    charted: Elm = {"type": "ExpressionRef", "name": "ChartedConditions"}
    codings: Elm = {
        "type": "FunctionRef",
        "name": "Codings",
        "operand": [{"type": "AliasRef", "name": "C"}],
    }
    found = _exists(_query(charted, "C", _exists(_query(codings, "X", test))))
    absent = _boolean(False) if spec.absent == "false" else _null()
    elm = _if(_exists(charted), _if(found, _boolean(True), absent), _null())
    absent_word = "false" if spec.absent == "false" else "null"
    cql = (
        'if exists "ChartedConditions" then\n'
        '    if exists ("ChartedConditions" C where exists ("Codings"(C) X\n'
        "      where "
        + cql_test.replace("Code", "Upper(ReplaceMatches(X.code.value, '\\\\.', ''))")
        + "))\n"
        f"    then true else {absent_word}\n"
        "  else null"
    )
    return _Define(name, cql, elm)


def _age(name: str) -> _Define:
    birth = _prop("birthDate.value", source={"type": "ExpressionRef", "name": "Patient"})
    service: Elm = {"type": "ParameterRef", "name": "ServiceDate"}
    unknown = _or(
        [{"type": "IsNull", "operand": birth}, {"type": "Greater", "operand": [birth, service]}]
    )
    elm = _if(
        unknown,
        _null(),
        {"type": "CalculateAgeAt", "precision": "Year", "operand": [birth, service]},
    )
    cql = (
        'if Patient.birthDate.value is null or Patient.birthDate.value > "ServiceDate" then null\n'
        '  else AgeInYearsAt("ServiceDate")'
    )
    return _Define(name, cql, elm)


# --- observations --------------------------------------------------------------------------

_SKIPPED_OBSERVATION = ("entered-in-error", "cancelled")
_VALUE_TEXT_MAX = 200
_MIN_DATE: Elm = {"type": "Date", "year": _integer(1), "month": _integer(1), "day": _integer(1)}


def _is(operand: Elm, fhir_type: str) -> Elm:
    return {
        "type": "Is",
        "operand": operand,
        "isTypeSpecifier": {"type": "NamedTypeSpecifier", "name": f"{_FHIR}{fhir_type}"},
    }


def _case(items: list[tuple[Elm, Elm]], otherwise: Elm) -> Elm:
    return {
        "type": "Case",
        "caseItem": [{"when": when, "then": then} for when, then in items],
        "else": otherwise,
    }


def _not_null(operand: Elm) -> Elm:
    return {"type": "Not", "operand": {"type": "IsNull", "operand": operand}}


def _date_from(operand: Elm) -> Elm:
    return {"type": "DateFrom", "operand": operand}


def _first(source: Elm) -> Elm:
    return {"type": "First", "source": source}


def _chosen_coding(observation: Elm) -> Elm:
    """The coding the FHIR mapping reads an observation by: its first LOINC coding with a
    code, else its first coding with a code in a known system."""

    def first_in(names: list[str]) -> Elm:
        return _first(
            _query(
                _prop("code.coding", source=observation),
                "X",
                {
                    "type": "And",
                    "operand": [
                        _in(_prop("system.value", scope="X"), names),
                        _not_null(_prop("code.value", scope="X")),
                    ],
                },
            )
        )

    return {"type": "Coalesce", "operand": [first_in(_uris("loinc")), first_in(_known_systems())]}


def _coded_word(coding: Elm) -> Elm:
    """A coded value as the mapping words it: a well-known result as its word, else its code."""
    system, code = _prop("system.value", source=coding), _prop("code.value", source=coding)
    items: list[tuple[Elm, Elm]] = []
    for uri, words in code_table().coded_words.items():
        for known, word in words.items():
            test = {
                "type": "And",
                "operand": [
                    {"type": "Equal", "operand": [system, _string(uri)]},
                    {"type": "Equal", "operand": [code, _string(known)]},
                ],
            }
            items.append((test, _string(word)))
    clipped: Elm = {
        "type": "Substring",
        "stringToSub": code,
        "startIndex": _integer(0),
        "length": _integer(_VALUE_TEXT_MAX),
    }
    return _case(items, clipped)


def _observation_records() -> _Define:
    """Each observation the mapping reads: its coding, date, value and whether the value is
    one the contract carries."""
    retrieve: Elm = {
        "type": "Retrieve",
        "dataType": f"{_FHIR}Observation",
        "templateId": "http://hl7.org/fhir/StructureDefinition/Observation",
    }
    o: Elm = {"type": "AliasRef", "name": "O"}
    value = _prop("value", scope="O")
    coded = _first(
        _query(_prop("value.coding", scope="O"), "V", _not_null(_prop("code.value", scope="V")))
    )
    readable = _case(
        [
            (
                _is(value, "Quantity"),
                {
                    "type": "And",
                    "operand": [
                        _not_null(_prop("value.value.value", scope="O")),
                        {"type": "IsNull", "operand": _prop("value.comparator.value", scope="O")},
                    ],
                },
            ),
            (_is(value, "CodeableConcept"), _not_null(coded)),
            (_is(value, "boolean"), _boolean(True)),
            (_is(value, "integer"), _boolean(True)),
            (
                _is(value, "string"),
                {
                    "type": "LessOrEqual",
                    "operand": [
                        {"type": "Length", "operand": _prop("value.value", scope="O")},
                        _integer(_VALUE_TEXT_MAX),
                    ],
                },
            ),
        ],
        _boolean(False),
    )
    reading = _case(
        [
            (_is(value, "Quantity"), _prop("value.value.value", scope="O")),
            (_is(value, "CodeableConcept"), _coded_word(coded)),
        ],
        _prop("value.value", scope="O"),
    )
    effective = _prop("effective", scope="O")
    date = _case(
        [
            (_is(effective, "dateTime"), _date_from(_prop("effective.value", scope="O"))),
            (
                {
                    "type": "And",
                    "operand": [
                        _is(effective, "Period"),
                        _not_null(_prop("effective.start.value", scope="O")),
                    ],
                },
                _date_from(_prop("effective.start.value", scope="O")),
            ),
            (_is(effective, "instant"), _date_from(_prop("effective.value", scope="O"))),
        ],
        _date_from(_prop("issued.value", scope="O")),
    )
    kept = {
        "type": "Not",
        "operand": _in(_prop("status.value", scope="O"), list(_SKIPPED_OBSERVATION)),
    }
    rows: Elm = {
        "type": "Query",
        "source": [{"alias": "O", "expression": retrieve}],
        "relationship": [],
        "where": kept,
        "return": {
            "distinct": False,
            "expression": {
                "type": "Tuple",
                "element": [
                    {"name": "coding", "value": _chosen_coding(o)},
                    {"name": "date", "value": date},
                    {"name": "value", "value": reading},
                    {"name": "readable", "value": readable},
                ],
            },
        },
    }
    where = {
        "type": "And",
        "operand": [
            _not_null(_prop("coding", scope="R")),
            {"type": "IsTrue", "operand": _prop("readable", scope="R")},
        ],
    }
    coded_text = "First(O.value.coding V where V.code.value is not null)"
    words = "\n".join(
        f"                    when {coded_text}.system.value = {_quote(uri)}"
        f" and {coded_text}.code.value = {_quote(known)} then {_quote(word)}"
        for uri, table in code_table().coded_words.items()
        for known, word in table.items()
    )
    cql = (
        "([Observation] O\n"
        f"    where not (O.status.value in {_cql_list(list(_SKIPPED_OBSERVATION))})\n"
        "    return Tuple {\n"
        "      coding: Coalesce(\n"
        f"        First(O.code.coding X where X.system.value in {_cql_list(_uris('loinc'))}\n"
        "          and X.code.value is not null),\n"
        '        First(O.code.coding X where X.system.value in "KnownSystems"\n'
        "          and X.code.value is not null)),\n"
        "      date: case when O.effective is FHIR.dateTime then date from O.effective.value\n"
        "            when O.effective is FHIR.Period and O.effective.start.value is not null\n"
        "              then date from O.effective.start.value\n"
        "            when O.effective is FHIR.instant then date from O.effective.value\n"
        "            else date from O.issued.value end,\n"
        "      value: case when O.value is FHIR.Quantity then O.value.value.value\n"
        "             when O.value is FHIR.CodeableConcept then (case\n"
        f"{words}\n"
        f"                    else Substring({coded_text}.code.value, 0, {_VALUE_TEXT_MAX}) end)\n"
        "             else O.value.value end,\n"
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
    return _Define("ObservationRecords", cql, _query(rows, "R", where))


def _observation(name: str, spec: ObservationFact) -> _Define:
    records: Elm = {"type": "ExpressionRef", "name": "ObservationRecords"}
    tests: list[Elm] = [
        _in(_prop("coding.system.value", scope="R"), _uris(spec.system)),
        _in(_prop("coding.code.value", scope="R"), list(spec.codes)),
    ]
    words = [
        f"R.coding.system.value in {_cql_list(_uris(spec.system))}",
        f"R.coding.code.value in {_cql_list(list(spec.codes))}",
    ]
    if spec.within_days is not None:
        since = {
            "type": "Subtract",
            "operand": [
                {"type": "ParameterRef", "name": "ServiceDate"},
                {"type": "Quantity", "value": spec.within_days, "unit": "day"},
            ],
        }
        tests.append(_not_null(_prop("date", scope="R")))
        tests.append({"type": "GreaterOrEqual", "operand": [_prop("date", scope="R"), since]})
        words.append(f'R.date >= "ServiceDate" - {spec.within_days} days')
    where = tests[0]
    for test in tests[1:]:
        where = {"type": "And", "operand": [where, test]}
    ordered: Elm = {
        "type": "Query",
        "source": [{"alias": "R", "expression": records}],
        "relationship": [],
        "where": where,
        "return": {
            "distinct": False,
            "expression": {
                "type": "Tuple",
                "element": [
                    {
                        "name": "key",
                        "value": {
                            "type": "Coalesce",
                            "operand": [_prop("date", scope="R"), _MIN_DATE],
                        },
                    },
                    {"name": "value", "value": _prop("value", scope="R")},
                ],
            },
        },
        "sort": {"by": [{"type": "ByColumn", "direction": "asc", "path": "key"}]},
    }
    elm = _prop("value", source={"type": "Last", "source": ordered})
    cql = (
        '(Last(("ObservationRecords" R\n'
        "      where " + "\n        and ".join(words) + "\n"
        "      return Tuple { key: Coalesce(R.date, @0001-01-01), value: R.value })\n"
        "    sort by key)).value"
    )
    return _Define(name, cql, elm)


def _library_name(policy: Policy) -> str:
    return "".join(part.title() for part in re.split(r"[^a-z0-9]+", policy.id)) + "Prepopulation"


def compile_policy(policy: Policy) -> CqlLibrary:
    """The library of one policy: a define per fact the chart can settle (named as the fact),
    the others listed as not compiled."""
    defines: list[_Define] = [
        _patient_define(),
        _known_systems_define(),
        _codings_define(),
        _charted_conditions(),
    ]
    names: dict[str, str] = {}
    skipped: list[str] = []
    for name, spec in policy.facts.items():
        if isinstance(spec, AgeFact) and spec.unit == "years":
            defines.append(_age(name))
        elif isinstance(spec, ConditionFact) and not spec.statuses:
            defines.append(_condition(name, spec))
        elif isinstance(spec, ObservationFact) and spec.unit is None:
            if not any(d.name == "ObservationRecords" for d in defines):
                defines.append(_observation_records())
            defines.append(_observation(name, spec))
        else:
            skipped.append(name)
            continue
        names[name] = name
    library = _library_name(policy)
    lines = [
        f"// Generated by priorauth from policy {policy.id} version {policy.version}.",
        f"library {library} version {_quote(policy.version)}",
        "",
        "using FHIR version '4.0.1'",
        "",
        'parameter "ServiceDate" Date',
        "",
        "context Patient",
        "",
    ]
    for define in defines:
        if define.name == "Patient":
            continue
        lines.append(define.text())
    if skipped:
        lines.append("// Not pre-filled by this library (asked on the form): " + ", ".join(skipped))
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
                        "name": "ServiceDate",
                        "accessLevel": "Public",
                        "parameterTypeSpecifier": {
                            "type": "NamedTypeSpecifier",
                            "name": f"{_SYSTEM}Date",
                        },
                    }
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
        json.dumps(elm, indent=1),
        names,
        tuple(skipped),
    )
