"""Whatever a bundle holds, the adapter answers (200 or 400) and never raises."""

from __future__ import annotations

import copy
import os
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from priorauth import PolicySet
from priorauth.adapters.fhir import submit
from priorauth.adapters.fhir.bundle import _shape, _validate
from priorauth.adapters.fhir.problems import problems_from_validation
from tests.json_trees import json_values, paths
from tests.unit.test_fhir_support import CREATED, fhir_example

APPROVABLE = fhir_example("pas-approvable.json")

JSON_VALUES = json_values(
    ["Patient/pat-1", "#x", "mg/m2", "2026-02-30", "C50.912", "J9207"], allow_infinity=False
)


PATHS = paths(APPROVABLE)[1:]


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    node = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def mutated(edits: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """The approvable bundle with each edit applied (one that lost its place is skipped)."""
    document: Any = APPROVABLE
    for path, value in edits:
        try:
            document = _replace(document, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the place this one aimed at
    return document


@settings(
    max_examples=int(os.environ.get("PRIORAUTH_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES), min_size=1, max_size=3))
def test_a_mutated_bundle_gets_an_answer_never_an_exception(
    policies: PolicySet, edits: list[tuple[tuple[Any, ...], Any]]
) -> None:
    document = mutated(edits)
    answer = submit(document, policies=policies, created=CREATED)
    if answer.status == 400:
        OperationOutcome.model_validate(answer.body)
    else:
        assert answer.status == 200
        Bundle.model_validate(answer.body)


@settings(max_examples=int(os.environ.get("PRIORAUTH_FUZZ_EXAMPLES", "60")), deadline=None)
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES), min_size=1, max_size=3))
def test_reading_resource_by_resource_finds_what_the_whole_bundle_model_finds(
    edits: list[tuple[tuple[Any, ...], Any]],
) -> None:
    """The reader validates each entry's resource by its own class and the Bundle's own
    elements apart: every element the whole Bundle model refuses is refused. It may refuse
    more, but only the Bundle's own elements that the whole model refuses once the resources
    are sound (a missing Bundle.type is not reported by the whole model while a resource inside
    fails, since its required-field check runs only after the fields validate)."""
    document = mutated(edits)
    classes, shape = _shape(document)
    assume(not shape)  # the outer shape is checked before any model, by the reader itself
    whole = _refused(document)
    _, found = _validate(document, classes)
    paths = {p.path for p in found}
    assert whole <= paths
    assert paths - whole <= _refused(_with_sound_resources(document))


def _refused(document: Any) -> set[str]:
    """The elements the whole Bundle model refuses."""
    try:
        Bundle.model_validate(document)
    except ValidationError as exc:
        return {p.path for p in problems_from_validation("Bundle", exc)}
    return set()


def _with_sound_resources(document: Any) -> Any:
    """The document with each entry's resource put back as in the approvable bundle."""
    sound = copy.deepcopy(document)
    entries = sound.get("entry") if isinstance(sound, dict) else None
    if isinstance(entries, list):
        for index, entry in enumerate(entries[: len(APPROVABLE["entry"])]):
            if isinstance(entry, dict) and "resource" in entry:
                entry["resource"] = copy.deepcopy(APPROVABLE["entry"][index]["resource"])
    return sound


def test_nulls_where_lists_go_are_read_as_nothing(policies: PolicySet) -> None:
    """JSON null for a list (an item's extensions, a resource's contained, the items) is as good
    as leaving it out: the models read it so, and so do the parts that read the raw JSON."""
    document = copy.deepcopy(APPROVABLE)
    claim = document["entry"][0]["resource"]
    claim["item"][0]["extension"] = None
    claim["contained"] = None
    answer = submit(document, policies=policies, created=CREATED)
    assert answer.status == 200, answer.body
    Bundle.model_validate(answer.body)
