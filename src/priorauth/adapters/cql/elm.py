"""ELM JSON node builders, and `Define`: one statement as CQL text and as ELM, built together.

Each builder returns the plain dict cql-execution reads (the JSON form of ELM r1). The CQL text
of a define is written beside its ELM by the same function (see the per-kind modules), so the
two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from priorauth.clinical.systems import URIS

__all__ = [
    "FHIR",
    "SYSTEM",
    "Define",
    "Elm",
    "add",
    "all_of",
    "any_of",
    "boolean",
    "case",
    "cql_list",
    "date_from",
    "decimal",
    "divide",
    "equal",
    "exists",
    "expression",
    "first",
    "function",
    "in_",
    "integer",
    "is_",
    "is_null",
    "known_systems",
    "list_",
    "multiply",
    "not_",
    "not_null",
    "null",
    "operand",
    "parameter",
    "prop",
    "query",
    "quote",
    "retrieve",
    "string",
    "subtract",
    "uris",
]

FHIR = "{http://hl7.org/fhir}"
SYSTEM = "{urn:hl7-org:elm-types:r1}"

Elm = dict[str, Any]


def quote(text: str) -> str:
    """A CQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cql_list(values: list[str]) -> str:
    return "{ " + ", ".join(quote(v) for v in values) + " }"


def string(value: str) -> Elm:
    return {"type": "Literal", "valueType": f"{SYSTEM}String", "value": value}


def boolean(value: bool) -> Elm:
    return {"type": "Literal", "valueType": f"{SYSTEM}Boolean", "value": str(value).lower()}


def integer(value: int) -> Elm:
    return {"type": "Literal", "valueType": f"{SYSTEM}Integer", "value": str(value)}


def decimal(value: float) -> Elm:
    return {"type": "Literal", "valueType": f"{SYSTEM}Decimal", "value": repr(float(value))}


def null() -> Elm:
    return {"type": "Null"}


def prop(path: str, source: Elm | None = None, scope: str | None = None) -> Elm:
    node: Elm = {"type": "Property", "path": path}
    if source is not None:
        node["source"] = source
    if scope is not None:
        node["scope"] = scope
    return node


def expression(name: str) -> Elm:
    """A reference to another define."""
    return {"type": "ExpressionRef", "name": name}


def parameter(name: str) -> Elm:
    return {"type": "ParameterRef", "name": name}


def operand(name: str) -> Elm:
    """A function's operand, by name."""
    return {"type": "OperandRef", "name": name}


def function(name: str, *operands: Elm) -> Elm:
    """A call of a function this library defines."""
    return {"type": "FunctionRef", "name": name, "operand": list(operands)}


def retrieve(resource: str) -> Elm:
    return {
        "type": "Retrieve",
        "dataType": f"{FHIR}{resource}",
        "templateId": f"http://hl7.org/fhir/StructureDefinition/{resource}",
    }


def list_(values: list[Elm]) -> Elm:
    return {"type": "List", "element": values}


def exists(value: Elm) -> Elm:
    return {"type": "Exists", "operand": value}


def first(source: Elm) -> Elm:
    return {"type": "First", "source": source}


def query(source: Elm, alias: str, where: Elm | None = None, result: Elm | None = None) -> Elm:
    node: Elm = {
        "type": "Query",
        "source": [{"alias": alias, "expression": source}],
        "relationship": [],
    }
    if where is not None:
        node["where"] = where
    if result is not None:
        node["return"] = {"distinct": False, "expression": result}
    return node


def _chain(kind: str, items: list[Elm]) -> Elm:
    result = items[0]
    for item in items[1:]:
        result = {"type": kind, "operand": [result, item]}
    return result


def any_of(items: list[Elm]) -> Elm:
    """`a or b or ...`"""
    return _chain("Or", items)


def all_of(items: list[Elm]) -> Elm:
    """`a and b and ...`"""
    return _chain("And", items)


def not_(value: Elm) -> Elm:
    return {"type": "Not", "operand": value}


def is_null(value: Elm) -> Elm:
    return {"type": "IsNull", "operand": value}


def not_null(value: Elm) -> Elm:
    return not_(is_null(value))


def equal(left: Elm, right: Elm) -> Elm:
    return {"type": "Equal", "operand": [left, right]}


def add(left: Elm, right: Elm) -> Elm:
    return {"type": "Add", "operand": [left, right]}


def subtract(left: Elm, right: Elm) -> Elm:
    return {"type": "Subtract", "operand": [left, right]}


def multiply(left: Elm, right: Elm) -> Elm:
    return {"type": "Multiply", "operand": [left, right]}


def divide(left: Elm, right: Elm) -> Elm:
    return {"type": "Divide", "operand": [left, right]}


def in_(value: Elm, options: list[str]) -> Elm:
    return {"type": "In", "operand": [value, list_([string(o) for o in options])]}


def if_(condition: Elm, then: Elm, otherwise: Elm) -> Elm:
    return {"type": "If", "condition": condition, "then": then, "else": otherwise}


def is_(value: Elm, fhir_type: str) -> Elm:
    """`value is FHIR.<type>`"""
    return {
        "type": "Is",
        "operand": value,
        "isTypeSpecifier": {"type": "NamedTypeSpecifier", "name": f"{FHIR}{fhir_type}"},
    }


def case(items: list[tuple[Elm, Elm]], otherwise: Elm) -> Elm:
    return {
        "type": "Case",
        "caseItem": [{"when": when, "then": then} for when, then in items],
        "else": otherwise,
    }


def date_from(value: Elm) -> Elm:
    return {"type": "DateFrom", "operand": value}


def uris(short: str) -> list[str]:
    """Every name of a code system the FHIR mapping reads: its URIs and its short name."""
    return sorted([short, *(uri for uri, name in URIS.items() if name == short)])


def known_systems() -> list[str]:
    return sorted({*URIS, *URIS.values()})


@dataclass(frozen=True, slots=True)
class Define:
    """One statement: its name, CQL text (after `define`), ELM expression, and for a function
    its operands (name, FHIR type; a type in `System.` is a CQL type)."""

    name: str
    cql: str
    elm: Elm
    operands: tuple[tuple[str, str], ...] = ()

    def statement(self) -> Elm:
        found: Elm = {
            "name": self.name,
            "context": "Patient",
            "accessLevel": "Public",
            "expression": self.elm,
        }
        if self.operands:
            found["type"] = "FunctionDef"
            found["operand"] = [
                {
                    "name": name,
                    "operandTypeSpecifier": {
                        "type": "NamedTypeSpecifier",
                        "name": _type_name(kind),
                    },
                }
                for name, kind in self.operands
            ]
        return found

    def text(self) -> str:
        if self.operands:
            given = ", ".join(f"{name} {_cql_type(kind)}" for name, kind in self.operands)
            return f'define function "{self.name}"({given}):\n  {self.cql}\n'
        return f'define "{self.name}":\n  {self.cql}\n'


def _type_name(kind: str) -> str:
    if kind.startswith("System."):
        return f"{SYSTEM}{kind.removeprefix('System.')}"
    return f"{FHIR}{kind}"


def _cql_type(kind: str) -> str:
    return kind.removeprefix("System.") if kind.startswith("System.") else f"FHIR.{kind}"
