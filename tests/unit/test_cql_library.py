"""The generated CQL library: its text and its ELM come from one model, and say the same.

The cross-check (tests/integration/test_cql_crosscheck.py) runs the ELM; these tests read the
text and the ELM side by side, without node.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import TypeAdapter

from priorauth import PolicySet
from priorauth.adapters.cql import compile_policy
from priorauth.adapters.cql.compiler import not_compiled_reason
from priorauth.adapters.fhir.codes import code_table
from priorauth.clinical.systems import URIS
from priorauth.policy.model import FactSpec

SHIPPED = PolicySet.from_directory()
POLICIES = sorted(c.policy.id for c in SHIPPED.policies)


@pytest.mark.parametrize("policy_id", POLICIES)
def test_every_elm_statement_is_a_define_of_the_cql(policy_id: str) -> None:
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    library = compile_policy(compiled.policy)
    statements = [s["name"] for s in library.elm["library"]["statements"]["def"]]
    written = re.findall(r'^define (?:function )?"([^"]+)"', library.cql, re.MULTILINE)
    assert written == [s for s in statements if s != "Patient"]
    assert set(library.defines) <= set(statements)
    assert not set(library.defines) & set(library.not_compiled)


@pytest.mark.parametrize("policy_id", POLICIES)
def test_the_cql_names_each_code_system_as_it_is(policy_id: str) -> None:
    """A code system's URI is written whole (the condition's text once rewrote 'Code' in
    http://terminology.hl7.org/CodeSystem/icd-o-3)."""
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    library = compile_policy(compiled.policy)
    quoted = set(re.findall(r"'([a-z]+:[^']*)'", library.cql))
    systems = {q for q in quoted if q.startswith(("http", "urn:"))}
    table = code_table()
    known = {*URIS, *table.coded_words, *table.yes_no, *table.extensions.values()}
    assert systems <= known
    assert "\x00" not in library.cql


@pytest.mark.parametrize("policy_id", POLICIES)
def test_each_fact_left_out_says_why(policy_id: str) -> None:
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    library = compile_policy(compiled.policy)
    for name in library.not_compiled:
        reason = not_compiled_reason(name, compiled.policy.facts[name], compiled.policy)
        assert reason is not None
        assert f"//   {name}: {reason}" in library.cql
    kinds = {compiled.policy.facts[n].kind for n in library.not_compiled}
    assert kinds <= {"specialty", "product", "medication-history", "current-medication"}


def test_a_fact_named_like_a_helper_define_keeps_its_own() -> None:
    """`tb` reads its latest value through a helper define; a fact named `tb_reading` (or
    `tb_given`) is a define of its own."""
    compiled = SHIPPED.get("infliximab")
    assert compiled is not None
    adapter: TypeAdapter[Any] = TypeAdapter(FactSpec)
    facts = {
        "tb": adapter.validate_python(
            {"kind": "observation", "codes": ["71774-4"], "question": "?"}
        ),
        "tb_reading": adapter.validate_python({"kind": "answer", "question": "?"}),
        "tb_given": adapter.validate_python({"kind": "answer", "question": "?"}),
        "tb_reading_given": adapter.validate_python({"kind": "answer", "question": "?"}),
    }
    library = compile_policy(compiled.policy.model_copy(update={"facts": facts}))
    statements = {s["name"]: s for s in library.elm["library"]["statements"]["def"]}
    assert len(statements) == len(library.elm["library"]["statements"]["def"])
    for name in ("tb_reading", "tb_given", "tb_reading_given"):
        assert '"AnswerKey"' in json.dumps(statements[name]), name  # an answer's define


@pytest.mark.parametrize("policy_id", POLICIES)
def test_the_order_is_a_parameter_only_of_a_library_that_reads_it(policy_id: str) -> None:
    compiled = SHIPPED.get(policy_id)
    assert compiled is not None
    library = compile_policy(compiled.policy)
    parameters = {p["name"] for p in library.elm["library"]["parameters"]["def"]}
    reads = any(f.kind == "product" for f in compiled.policy.facts.values())
    assert parameters == ({"ServiceDate", "OrderId"} if reads else {"ServiceDate"})
    assert ('parameter "OrderId" String' in library.cql) is reads


def test_a_product_code_in_icd10_is_not_compiled() -> None:
    compiled = SHIPPED.get("infliximab")
    assert compiled is not None
    adapter: TypeAdapter[Any] = TypeAdapter(FactSpec)
    spec = {"kind": "product", "codes": [{"system": "icd-10-cm", "code": "Z79.899"}]}
    facts = {"odd": adapter.validate_python({**spec, "question": "?"})}
    library = compile_policy(compiled.policy.model_copy(update={"facts": facts}))
    assert library.not_compiled == ("odd",)
    assert "//   odd: a product code in ICD-10-CM" in library.cql
