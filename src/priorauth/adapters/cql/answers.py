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
    Define,
    Elm,
    all_of,
    boolean,
    case,
    cql_list,
    equal,
    exists,
    expression,
    first,
    if_,
    integer,
    is_,
    is_null,
    list_,
    not_,
    not_null,
    null,
    prop,
    query,
    quote,
    retrieve,
    string,
)
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


def answered_items() -> Define:
    """Every item of every response not entered in error, nested ones to DEPTH levels."""
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
    levels = [top]
    for _ in range(DEPTH - 1):
        levels.append({"type": "Flatten", "operand": query(levels[-1], "I", None, _children("I"))})
    elm: Elm = {"type": "Flatten", "operand": list_(levels)}
    cql = (
        "Flatten({ Items0, Items1, ..., Items" + str(DEPTH - 1) + " })\n"
        "  // Items0: Flatten([QuestionnaireResponse] Q\n"
        "  //   where not (Q.status.value = 'entered-in-error') return Q.item)\n"
        "  // Items(n+1): Flatten(Items(n) I return Flatten({\n"
        "  //   Coalesce(Flatten(I.answer A return A.item), {}), Coalesce(I.item, {}) }))"
    )
    return Define(ITEMS, cql, elm)


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


def answer(name: str, spec: AnswerFact) -> Define:
    """An `answer` fact: the answer given to its question; null when none, or when responses
    disagree."""
    answered = query(
        expression(ITEMS),
        "I",
        all_of(
            [
                equal(prop("linkId.value", scope="I"), string(name)),
                exists(prop("answer", scope="I")),
            ]
        ),
        _value(first(prop("answer", scope="I"))),
    )
    values = query(answered, "V", not_null({"type": "AliasRef", "name": "V"}))
    keys = {
        "type": "Distinct",
        "operand": query(values, "V", None, _key({"type": "AliasRef", "name": "V"})),
    }
    agreed = if_(
        {"type": "Greater", "operand": [{"type": "Count", "source": keys}, integer(1)]},
        null(),
        first(values),
    )
    cql_value = "the first answer's value (see the library's comment)"
    cql = (
        f'("{ITEMS}" I where I.linkId.value = {quote(name)} and exists I.answer\n'
        f"    return {cql_value}) Values\n"
        "  // null when the values differ (yes/no and numbers compared as numbers)\n"
        "  if Count(distinct Keys(Values)) > 1 then null else First(Values)"
    )
    elm = agreed
    if spec.type == "choice":
        given = first(values)
        key: Elm = {
            "type": "Lower",
            "operand": {
                "type": "ReplaceMatches",
                "operand": [
                    {
                        "type": "ReplaceMatches",
                        "operand": [given, string("^\\s+|\\s+$"), string("")],
                    },
                    string("\\s+"),
                    string(" "),
                ],
            },
        }
        spelt = case(
            [(equal(key, string(name_key(c))), string(c)) for c in spec.choices],
            given,
        )
        string_type = {
            "type": "Is",
            "operand": given,
            "isTypeSpecifier": {
                "type": "NamedTypeSpecifier",
                "name": "{urn:hl7-org:elm-types:r1}String",
            },
        }
        elm = if_(
            {"type": "Greater", "operand": [{"type": "Count", "source": keys}, integer(1)]},
            null(),
            if_(string_type, spelt, given),
        )
        cql += (
            "\n  // a text answer spelt as the choice it names, case and spacing aside: "
            + cql_list(list(spec.choices))
        )
    return Define(name, cql, elm)
