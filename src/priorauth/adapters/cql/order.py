"""Defines read from the order: the MedicationRequest named by the `OrderId` parameter, and the
`product` fact over its medication's codes.

The engine reads a requested product's codings as the FHIR mapping does (a known code system,
by URI or short name in any case; a CPT coding of a HCPCS level II code read as HCPCS; an NDC in
5-4-2 form, a code in upper case) and matches them to the policy's keys (`engine.products`).
The library matches the same keys, computed here from the policy by the engine's own function.
What it does not read is left null, never guessed: a medication given as a reference (the
library resolves no reference), an NDC it cannot put in 5-4-2 form (the engine refuses it), an
order without a coding in a known system.
"""

from __future__ import annotations

from priorauth.adapters.cql.elm import (
    FHIR,
    Define,
    Elm,
    all_of,
    any_of,
    boolean,
    case,
    cql_list,
    equal,
    exists,
    expression,
    function,
    if_,
    in_,
    integer,
    is_null,
    not_,
    null,
    operand,
    parameter,
    prop,
    query,
    quote,
    retrieve,
    string,
)
from priorauth.clinical.systems import SYSTEMS, URIS
from priorauth.engine.facts import product_keys
from priorauth.policy.model import Policy, ProductFact

__all__ = ["ORDER_ID", "compilable", "functions", "order_define", "product"]

# The parameter the caller sets: the id of the MedicationRequest that is the order.
ORDER_ID = "OrderId"
# Where the FHIR mapping reads a CPT coding as HCPCS (`_HCPCS_LEVEL_II` there).
_HCPCS_LEVEL_II = "[A-Za-z][0-9]{4}"
# The key systems whose request codes are kept as given or in upper case (icd-10-cm codes are
# re-dotted by the request model: not expressed).
_PLAIN = frozenset(SYSTEMS) - {"icd-10-cm", "ndc"}


def compilable(spec: ProductFact, policy: Policy) -> bool:
    """Whether every key the policy lists is one the library matches exactly."""
    return all(
        system in _PLAIN or system in ("ndc", "ndc-product")
        for system, _ in product_keys(spec, policy)
    )


def order_define() -> Define:
    """The order: the MedicationRequest whose id is the parameter (null when none is)."""
    elm: Elm = {
        "type": "SingletonFrom",
        "operand": query(
            retrieve("MedicationRequest"),
            "M",
            equal(prop("id.value", scope="M"), parameter(ORDER_ID)),
        ),
    }
    cql = f'singleton from ([MedicationRequest] M where M.id.value = "{ORDER_ID}")'
    return Define("Order", cql, elm)


def _codings_define() -> Define:
    """The order medication's codings that have a code (none for a medication reference)."""
    concept: Elm = {
        "type": "As",
        "operand": prop("medication", source=expression("Order")),
        "asTypeSpecifier": {"type": "NamedTypeSpecifier", "name": f"{FHIR}CodeableConcept"},
    }
    elm = query(
        {"type": "Coalesce", "operand": [prop("coding", source=concept), {"type": "List"}]},
        "X",
        {"type": "Not", "operand": is_null(prop("code.value", scope="X"))},
    )
    cql = (
        'Coalesce(("Order".medication as FHIR.CodeableConcept).coding, {}) X\n'
        "    where X.code.value is not null"
    )
    return Define("OrderCodings", cql, elm)


def _ndc_function() -> Define:
    """An NDC in 5-4-2 form from the 11-digit or a hyphenated 10-digit form; null otherwise
    (`clinical.codes.normalize_ndc`, ASCII digits only)."""
    code = operand("code")

    def matches(pattern: str) -> Elm:
        return {"type": "Matches", "operand": [code, string(pattern)]}

    def sub(start: int, length: int | None = None) -> Elm:
        node: Elm = {"type": "Substring", "stringToSub": code, "startIndex": integer(start)}
        if length is not None:
            node["length"] = integer(length)
        return node

    def concat(*parts: Elm) -> Elm:
        return {"type": "Concatenate", "operand": list(parts)}

    dash, zero = string("-"), string("0")
    elm = case(
        [
            (matches("[0-9]{11}"), concat(sub(0, 5), dash, sub(5, 4), dash, sub(9))),
            (matches("[0-9]{4}-[0-9]{4}-[0-9]{2}"), concat(zero, code)),
            (matches("[0-9]{5}-[0-9]{3}-[0-9]{2}"), concat(sub(0, 6), zero, sub(6))),
            (matches("[0-9]{5}-[0-9]{4}-[0-9]"), concat(sub(0, 11), zero, sub(11))),
            (matches("[0-9]{5}-[0-9]{4}-[0-9]{2}"), code),
        ],
        null(),
    )
    cql = (
        "case\n"
        "    when Matches(code, '[0-9]{11}') then\n"
        "      Substring(code, 0, 5) + '-' + Substring(code, 5, 4) + '-' + Substring(code, 9)\n"
        "    when Matches(code, '[0-9]{4}-[0-9]{4}-[0-9]{2}') then '0' + code\n"
        "    when Matches(code, '[0-9]{5}-[0-9]{3}-[0-9]{2}') then\n"
        "      Substring(code, 0, 6) + '0' + Substring(code, 6)\n"
        "    when Matches(code, '[0-9]{5}-[0-9]{4}-[0-9]') then\n"
        "      Substring(code, 0, 11) + '0' + Substring(code, 11)\n"
        "    when Matches(code, '[0-9]{5}-[0-9]{4}-[0-9]{2}') then code\n"
        "    else null\n"
        "  end"
    )
    return Define("NDC", cql, elm, (("code", "System.String"),))


def functions() -> tuple[Define, ...]:
    return (order_define(), _codings_define(), _ndc_function())


def _in_system(short: str) -> tuple[Elm, str]:
    """Whether coding X is in a system: by one of its URIs, or its short name in any case."""
    system = prop("system.value", scope="X")
    uris = sorted(uri for uri, name in URIS.items() if name == short)
    elm = any_of([in_(system, uris), equal({"type": "Lower", "operand": system}, string(short))])
    return elm, f"(X.system.value in {cql_list(uris)} or Lower(X.system.value) = {quote(short)})"


def _known() -> tuple[Elm, str]:
    system = prop("system.value", scope="X")
    uris, names = sorted(URIS), sorted(SYSTEMS)
    elm = any_of([in_(system, uris), in_({"type": "Lower", "operand": system}, names)])
    cql = (
        f"(X.system.value in {cql_list(uris)}\n      or Lower(X.system.value) in {cql_list(names)})"
    )
    return elm, cql


def product(name: str, spec: ProductFact, policy: Policy) -> Define:
    """A `product` fact: true when a coding of the order's medication is a listed product,
    false when none is; null without the order, without a coding in a known system, or with an
    NDC that is not one."""
    wanted: dict[str, list[str]] = {}
    for system, listed in sorted(product_keys(spec, policy)):
        wanted.setdefault(system, []).append(listed)
    code = prop("code.value", scope="X")
    upper: Elm = {"type": "Upper", "operand": code}
    level_ii: Elm = {"type": "Matches", "operand": [code, string(_HCPCS_LEVEL_II)]}
    level_ii_cql = f"Matches(X.code.value, {quote(_HCPCS_LEVEL_II)})"
    ndc = function("NDC", code)
    tests: list[Elm] = []
    words: list[str] = []
    for system, codes in wanted.items():
        if system in ("ndc", "ndc-product"):
            in_ndc, in_ndc_cql = _in_system("ndc")
            if system == "ndc":
                key: Elm = ndc
                key_cql = '"NDC"(X.code.value)'
            else:
                key = {
                    "type": "Substring",
                    "stringToSub": ndc,
                    "startIndex": integer(0),
                    "length": integer(10),
                }
                key_cql = 'Substring("NDC"(X.code.value), 0, 10)'
            tests.append(all_of([in_ndc, in_(key, codes)]))
            words.append(f"{in_ndc_cql} and {key_cql} in {cql_list(codes)}")
            continue
        in_system, in_system_cql = _in_system(system)
        if system == "hcpcs":
            in_cpt, in_cpt_cql = _in_system("cpt")
            in_system = any_of([in_system, all_of([in_cpt, level_ii])])
            in_system_cql = f"({in_system_cql} or {in_cpt_cql} and {level_ii_cql})"
        elif system == "cpt":
            in_system = all_of([in_system, not_(level_ii)])
            in_system_cql = f"{in_system_cql} and not {level_ii_cql}"
        tests.append(all_of([in_system, in_(upper, codes)]))
        words.append(f"{in_system_cql} and Upper(X.code.value) in {cql_list(codes)}")
    codings = expression("OrderCodings")
    known, known_cql = _known()
    in_ndc, in_ndc_cql = _in_system("ndc")
    bad_ndc = exists(query(codings, "X", all_of([in_ndc, is_null(ndc)])))
    matched = exists(query(codings, "X", any_of(tests))) if tests else boolean(False)
    elm = if_(
        any_of([not_(exists(query(codings, "X", known))), bad_ndc]),
        null(),
        matched,
    )
    joined = "\n      or ".join(f"({w})" for w in words) if words else "false"
    cql = (
        f'if not exists ("OrderCodings" X where {known_cql})\n'
        f'    or exists ("OrderCodings" X where {in_ndc_cql} and "NDC"(X.code.value) is null)\n'
        "  then null\n"
        f'  else exists ("OrderCodings" X where\n      {joined})'
    )
    return Define(name, cql, elm)
