"""Bad input is refused with the field named, never a traceback; unusual input still decides."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from priorauth import InvalidRequest, PolicySet
from priorauth.entrypoints.cli import app
from tests.conftest import EXAMPLES
from tests.json_trees import paths

runner = CliRunner()
BAD_NDC = {"system": "ndc", "code": "123"}
BAD_SYSTEM = {"system": "ndcc", "code": "1"}
SCHEDULE_DOSES = "service.schedule.doses_per_cycle"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["observations"][1].update(value=-3), "observations[1]"),
        (lambda r: r["observations"][0].update(unit="cmm"), "observations[0].unit"),
        (lambda r: r["patient"].update(birth_date="1968-02-30"), "patient.birth_date"),
        (lambda r: r["patient"].update(birth_date="yesterday"), "patient.birth_date"),
        (lambda r: r["service"]["dose"].update(unit="mL"), "service.dose.unit"),
        (lambda r: r["service"]["schedule"].update(doses_per_cycle=0), SCHEDULE_DOSES),
        (lambda r: r["practitioners"][0].update(npi="1234567890"), "practitioners[0].npi"),
        (lambda r: r.update(conditions=["breast cancer"]), "conditions[0]"),
        (lambda r: r.update(service={}), "service"),
        (lambda r: r.update(service={"codes": [BAD_NDC]}), "service.codes[0]"),
        (lambda r: r.update(service={"codes": [BAD_SYSTEM]}), "service.codes[0].system"),
        (lambda r: r.pop("request_id"), "request_id"),
        (lambda r: r.update(surprise=1), "surprise"),
        (lambda r: r.update(type="renewal"), "type"),
        (lambda r: r["service"].update(start_date="9999-12-31"), "service.start_date"),
        (lambda r: r["patient"].update(birth_date="1850-06-01"), "patient.birth_date"),
        (lambda r: r.update(answers={"metastatic": "yes"}), "answers.metastatic.value"),
        (lambda r: r.update(answers={"metastasis": True}), "answers.metastasis"),
    ],
)  # fmt: skip
def test_invalid_fields_are_named(
    policies: PolicySet, approvable: dict[str, Any], change: Any, field: str
) -> None:
    change(approvable)
    with pytest.raises(InvalidRequest) as raised:
        policies.evaluate(approvable)
    assert field in [p.field for p in raised.value.problems], raised.value.problems


@pytest.mark.parametrize("data", [[1, 2], "text", None, 3])
def test_a_request_must_be_an_object(policies: PolicySet, data: Any) -> None:
    with pytest.raises(InvalidRequest):
        policies.evaluate(data)


def test_codes_are_accepted_without_dots_and_in_lower_case(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["conditions"] = ["c50912", " c78.01 "]
    assert policies.evaluate(approvable).outcome == "approved"


@pytest.mark.parametrize("ndc", ["70020-1910-01", "70020191001", "70020-1911-1"])
def test_ndc_forms_find_the_policy(
    policies: PolicySet, approvable: dict[str, Any], ndc: str
) -> None:
    approvable["service"]["codes"] = [{"system": "http://hl7.org/fhir/sid/ndc", "code": ndc}]
    del approvable["service"]["code"]
    determination = policies.evaluate(approvable)
    assert determination.policy is not None
    assert determination.outcome == "approved"


def test_a_request_known_by_another_code_is_pended_for_intake(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["service"] = {
        "codes": [{"code": "96413", "system": "http://www.ama-assn.org/go/cpt"}]
    }
    determination = policies.evaluate(approvable)
    assert determination.outcome == "pended" and determination.reasons == ("no-policy",)
    assert determination.route == "intake"
    assert "cpt 96413" in determination.summary
    # A code still has to be something.
    approvable["service"] = {"code": ""}
    with pytest.raises(InvalidRequest) as caught:
        policies.evaluate(approvable)
    assert caught.value.problems[0].field == "service.codes[0].code"


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(observations=[], conditions=[], practitioners=[], answers={}),
        lambda r: r.update(patient={}),
        lambda r: r["service"].pop("schedule"),
        lambda r: r["service"].update(schedule={"interval_weeks": 3}),
        lambda r: r["service"].update(dose={"value": 999999, "unit": "g"}),
        lambda r: r.update(medications=[{"name": "x" * 500, "status": "unknown"}]),
        lambda r: r.update(observations=[{"code": "751-8", "value": "not done"}]),
        lambda r: r.update(answers={"metastatic": None}),
    ],
)
def test_unusual_input_still_decides(
    policies: PolicySet, approvable: dict[str, Any], change: Any
) -> None:
    change(approvable)
    determination = policies.evaluate(approvable)
    assert determination.outcome in ("approved", "pended")


# --- the CLI --------------------------------------------------------------------------------


def test_cli_bad_json_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"request_id": ')
    result = runner.invoke(app, ["evaluate", str(bad)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_cli_invalid_field_exits_2_naming_it(tmp_path: Path) -> None:
    request = json.loads((EXAMPLES / "01-approved-every-3-weeks.json").read_text())
    request["observations"][1]["unit"] = "kgg"
    path = tmp_path / "bad-unit.json"
    path.write_text(json.dumps(request))
    result = runner.invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "observations[1].unit" in line
    assert "unknown unit 'kgg'" in line
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    [
        '{"request_id": "PA-1", "service": {"code": "J9207", "dose": {"value": 1e999}}}',
        '{"request_id": "PA-1", "service": {"code": "J9207"}, "answers": {"metastatic": NaN}}',
        '{"request_id": "PA-1", "service": {"code": "J9207"}, "answers": {"Metastatic": true}}',
        "[]",
        '"PA-1"',
    ],
)
def test_cli_bad_values_exit_2_with_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = runner.invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_cli_json_lines_for_several_files() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.json"))
    result = runner.invoke(app, ["evaluate", "--format", "json", *files])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == len(files)
    assert {d["outcome"] for d in lines} == {"approved", "pended"}


def test_cli_pended_is_still_exit_0() -> None:
    result = runner.invoke(
        app, ["evaluate", str(EXAMPLES / "06-pended-missing-information.json"), "--explain"]
    )
    assert result.exit_code == 0
    assert "PENDED" in result.output
    assert "Questions to answer" in result.output


def test_cli_bad_as_of_date_exits_2() -> None:
    example = str(EXAMPLES / "01-approved-every-3-weeks.json")
    result = runner.invoke(app, ["evaluate", example, "--as-of", "tomorrow"])
    assert result.exit_code == 2
    assert "--as-of" in result.output


@pytest.mark.parametrize("name", ["request", "determination", "policy", "safety"])
def test_cli_schemas_are_json_schema(name: str) -> None:
    result = runner.invoke(app, ["schema", name])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["type"] == "object"
    assert "properties" in schema


@pytest.mark.parametrize("name", ["request", "determination", "policy", "safety"])
def test_published_schemas_are_current(name: str) -> None:
    """docs/schemas/ holds the exported schemas; regenerate with `priorauth schema NAME`."""
    published = EXAMPLES.parent / "docs" / "schemas" / f"{name}.schema.json"
    result = runner.invoke(app, ["schema", name])
    assert json.loads(published.read_text()) == json.loads(result.output), (
        f"docs/schemas/{name}.schema.json is stale: "
        f"run .venv/bin/priorauth schema {name} > docs/schemas/{name}.schema.json"
    )


def test_cli_line_format_is_one_line_per_request() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.json"))
    result = runner.invoke(app, ["evaluate", "--format", "line", *files])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(files)
    assert lines[0].startswith("PA-2026-000101")
    assert "approved" in lines[0]


def test_the_cli_starts_without_the_service_layer() -> None:
    """`priorauth evaluate` and `priorauth policy` need no database: the store, SQLAlchemy,
    Alembic and the HTTP app are imported only by the service commands that use them."""
    import subprocess
    import sys

    heavy = ["sqlalchemy", "alembic", "fastapi", "uvicorn", "priorauth.service.workflow"]
    code = (
        f"import sys, priorauth.entrypoints.cli\nprint([m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_the_service_commands_are_listed() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "replay", "metrics", "users", "audit"):
        assert command in result.output


# --- anything at all: a determination or InvalidRequest, never another exception ---------------

EXAMPLE_REQUESTS = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "x", "C50.912", "mg", "mg/m2", "[lb_av]", "2026-12-01", "IV", "active"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["code", "value", "unit", "system", "date"]), children, max_size=3
        )
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_value_anywhere_decides_or_is_refused(policies: PolicySet, data: st.DataObject) -> None:
    request = copy.deepcopy(data.draw(st.sampled_from(EXAMPLE_REQUESTS)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(request)[1:]))
        target = request
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = data.draw(json_values)
    try:
        determination = policies.evaluate(request)
    except InvalidRequest as exc:
        assert exc.problems
        assert all(isinstance(p.field, str) and p.message for p in exc.problems)
    else:
        assert determination.outcome in ("approved", "pended")
