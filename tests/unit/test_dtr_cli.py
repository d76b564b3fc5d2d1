"""`priorauth dtr`: the form, the CQL and the ELM of a policy file, printed offline."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from priorauth.entrypoints.cli import app

ROOT = Path(__file__).resolve().parents[2]
IXEMPRA = str(ROOT / "policies" / "ixempra.yaml")
runner = CliRunner()


def test_the_questionnaire_asks_the_policys_questions() -> None:
    result = runner.invoke(app, ["dtr", "questionnaire", IXEMPRA])
    assert result.exit_code == 0, result.output
    form = json.loads(result.stdout)
    assert form["resourceType"] == "Questionnaire"
    assert {i["linkId"] for i in form["item"]} == {
        "metastatic",
        "recurrent_unresectable_locoregional",
        "no_response_to_preoperative_therapy",
    }


def test_a_part_of_the_form_is_named_by_its_questions() -> None:
    result = runner.invoke(
        app, ["dtr", "questionnaire", IXEMPRA, "--ask", "metastatic", "--base", "https://p/fhir"]
    )
    assert result.exit_code == 0, result.output
    form = json.loads(result.stdout)
    assert [i["linkId"] for i in form["item"]] == ["metastatic"]
    assert form["url"] == f"https://p/fhir/Questionnaire/{form['id']}"


def test_the_cql_and_the_elm_name_the_same_defines() -> None:
    cql = runner.invoke(app, ["dtr", "cql", IXEMPRA])
    elm = runner.invoke(app, ["dtr", "elm", IXEMPRA])
    assert cql.exit_code == elm.exit_code == 0
    names = [d["name"] for d in json.loads(elm.stdout)["library"]["statements"]["def"]]
    for name in names:
        if name != "Patient":
            assert f'"{name}"' in cql.stdout


def test_a_question_the_policy_does_not_ask_or_a_missing_file_is_a_clear_error(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["dtr", "questionnaire", IXEMPRA, "--ask", "stage"])
    assert result.exit_code == 2
    assert "asks no question 'stage'" in result.stderr
    missing = runner.invoke(app, ["dtr", "cql", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2
    assert "no such policy file" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\n")
    result = runner.invoke(app, ["dtr", "elm", str(broken)])
    assert result.exit_code == 1
    assert "problem(s)" in result.stderr
