"""CQL and ELM generated from a policy's facts: the Library that pre-fills the DTR form.

No CQL-to-ELM translator (Java) is needed: each fact the chart can settle is compiled by the
same walk into both its CQL text (for people) and its ELM JSON (for engines such as
cql-execution). Facts of a kind this compiler does not express yet are listed in
`CqlLibrary.not_compiled`; their items are asked without pre-fill.

What a define gives equals the engine's fact over the same FHIR data (the tests run the ELM
with the reference engine and compare):

- `age` in years: `AgeInYearsAt(ServiceDate)` from Patient.birthDate; null when there is no
  birth date, or it is after the service date.
- `condition`: true when a Condition (not refuted nor entered in error) has a coding of the
  fact's system whose code, without dots and in upper case, is one of the codes or starts with
  one of the `X.*` stems (and is not excluded); when none does, false if the policy says the
  absence is "false", else null; null when no Condition with a coding in a known system is
  there at all.
- `observation` without a unit: the latest readable Observation (not entered in error nor
  cancelled) whose LOINC-first coding is one of the codes, dated within `within_days` when
  given; its value as the mapping reads it (a well-known coded result as its word).
"""

from __future__ import annotations

from priorauth.adapters.cql.compiler import CqlLibrary, compile_policy

__all__ = ["CqlLibrary", "compile_policy"]
