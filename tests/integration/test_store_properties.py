"""Property (#16): any request the contract accepts can be stored, read back as it was sent, and
replayed to the same determination, on SQLite and on PostgreSQL. Each generated request is an
example request with its text, numbers and dates varied within (and at) the contract's bounds;
what the contract refuses is left out (`assume`), since that is a 422 and never stored."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from priorauth.engine.request import parse_request
from priorauth.errors import InvalidRequest
from priorauth.service.errors import Invalid
from tests.service_fixtures import ROOT, TOKENS, Env

EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.json"))
_numbers = itertools.count()

# Any text but NUL (refused at the contract), across the whole of Unicode.
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=80)
numbers = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from([0, -0.0, 1e-300, 1e12, -1e12, 5e-324]),
)


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "examples" / name).read_text())
    return data


@st.composite
def accepted_requests(draw: st.DrawFn) -> dict[str, Any]:
    request = copy.deepcopy(_example(draw(st.sampled_from(EXAMPLES))))
    request["request_id"] = f"P-{next(_numbers)}-" + draw(
        st.from_regex(r"[A-Za-z0-9._:-]{0,40}", fullmatch=True)
    )
    request["sources"] = draw(st.dictionaries(text, text, max_size=3))
    observations = request.get("observations") or []
    if observations:
        index = draw(st.integers(0, len(observations) - 1))
        kind = draw(st.sampled_from(["number", "text", "flag", "uln"]))
        observation = observations[index]
        if kind == "number" and isinstance(observation.get("value"), int | float):
            # Within what is plausible for the measurement: the example's value, scaled.
            factor = draw(st.floats(0.5, 2.0, allow_nan=False))
            observation["value"] = observation["value"] * factor
        elif kind in ("text", "flag"):
            observation.pop("unit", None)
            observation["value"] = draw(
                text.filter(lambda t: len(t) <= 200) if kind == "text" else st.booleans()
            )
        else:
            observation.pop("value", None)
            observation["uln_multiple"] = draw(st.floats(0, 1e6, allow_nan=False))
    if draw(st.booleans()):
        request.setdefault("patient", {})["birth_date"] = draw(
            st.dates(dt.date(1900, 1, 1), dt.date(2026, 11, 1)).map(lambda d: d.isoformat())
        )
    if request.get("answers") and draw(st.booleans()):
        question = draw(st.sampled_from(sorted(request["answers"])))
        request["answers"][question] = draw(
            st.one_of(st.booleans(), numbers, text.filter(lambda t: len(t) <= 500))
        )
    try:
        parse_request(request)
    except InvalidRequest:
        assume(False)
    return request


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(request=accepted_requests())
def test_an_accepted_request_is_stored_read_back_and_replayed(
    env: Env, request: dict[str, Any]
) -> None:
    clinic = env.service.authenticate(TOKENS["clinic"])
    try:
        submitted = env.service.submit(clinic, request, "M-PROP")
    except Invalid as refused:
        # The policy's own checks (an answer of the wrong kind for its question): a 422 naming
        # the field, and nothing stored.
        assert all(p.field.startswith("request.") for p in refused.problems), refused.problems
        assert env.service.find(clinic, request["request_id"]) == []
        return
    case_id = submitted.case["case_id"]
    read = env.service.read(clinic, case_id)
    assert read["request"] == json.loads(json.dumps(request))
    assert read["determination"] == submitted.case["determination"]
    replayed = env.service.replay(case_id)
    assert replayed and all(r.same for r in replayed), [
        (r.differences, r.problem) for r in replayed
    ]


def test_the_examples_directory_is_there() -> None:
    assert len(EXAMPLES) >= 10 and Path(ROOT / "examples").is_dir()
