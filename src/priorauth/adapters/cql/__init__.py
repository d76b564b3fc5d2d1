"""CQL and ELM generated from a policy's facts: the Library that pre-fills the DTR form.

No CQL-to-ELM translator (Java) is needed: each fact the chart can settle is compiled by the
same function into both its CQL text (for people) and its ELM JSON (for engines such as
cql-execution). Facts of a kind this compiler does not express are listed in
`CqlLibrary.not_compiled`, with the reason in a comment of the CQL; their items are asked
without pre-fill.

What a define gives equals the engine's fact over the same FHIR data (the tests run the ELM
with the reference engine and compare; docs/crd-dtr.md says what each kind reads):

- `age` in years, `condition` code sets (`charted`);
- `observation`, as given or converted to a UCUM unit, judged by the plausible ranges
  (`observations`);
- `measure`: body weight, body surface area, creatinine clearance (`measures`);
- `answer`, from QuestionnaireResponses by linkId (`answers`);
- `product`, from the order's medication codes (`order`; the order is the MedicationRequest
  whose id is the `OrderId` parameter).

`elm` builds the ELM nodes and `Define`, a statement in both forms; `compiler` assembles them.
"""

from __future__ import annotations

from priorauth.adapters.cql.compiler import CqlLibrary, compile_policy

__all__ = ["CqlLibrary", "compile_policy"]
