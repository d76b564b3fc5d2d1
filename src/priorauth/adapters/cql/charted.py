"""Defines read from the patient and the conditions: the age and the condition code sets."""

from __future__ import annotations

from priorauth.adapters.cql.elm import (
    Define,
    Elm,
    all_of,
    any_of,
    boolean,
    cql_list,
    exists,
    expression,
    function,
    if_,
    in_,
    is_null,
    known_systems,
    list_,
    not_,
    null,
    parameter,
    prop,
    query,
    quote,
    retrieve,
    string,
    uris,
)
from priorauth.adapters.fhir.codes import code_table
from priorauth.policy.model import ConditionFact

__all__ = [
    "AGE",
    "age",
    "age_define",
    "charted_conditions",
    "codings_define",
    "condition",
    "known_systems_define",
    "patient_define",
]

_SKIPPED_VERIFICATION = ("refuted", "entered-in-error")
# Where a code's bare form goes in the CQL text of a test (replaced once the test is written).
_CODE = "\x00code\x00"
# The internal define other defines read the age from.
AGE = "AgeInYears"


def patient_define() -> Define:
    return Define("Patient", "[Patient]", {"type": "SingletonFrom", "operand": retrieve("Patient")})


def known_systems_define() -> Define:
    """Every name of a code system priorauth knows (URIs and short names)."""
    return Define(
        "KnownSystems",
        cql_list(known_systems()),
        list_([string(s) for s in known_systems()]),
    )


def age_define(name: str = AGE) -> Define:
    """The age in whole years on the service date; null without a birth date or with one
    after the service date."""
    birth = prop("birthDate.value", source=expression("Patient"))
    service = parameter("ServiceDate")
    unknown = any_of([is_null(birth), {"type": "Greater", "operand": [birth, service]}])
    elm = if_(
        unknown,
        null(),
        {"type": "CalculateAgeAt", "precision": "Year", "operand": [birth, service]},
    )
    cql = (
        'if Patient.birthDate.value is null or Patient.birthDate.value > "ServiceDate" then null\n'
        '  else AgeInYearsAt("ServiceDate")'
    )
    return Define(name, cql, elm)


def age(name: str) -> Define:
    """An `age` fact in years: the age define under the fact's name."""
    return Define(name, f'"{AGE}"', expression(AGE))


def charted_conditions() -> Define:
    """The Conditions the FHIR mapping reads: not refuted nor entered in error, with a coding
    in a code system priorauth knows."""
    refuted = exists(
        query(
            prop("verificationStatus.coding", scope="C"),
            "V",
            in_(prop("code.value", scope="V"), list(_SKIPPED_VERIFICATION)),
        )
    )
    known = exists(
        query(
            prop("code.coding", scope="C"),
            "X",
            {
                "type": "In",
                "operand": [prop("system.value", scope="X"), expression("KnownSystems")],
            },
        )
    )
    cql = (
        "[Condition] C\n"
        "    where not exists (C.verificationStatus.coding V\n"
        f"      where V.code.value in {cql_list(list(_SKIPPED_VERIFICATION))})\n"
        '      and exists (C.code.coding X where X.system.value in "KnownSystems")'
    )
    return Define(
        "ChartedConditions", cql, query(retrieve("Condition"), "C", all_of([not_(refuted), known]))
    )


def _bare_code(scope: str) -> Elm:
    """The code of a coding without dots, in upper case."""
    return {
        "type": "Upper",
        "operand": {
            "type": "ReplaceMatches",
            "operand": [prop("code.value", scope=scope), string("\\."), string("")],
        },
    }


def _matches(patterns: list[str], scope: str) -> tuple[Elm, str]:
    bare = _bare_code(scope)
    exact = [p.replace(".", "") for p in patterns if not p.endswith("*")]
    stems = [p[:-1].replace(".", "") for p in patterns if p.endswith("*")]
    tests: list[Elm] = []
    words: list[str] = []
    if exact:
        tests.append(in_(bare, exact))
        words.append(f"{_CODE} in {cql_list(exact)}")
    for stem in stems:
        tests.append({"type": "StartsWith", "operand": [bare, string(stem)]})
        words.append(f"StartsWith({_CODE}, {quote(stem)})")
    return any_of(tests), " or ".join(words)


def codings_define() -> Define:
    """A Condition's codings: its code's, and its mCODE histology extension's (as the FHIR
    mapping reads them)."""
    condition_ = {"type": "OperandRef", "name": "C"}
    empty = list_([])
    url = code_table().extensions["histology"]
    histology = {
        "type": "Flatten",
        "operand": query(
            prop("extension", source=condition_),
            "E",
            {"type": "Equal", "operand": [prop("url.value", scope="E"), string(url)]},
            prop("valueCodeableConcept.coding", scope="E"),
        ),
    }
    elm: Elm = {
        "type": "Union",
        "operand": [
            {"type": "Coalesce", "operand": [prop("code.coding", source=condition_), empty]},
            {"type": "Coalesce", "operand": [histology, empty]},
        ],
    }
    cql = (
        "Coalesce(C.code.coding, {}) union Coalesce(Flatten(C.extension E\n"
        f"    where E.url.value = {quote(url)}\n"
        "    return E.valueCodeableConcept.coding), {})"
    )
    return Define("Codings", cql, elm, (("C", "Condition"),))


def condition(name: str, spec: ConditionFact) -> Define:
    """A `condition` fact (without statuses): true on a matching coding; when none matches,
    false if the policy says absence is false, else null; null with no Condition at all."""
    systems = uris(spec.system)
    matched, words = _matches(list(spec.codes), "X")
    test = all_of([in_(prop("system.value", scope="X"), systems), matched])
    cql_test = f"X.system.value in {cql_list(systems)} and ({words})"
    if spec.exclude:
        excluded, excluded_words = _matches(list(spec.exclude), "X")
        test = all_of([test, not_(excluded)])
        cql_test += f" and not ({excluded_words})"
    charted = expression("ChartedConditions")
    codings = function("Codings", {"type": "AliasRef", "name": "C"})
    found = exists(query(charted, "C", exists(query(codings, "X", test))))
    absent = boolean(False) if spec.absent == "false" else null()
    elm = if_(exists(charted), if_(found, boolean(True), absent), null())
    absent_word = "false" if spec.absent == "false" else "null"
    cql = (
        'if exists "ChartedConditions" then\n'
        '    if exists ("ChartedConditions" C where exists ("Codings"(C) X\n'
        "      where "
        + cql_test.replace(_CODE, "Upper(ReplaceMatches(X.code.value, '\\\\.', ''))")
        + "))\n"
        f"    then true else {absent_word}\n"
        "  else null"
    )
    return Define(name, cql, elm)
