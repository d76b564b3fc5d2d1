"""Bad input is refused with the field named, never a traceback; unusual input still decides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from priorauth import InvalidRequest, PolicySet
from priorauth.entrypoints.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["patient"].update(weight_kg=-3), "patient.weight_kg"),
        (lambda r: r["patient"].update(birth_date="1968-02-30"), "patient.birth_date"),
        (lambda r: r["patient"].update(birth_date="yesterday"), "patient.birth_date"),
        (lambda r: r["regimen"].update(dose_unit="mg/kg"), "regimen.dose_unit"),
        (lambda r: r["regimen"].update(doses_per_cycle=0), "regimen.doses_per_cycle"),
        (lambda r: r["prescriber"].update(npi="1234567890"), "prescriber.npi"),
        (lambda r: r.update(diagnoses=["breast cancer"]), "diagnoses[0]"),
        (lambda r: r.update(drug={}), "drug"),
        (lambda r: r.update(drug={"ndc": "123"}), "drug.ndc"),
        (lambda r: r.pop("request_id"), "request_id"),
        (lambda r: r.update(surprise=1), "surprise"),
        (lambda r: r.update(type="renewal"), "type"),
        (lambda r: r["regimen"].update(start_date="9999-12-31"), "regimen.start_date"),
        (lambda r: r["patient"].update(birth_date="1850-06-01"), "patient.birth_date"),
    ],
)
def test_invalid_fields_are_named(
    policies: PolicySet, approvable: dict[str, Any], change: Any, field: str
) -> None:
    change(approvable)
    with pytest.raises(InvalidRequest) as raised:
        policies.evaluate(approvable)
    assert field in [p.field for p in raised.value.problems]


def test_a_request_must_be_an_object(policies: PolicySet) -> None:
    with pytest.raises(InvalidRequest):
        policies.evaluate([1, 2])  # type: ignore[arg-type]


def test_codes_are_accepted_without_dots_and_in_lower_case(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["diagnoses"] = ["c50912", " c78.01 "]
    assert policies.evaluate(approvable).outcome == "approved"


def test_ndc_forms(policies: PolicySet, approvable: dict[str, Any]) -> None:
    for ndc in ("70020-1910-01", "70020191001", "70020-1911-1"):
        approvable["drug"] = {"ndc": ndc}
        determination = policies.evaluate(approvable)
        assert determination.policy is not None, ndc


def test_a_request_known_by_another_code_is_pended_for_intake(
    policies: PolicySet, approvable: dict[str, Any]
) -> None:
    approvable["drug"] = {"code": "96413", "system": "http://www.ama-assn.org/go/cpt"}
    determination = policies.evaluate(approvable)
    assert determination.outcome == "pended" and determination.reasons == ("no-policy",)
    assert determination.route == "intake"
    assert "http://www.ama-assn.org/go/cpt 96413" in determination.summary
    approvable["drug"] = {"code": "96413"}
    assert "drug 96413" in policies.evaluate(approvable).summary
    # A code still has to be something.
    approvable["drug"] = {"code": ""}
    with pytest.raises(InvalidRequest) as caught:
        policies.evaluate(approvable)
    assert caught.value.problems[0].field == "drug.code"


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
    request["patient"]["weight_kg"] = -1
    path = tmp_path / "negative.json"
    path.write_text(json.dumps(request))
    result = runner.invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2
    assert "patient.weight_kg" in result.output
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


@pytest.mark.parametrize("name", ["request", "determination", "policy"])
def test_cli_schemas_are_json_schema(name: str) -> None:
    result = runner.invoke(app, ["schema", name])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["type"] == "object"
    assert "properties" in schema


@pytest.mark.parametrize("name", ["request", "determination", "policy"])
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
