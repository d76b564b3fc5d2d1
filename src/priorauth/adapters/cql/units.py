"""Library functions for text and UCUM units: trimming, a unit as the mapping reads it, and
conversion (`convert ... to`), each defined once and called by the defines that need it.

As clinical/units.py: a unit is its code (else its text), trimmed, with the common non-UCUM
spellings the mapping accepts (`mcg`, `lb`) mapped; a unit alone in braces (`{T-score}`) is no
unit. A value converts when cql-execution knows both units and they measure the same thing.
"""

from __future__ import annotations

from priorauth.adapters.cql.elm import (
    SYSTEM,
    Define,
    Elm,
    any_of,
    case,
    decimal,
    divide,
    equal,
    function,
    if_,
    is_null,
    multiply,
    null,
    operand,
    prop,
    quote,
    string,
)
from priorauth.clinical.units import _ALIASES, normalize_unit

__all__ = [
    "by_amount",
    "convert",
    "defines",
    "quantity_unit",
    "trimmed",
    "ucum_unit",
]

# cql-execution rounds a converted value to 8 decimals: converting 10^12 of the unit keeps a
# small factor's digits (0.67 U/L is 0.0111666667 ukat/L, not 0.01116667).
_SCALE = 1e12
_STRING, _DECIMAL = "System.String", "System.Decimal"


def trimmed(text: Elm) -> Elm:
    """Text without the spaces around it."""
    return function("Trim", text)


def ucum_unit(text: Elm) -> Elm:
    """clinical.units.normalize_unit: trimmed, a common non-UCUM spelling mapped."""
    return function("UcumUnit", text)


def quantity_unit(text: Elm) -> Elm:
    """A quantity's unit as the mapping reads it: null for none or a unit alone in braces."""
    return function("QuantityUnit", text)


def convert(number: Elm, unit: Elm, target: str | Elm) -> Elm:
    """`number` in `unit` expressed in `target` (UCUM); null when it cannot be."""
    goal = string(normalize_unit(target)) if isinstance(target, str) else target
    return function("ConvertTo", number, unit, goal)


def by_amount(number: Elm, unit: Elm, target: str, molar_mass: float) -> Elm:
    """A substance's value in `target`: converted, else from an amount (mmol/L) through its
    molar mass (clinical.observations.in_unit)."""
    return function(
        "ConvertByAmount", number, unit, string(normalize_unit(target)), decimal(molar_mass)
    )


def defines() -> list[Define]:
    s, n, u, t, m = (operand(x) for x in ("S", "N", "U", "T", "M"))
    trim = Define(
        "Trim",
        "ReplaceMatches(S, '^\\\\s+|\\\\s+$', '')",
        {"type": "ReplaceMatches", "operand": [s, string("^\\s+|\\s+$"), string("")]},
        (("S", _STRING),),
    )
    aliases = Define(
        "Aliased",
        "case "
        + " ".join(f"when S = {quote(a)} then {quote(b)}" for a, b in _ALIASES.items())
        + " else S end",
        case([(equal(s, string(a)), string(b)) for a, b in _ALIASES.items()], s),
        (("S", _STRING),),
    )
    ucum = Define(
        "UcumUnit", '"Aliased"("Trim"(S))', function("Aliased", trimmed(s)), (("S", _STRING),)
    )
    annotation: Elm = {"type": "Matches", "operand": [s, string("^\\{[^{}]*\\}$")]}
    of_quantity = Define(
        "QuantityUnit",
        "if S is null or Matches(S, '^\\\\{[^{}]*\\\\}$') then null else \"UcumUnit\"(S)",
        if_(any_of([is_null(s), {"type": "IsTrue", "operand": annotation}]), null(), ucum_unit(s)),
        (("S", _STRING),),
    )
    # A Quantity in a unit cql-execution does not know would stop the run: check it first.
    known: Elm = {
        "type": "IsTrue",
        "operand": {
            "type": "ConvertsToQuantity",
            "operand": {"type": "Concatenate", "operand": [string("1 '"), u, string("'")]},
        },
    }
    scaled: Elm = {
        "type": "Instance",
        "classType": f"{SYSTEM}Quantity",
        "element": [{"name": "value", "value": decimal(_SCALE)}, {"name": "unit", "value": u}],
    }
    factor = prop("value", source={"type": "ConvertQuantity", "operand": [scaled, t]})
    convert_to = Define(
        "ConvertTo",
        "if N is null or U is null then null\n"
        "    else if U = T then N\n"
        "    else if ConvertsToQuantity('1 \\'' + U + '\\'')\n"
        "      // 10^12 of the unit: cql-execution keeps 8 decimals of a converted value\n"
        "      then N * (convert Quantity { value: 1e12, unit: U } to T).value / 1e12\n"
        "    else null",
        if_(
            any_of([is_null(n), is_null(u)]),
            null(),
            if_(
                equal(u, t),
                n,
                if_(known, multiply(n, divide(factor, decimal(_SCALE))), null()),
            ),
        ),
        (("N", _DECIMAL), ("U", _STRING), ("T", _STRING)),
    )
    amount = Define(
        "ConvertByAmount",
        'Coalesce("ConvertTo"(N, U, T),\n'
        "    // mmol/L x g/mol = mg/L\n"
        "    \"ConvertTo\"(\"ConvertTo\"(N, U, 'mmol/L') * M, 'mg/L', T))",
        {
            "type": "Coalesce",
            "operand": [
                function("ConvertTo", n, u, t),
                function(
                    "ConvertTo",
                    multiply(function("ConvertTo", n, u, string("mmol/L")), m),
                    string("mg/L"),
                    t,
                ),
            ],
        },
        (("N", _DECIMAL), ("U", _STRING), ("T", _STRING), ("M", _DECIMAL)),
    )
    return [trim, aliases, ucum, of_quantity, convert_to, amount]
