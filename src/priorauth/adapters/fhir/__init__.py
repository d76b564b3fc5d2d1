"""The FHIR adapter: Da Vinci PAS request bundles in, priorauth requests, PAS responses out.

>>> from priorauth.adapters import fhir
>>> answer = fhir.submit({"resourceType": "Bundle", "type": "collection"})
>>> answer.status, answer.body["issue"][0]["expression"]
(400, ['Bundle.entry'])

The steps, each usable alone:

- `read_bundle(data)` parses with fhir.resources (R4B models, R4-compatible for these
  resources) and checks the PAS rules -> `PasBundle` or `Rejected` (every problem, with its
  FHIRPath); `operation_outcome(problems)` renders them.
- `map_bundle(data)` -> `Submission`: one request dict per Claim item, in the general request
  contract, with `sources` naming each field's FHIR element; or `Rejected` when an element
  cannot be read (an unknown code system or unit, a value the contract refuses).
  `bundle_requests(data)` returns the request dicts alone (what `priorauth evaluate` uses).
- `decide(submission)` -> a determination per item; `build_response(submission, determinations)`
  -> the PAS response bundle; `validate_response(bundle)` checks one with fhir.resources
  (the tests do, for every shape; the hot path does not: it is built from checked parts).
- `submit(data)` does all of it and answers like `$submit` would (status + body).
"""

from priorauth.adapters.fhir.bundle import Located, PasBundle, Rejected, read_bundle
from priorauth.adapters.fhir.codes import CodeTable, ReviewAction, code_table
from priorauth.adapters.fhir.mapping import (
    InvalidBundle,
    ItemRequest,
    Submission,
    bundle_requests,
    map_bundle,
    map_pas_bundle,
)
from priorauth.adapters.fhir.pas import PasAnswer, decide, submit
from priorauth.adapters.fhir.problems import Problem, operation_outcome
from priorauth.adapters.fhir.response import (
    InvalidResponse,
    authorization_number,
    authorization_words,
    build_response,
    item_notes,
    validate_response,
)

__all__ = [
    "CodeTable",
    "InvalidBundle",
    "InvalidResponse",
    "ItemRequest",
    "Located",
    "PasAnswer",
    "PasBundle",
    "Problem",
    "Rejected",
    "ReviewAction",
    "Submission",
    "authorization_number",
    "authorization_words",
    "build_response",
    "bundle_requests",
    "code_table",
    "decide",
    "item_notes",
    "map_bundle",
    "map_pas_bundle",
    "operation_outcome",
    "read_bundle",
    "submit",
    "validate_response",
]
