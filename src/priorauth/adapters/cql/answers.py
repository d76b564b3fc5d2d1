"""Defines read from QuestionnaireResponses: the answer to a policy's question, by linkId.

As the FHIR mapping reads them (`adapters/fhir/mapping.py`, `_questionnaires`): every response
not entered in error, every item whose linkId is the question id and that has an answer, nested
items included (under an item and under an answer); the first answer of an item, as a yes/no,
a number, a full date (as `YYYY-MM-DD`), a coded answer (LOINC and HL7 yes/no codes as yes/no,
a well-known result as its word, else its code) or text (at most 500 characters). Responses
that answer one question differently leave it unknown. A `choice` answer is spelt as the
policy's choice it names, whatever its case and spacing.
"""

from __future__ import annotations

from priorauth.adapters.cql.elm import (
    SYSTEM,
    Define,
    Elm,
    all_of,
    boolean,
    case,
    equal,
    exists,
    expression,
    first,
    function,
    if_,
    integer,
    is_,
    is_null,
    list_,
    not_,
    not_null,
    null,
    operand,
    prop,
    query,
    quote,
    retrieve,
    string,
)
from priorauth.adapters.cql.units import trimmed
from priorauth.adapters.fhir.codes import code_table
from priorauth.engine.agents import name_key
from priorauth.policy.model import AnswerFact

__all__ = ["DEPTH", "ITEMS", "answer", "answered_items", "compilable"]

ITEMS = "AnsweredItems"
# How deep nested items are read (an item under an item, or under an answer, counts one level).
DEPTH = 6
_TEXT_MAX = 500


def compilable(name: str) -> bool:
    """Whether a question's answers reach the request's `answers` (the mapping reads a few
    linkIds, such as `pregnant`, into the patient instead)."""
    return name not in code_table().patient_answers


def _children(alias: str) -> Elm:
    """The items directly under an item: those under its answers, then its own."""
    under_answers = {
        "type": "Flatten",
        "operand": query(
            prop("answer", scope=alias),
            "A",
            not_null(prop("item", scope="A")),
            prop("item", scope="A"),
        ),
    }
    empty = list_([])
    return {
        "type": "Flatten",
        "operand": list_(
            [
                {"type": "Coalesce", "operand": [under_answers, empty]},
                {"type": "Coalesce", "operand": [prop("item", scope=alias), empty]},
            ]
        ),
    }


def answered_items() -> list[Define]:
    """Every item of every response not entered in error, nested ones to DEPTH levels: a
    define per level, and their union in order of level."""
    kept = not_(equal(prop("status.value", scope="Q"), string("entered-in-error")))
    top: Elm = {
        "type": "Flatten",
        "operand": query(
            retrieve("QuestionnaireResponse"),
            "Q",
            all_of([kept, not_null(prop("item", scope="Q"))]),
            prop("item", scope="Q"),
        ),
    }
    found = [
        Define(
            f"{ITEMS}0",
            "Flatten([QuestionnaireResponse] Q\n"
            "    where not (Q.status.value = 'entered-in-error') and Q.item is not null\n"
            "    return Q.item)",
            top,
        )
    ]
    for level in range(1, DEPTH):
        above = f"{ITEMS}{level - 1}"
        found.append(
            Define(
                f"{ITEMS}{level}",
                f'Flatten("{above}" I\n'
                "    return Flatten({ Coalesce(Flatten(I.answer A where A.item is not null\n"
                "      return A.item), {}), Coalesce(I.item, {}) }))",
                {"type": "Flatten", "operand": query(expression(above), "I", None, _children("I"))},
            )
        )
    names = [d.name for d in found]
    found.append(
        Define(
            ITEMS,
            "Flatten({ " + ", ".join(f'"{n}"' for n in names) + " })",
            {"type": "Flatten", "operand": list_([expression(n) for n in names])},
        )
    )
    return found


def _value(answer_: Elm) -> Elm:
    """An answer's value as the mapping reads it, or null."""
    value = prop("value", source=answer_)
    inner = prop("value.value", source=answer_)
    coding_system = prop("value.system.value", source=answer_)
    coding_code = prop("value.code.value", source=answer_)
    table = code_table()
    coded: list[tuple[Elm, Elm]] = []
    for system, codes in table.yes_no.items():
        for code, meaning in codes.items():
            test = all_of([equal(coding_system, string(system)), equal(coding_code, string(code))])
            coded.append((test, boolean(meaning)))
    for system, words in table.coded_words.items():
        for code, word in words.items():
            test = all_of([equal(coding_system, string(system)), equal(coding_code, string(code))])
            coded.append((test, string(word[:_TEXT_MAX])))

    def clipped(text: Elm) -> Elm:
        return {
            "type": "Substring",
            "stringToSub": text,
            "startIndex": integer(0),
            "length": integer(_TEXT_MAX),
        }

    def full_date(day: Elm) -> Elm:
        has_day = {"type": "DateTimeComponentFrom", "precision": "Day", "operand": day}
        return if_(is_null(has_day), null(), {"type": "ToString", "operand": day})

    return case(
        [
            (is_(value, "boolean"), inner),
            (is_(value, "decimal"), inner),
            (is_(value, "integer"), inner),
            (is_(value, "date"), full_date(inner)),
            (
                is_(value, "dateTime"),
                if_(
                    is_null(
                        {"type": "DateTimeComponentFrom", "precision": "Day", "operand": inner}
                    ),
                    null(),
                    {"type": "ToString", "operand": {"type": "DateFrom", "operand": inner}},
                ),
            ),
            (
                all_of([is_(value, "Coding"), not_null(coding_code)]),
                case(coded, clipped(coding_code)),
            ),
            (is_(value, "string"), clipped(inner)),
        ],
        null(),
    )


def _key(value: Elm) -> Elm:
    """What tells two answers apart as the mapping compares them (Python's ==): yes and no
    equal the numbers 1 and 0, an integer the same decimal; text and dates as written."""

    def number(x: Elm) -> Elm:
        return {
            "type": "Concatenate",
            "operand": [
                string("n:"),
                {"type": "ToString", "operand": {"type": "ToDecimal", "operand": x}},
            ],
        }

    system = "{urn:hl7-org:elm-types:r1}"

    def is_system(kind: str) -> Elm:
        return {
            "type": "Is",
            "operand": value,
            "isTypeSpecifier": {"type": "NamedTypeSpecifier", "name": f"{system}{kind}"},
        }

    return case(
        [
            (is_system("Boolean"), if_(value, string("n:1"), string("n:0"))),
            (is_system("Integer"), number(value)),
            (is_system("Decimal"), number(value)),
        ],
        {"type": "Concatenate", "operand": [string("s:"), value]},
    )


def functions() -> list[Define]:
    """`AnswerValue`(A): an answer's value as the mapping reads it; `AnswerKey`(V): what
    tells two values apart as the mapping compares them; `Given`(V): a value as the request
    contract keeps it (text without the spaces around it)."""
    a, v = operand("A"), operand("V")
    words = code_table()
    coded = " ".join(
        f"when A.value.system.value = {quote(system)} and A.value.code.value = {quote(code)}"
        f" then {str(meaning).lower()}"
        for system, codes in words.yes_no.items()
        for code, meaning in codes.items()
    )
    value_cql = (
        "case when A.value is FHIR.boolean or A.value is FHIR.decimal\n"
        "      or A.value is FHIR.integer then A.value.value\n"
        "    when A.value is FHIR.date then\n"
        "      if DateTimeComponentFrom(A.value.value, day) is null then null\n"
        "      else ToString(A.value.value)\n"
        "    when A.value is FHIR.dateTime then\n"
        "      if DateTimeComponentFrom(A.value.value, day) is null then null\n"
        "      else ToString(date from A.value.value)\n"
        "    when A.value is FHIR.Coding and A.value.code.value is not null then\n"
        f"      case {coded}\n"
        "        // and each well-known coded result as its word (as in ObservationRecords)\n"
        f"        else Substring(A.value.code.value, 0, {_TEXT_MAX}) end\n"
        f"    when A.value is FHIR.string then Substring(A.value.value, 0, {_TEXT_MAX})\n"
        "    else null end"
    )
    key_cql = (
        "case when V is Boolean then if V then 'n:1' else 'n:0'\n"
        "    when V is Integer or V is Decimal then 'n:' + ToString(ToDecimal(V))\n"
        "    else 's:' + V end"
    )
    given: Elm = if_(_is_system(v, "String"), trimmed(v), v)
    return [
        Define("AnswerValue", value_cql, _value(a), (("A", "QuestionnaireResponse.Item.Answer"),)),
        Define("AnswerKey", key_cql, _key(v), (("V", "System.Any"),)),
        Define("Given", 'if V is String then "Trim"(V) else V', given, (("V", "System.Any"),)),
    ]


def _is_system(value: Elm, kind: str) -> Elm:
    return {
        "type": "Is",
        "operand": value,
        "isTypeSpecifier": {"type": "NamedTypeSpecifier", "name": f"{SYSTEM}{kind}"},
    }


def answer(name: str, spec: AnswerFact) -> list[Define]:
    """An `answer` fact: the answer given to its question; null when none, or when responses
    disagree. Two defines: the values given, then the fact's."""
    given_name = f"{name} given"  # a space: no fact has one, so no clash
    answered = query(
        expression(ITEMS),
        "I",
        all_of(
            [
                equal(prop("linkId.value", scope="I"), string(name)),
                exists(prop("answer", scope="I")),
            ]
        ),
        function("AnswerValue", first(prop("answer", scope="I"))),
    )
    values = query(answered, "V", not_null({"type": "AliasRef", "name": "V"}))
    given_cql = (
        f'("{ITEMS}" I where I.linkId.value = {quote(name)} and exists I.answer\n'
        '    return "AnswerValue"(First(I.answer))) V\n'
        "  where V is not null"
    )
    found = expression(given_name)
    keys = {
        "type": "Distinct",
        "operand": query(
            found, "V", None, function("AnswerKey", {"type": "AliasRef", "name": "V"})
        ),
    }
    differ = {"type": "Greater", "operand": [{"type": "Count", "source": keys}, integer(1)]}
    chosen = function("Given", first(found))
    shown = f'"{given_name}"'
    value_cql = f'"Given"(First({shown}))'
    if spec.type == "choice":
        key: Elm = {
            "type": "Lower",
            "operand": {"type": "ReplaceMatches", "operand": [chosen, string("\\s+"), string(" ")]},
        }
        spelt = case([(equal(key, string(name_key(c))), string(c)) for c in spec.choices], chosen)
        chosen = if_(_is_system(chosen, "String"), spelt, chosen)
        value_cql = (
            f"case Lower(ReplaceMatches({value_cql}, '\\\\s+', ' '))\n"
            + "".join(f"      when {quote(name_key(c))} then {quote(c)}\n" for c in spec.choices)
            + f"      else {value_cql} end"
        )
    cql = f'if Count(distinct ({shown} V return "AnswerKey"(V))) > 1 then null\n  else {value_cql}'
    return [Define(given_name, given_cql, values), Define(name, cql, if_(differ, null(), chosen))]
