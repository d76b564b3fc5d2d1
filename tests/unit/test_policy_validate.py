"""`priorauth policy validate`: every problem named with its code, its line and, for a misspelt
name, the nearest allowed one; references checked for the general policy model."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth.entrypoints.cli import app
from priorauth.errors import PolicyIssue
from priorauth.policy.loader import check_policy_text
from tests.conftest import ROOT

runner = CliRunner()
SHIPPED = sorted(p for p in (ROOT / "policies").glob("*.yaml") if not p.name.endswith(".data.yaml"))

# A small policy with one fact of most kinds, an agent class, a choice answer and two regimens.
MINIMAL = """\
id: demo
title: Demo policy
version: "1"
review_date: 2026-01-01
effective_date: 2026-01-01
drugs:
  - name: Demo
    generic_name: demo
    hcpcs: [J1234]
    billing: {code: J1234, mg_per_unit: 1}
agent_classes:
  taxanes:
    agents: [paclitaxel]
facts:
  age_years:
    kind: age
    question: "What is the patient's date of birth?"
  breast_cancer:
    kind: condition
    codes: ["C50.*"]
    absent: "false"
    question: "What is the diagnosis?"
  prior_taxane:
    kind: medication-history
    classes: [taxanes]
    question: "How many taxanes has the patient received?"
  child_pugh:
    kind: answer
    type: choice
    choices: [none, A, B]
    question: "What is the Child-Pugh class?"
  calcium:
    kind: observation
    codes: ["17861-6"]
    unit: mg/dL
    question: "What is the serum calcium?"
indications:
  - id: "1"
    title: Breast cancer
    when: breast_cancer
    approval: {years: 1}
    regimens: [A, B]
    criteria:
      id: "1"
      text: All of A, B and C
      all:
        - {id: A, text: Adult, fact: age_years, at_least: 18}
        - {id: B, text: A taxane, fact: prior_taxane, at_least: 1}
        - {id: C, text: Calcium, fact: calcium, at_least: 8.5}
dosing:
  regimens:
    - id: A
      text: Standard
      dose: {max: 1.4, unit: mg/m2}
      cycle: {length_days: 21, days: [1, 8]}
      unless: {id: A.unless, text: hepatic impairment, fact: child_pugh, in: [A, B]}
    - id: B
      text: Mild hepatic impairment
      dose: {max: 1.1, unit: mg/m2}
      cycle: {length_days: 21, days: [1, 8]}
      when: {id: B.when, text: Child-Pugh A, fact: child_pugh, equals: A}
routing:
  criteria-not-met: medical-director
"""


def issues(text: str) -> list[PolicyIssue]:
    return check_policy_text(text).issues


def only(text: str) -> PolicyIssue:
    found = issues(text)
    assert len(found) == 1, found
    return found[0]


def changed(*pairs: tuple[str, str]) -> str:
    text = MINIMAL
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_minimal_policy_is_clean() -> None:
    assert issues(MINIMAL) == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_are_clean(path: Path) -> None:
    assert issues(path.read_text()) == []


# --- parse ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "sentence"),
    [
        ("id: x\ntitle: [unclosed\nversion: 1\n", 3, "a [ list ] is not closed"),
        ("id: x\ntitle: a: b\n", 2, "a value that holds ': ' needs quotes"),
        ("id: x\nfacts:\n\tage: 1\n", 3, "a tab character: YAML indents with spaces only"),
        (
            "id: 'x\ntitle: y\n",
            3,
            "a quoted value is never closed (the quoted value begins on line 1)",
        ),
        ("id: x\nfacts:\n  a: 1\n b: 2\n", 4, "indented differently from the lines above"),
        ("id: *anchor\n", 1, "'*anchor' names an anchor '&anchor' defined nowhere above"),
        ("id: @x\n", 1, "a value cannot start with '@': put the value in quotes"),
    ],
)
def test_yaml_syntax_errors_are_a_line_and_a_sentence(text: str, line: int, sentence: str) -> None:
    issue = only(text)
    assert (issue.code, issue.stage, issue.line) == ("PA101", "parse", line)
    assert sentence in issue.message
    assert "\n" not in issue.message
    assert issue.message.startswith("not valid YAML at column ")


def test_a_key_written_twice_is_an_error_naming_both_lines() -> None:
    text = changed(
        ("  age_years:\n    kind: age\n", "  age_years:\n    kind: age\n    kind: age\n")
    )
    issue = only(text)
    assert issue.code == "PA103"
    assert issue.path == "facts.age_years.kind"
    first = line_of(text, "    kind: age")
    assert issue.line == first + 1
    assert f"lines {first} and {first + 1}" in issue.message


def test_a_list_at_the_top_is_not_a_policy() -> None:
    assert only("- a\n- b\n").code == "PA102"


# --- schema: did you mean ------------------------------------------------------------------------


def test_an_unknown_fact_kind_is_named_with_the_nearest_kind() -> None:
    text = changed(("    kind: observation", "    kind: observaton"))
    issue = only(text)
    assert issue.code == "PA201"
    assert issue.path == "facts.calcium.kind"
    assert issue.message == "unknown fact kind 'observaton' (did you mean 'observation'?)"
    assert issue.line == line_of(text, "observaton")


def test_a_fact_kind_far_from_any_lists_them_all() -> None:
    issue = only(changed(("    kind: observation", "    kind: lab")))
    assert issue.message.startswith("unknown fact kind 'lab' (one of age, condition, observation")


def test_a_fact_without_a_kind() -> None:
    issue = only(changed(("    kind: observation\n", "")))
    assert issue.path == "facts.calcium.kind"
    assert "a fact kind is needed" in issue.message


def test_a_misspelt_key_is_named_with_the_nearest_key() -> None:
    text = changed(('    criteria:\n      id: "1"', '    criterai:\n      id: "1"'))
    found = {i.path: i.message for i in issues(text)}
    assert found["indications[0].criterai"] == "unknown key (did you mean 'criteria'?)"
    assert found["indications[0].criteria"] == "a required key is missing"


def test_a_misspelt_key_inside_a_fact_of_a_kind_names_that_kinds_keys() -> None:
    issue = only(changed(("    unit: mg/dL", "    units: mg/dL")))
    assert issue.path == "facts.calcium.units"  # the kind's tag is not part of the path
    assert issue.message == "unknown key (did you mean 'unit'?)"


def test_a_misspelt_comparator_in_a_nested_criterion() -> None:
    issue = only(changed(("fact: age_years, at_least: 18", "fact: age_years, at_lest: 18")))
    assert issue.path == "indications[0].criteria.all[0].at_lest"
    assert "did you mean 'at_least'" in issue.message


def test_a_fact_named_like_a_kind_keeps_its_name_in_the_path() -> None:
    text = MINIMAL.replace("age_years", "age").replace(
        "    kind: age\n", "    kind: age\n    x: 1\n"
    )
    issue = only(text)
    assert issue.path == "facts.age.x"


def test_a_criterion_for_a_regimen_is_judged_as_a_criterion_only() -> None:
    # `when` takes a fact's name or a criterion: a criterion missing its text is one problem,
    # not also "not a valid string".
    issue = only(changed(("{id: B.when, text: Child-Pugh A, fact:", "{id: B.when, fact:")))
    assert issue.path == "dosing.regimens[1].when.text"
    assert issue.message == "a required key is missing"


def test_a_wrong_type_beside_another_error_is_still_reported() -> None:
    text = changed(("hcpcs: [J1234]", "hcpcs: J1234"), ("mg_per_unit: 1}", "mg_per_unit: -1}"))
    assert {i.path for i in issues(text)} == {"drugs[0].hcpcs", "drugs[0].billing.mg_per_unit"}


def test_a_value_outside_a_fixed_list_names_the_nearest() -> None:
    issue = only(changed(("dose: {max: 1.1, unit: mg/m2}", "dose: {max: 1.1, unit: mg/m²}")))
    assert issue.path == "dosing.regimens[1].dose.unit"
    assert issue.message == "'mg/m²' is not allowed here (did you mean 'mg/m2' or 'mg/kg'?)"


# --- references ----------------------------------------------------------------------------------


def test_an_undefined_fact_is_named_with_the_nearest() -> None:
    text = changed(("fact: prior_taxane", "fact: prior_taxanes"))
    issue = only(text)
    assert issue.code == "PA301"
    assert issue.message == (
        "fact 'prior_taxanes' is not defined under facts (did you mean 'prior_taxane'?)"
    )
    assert issue.line == line_of(text, "prior_taxanes")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (("when: breast_cancer", "when: breast_cancr"), "indications[0].when"),
        (("fact: child_pugh, equals: A", "fact: child_pug, equals: A"), "dosing.regimens[1].when"),
    ],
)
def test_indication_and_regimen_facts_must_exist(change: tuple[str, str], path: str) -> None:
    issue = only(changed(change))
    assert issue.code == "PA301"
    assert issue.path.startswith(path)


def test_criterion_ids_are_unique_in_a_tree() -> None:
    issue = only(changed(("{id: C, text: Calcium", "{id: B, text: Calcium")))
    assert (issue.code, issue.path) == ("PA302", "indications[0].criteria.all[2].id")


def test_a_numeric_fact_needs_a_number_comparison() -> None:
    issue = only(changed(("fact: age_years, at_least: 18", "fact: age_years")))
    assert issue.code == "PA303"
    assert "is a number: give at_least, at_most, below or above" in issue.message


def test_a_true_false_fact_takes_no_number() -> None:
    text = changed(("{id: A, text: Adult, fact: age_years, at_least: 18}",
                    "{id: A, text: Adult, fact: breast_cancer, at_least: 1}"))  # fmt: skip
    assert only(text).code == "PA304"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("equals: A}", "equals: D}"),
            "'D' is not one of the choices of 'child_pugh' (none, A, B)",
        ),
        (("in: [A, B]", "in: [A, b]"), "'b' is not one of the choices"),
        (("fact: child_pugh, in: [A, B]", "fact: child_pugh, at_least: 1"), "is a choice"),
        (("fact: age_years, at_least: 18", "fact: age_years, equals: 18"), "is a number"),
        (("fact: age_years, at_least: 18", "fact: age_years, at_least: 18, is: true"), "one way"),
    ],
)
def test_a_comparison_must_fit_the_fact(change: tuple[str, str], message: str) -> None:
    found = issues(changed(change))
    assert found and found[0].code in ("PA303", "PA309")
    assert message in found[0].message


def test_an_indication_needs_a_true_false_fact() -> None:
    issue = only(changed(("when: breast_cancer", "when: age_years")))
    assert issue.code == "PA307"
    assert "'age_years' is a number" in issue.message


def test_a_regimen_named_by_an_indication_must_exist() -> None:
    issue = only(changed(("regimens: [A, B]", "regimens: [A, C]")))
    assert (issue.code, issue.path) == ("PA310", "indications[0].regimens[1]")
    assert "(A, B)" in issue.message


def test_duplicate_regimen_and_indication_ids() -> None:
    text = changed(("    - id: B\n      text: Mild", "    - id: A\n      text: Mild"))
    assert {i.code for i in issues(text)} >= {"PA305"}


def test_a_medication_fact_names_a_defined_agent_class() -> None:
    issue = only(changed(("classes: [taxanes]", "classes: [taxane]")))
    assert issue.code == "PA308"
    assert issue.message == (
        "agent class 'taxane' is not defined under agent_classes (did you mean 'taxanes'?)"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("unit: mg/dL", "unit: mg/dLL"), "unknown unit 'mg/dLL'"),
        (("unit: mg/dL", "unit: furlong"), "unknown unit 'furlong'"),
        (("unit: mg/dL", 'unit: "mg{"'), "unknown unit 'mg{'"),
    ],
)
def test_observation_units_are_ucum(change: tuple[str, str], message: str) -> None:
    issue = only(changed(change))
    assert issue.code == "PA311"
    assert message in issue.message


def test_a_ucum_annotation_alone_is_the_unit_one() -> None:
    # US Core writes a T-score's unit as {T-Score}: an annotation, read as the unit 1.
    assert not check_policy_text(changed(("unit: mg/dL", 'unit: "{T-score}"'))).errors


def test_a_known_measure_needs_a_unit_of_its_kind() -> None:
    issue = only(changed(('codes: ["17861-6"]', 'codes: ["29463-7"]')))
    assert issue.code == "PA311"
    assert "'mg/dL' is not a unit of body weight" in issue.message


def test_an_answer_unit_is_ucum() -> None:
    text = changed(("    type: choice\n", "    type: number\n    unit: percent\n"))
    text = text.replace("    choices: [none, A, B]\n", "")
    found = [i for i in issues(text) if i.code == "PA311"]
    assert found and "unknown unit 'percent'" in found[0].message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    absent: \"false\"\n", "    system: icd10\n    absent: \"false\"\n"),
         "unknown code system 'icd10' (did you mean 'icd-10-cm'"),
        (("    absent: \"false\"\n", "    system: http://hl7.org/fhir/sid/icd-10-cm\n"
                                        "    absent: \"false\"\n"),
         "write the code system by its short name: 'icd-10-cm'"),
    ],
)  # fmt: skip
def test_code_systems_are_known_short_names(change: tuple[str, str], message: str) -> None:
    issue = only(changed(change))
    assert issue.code == "PA312"
    assert message in issue.message


def test_a_code_must_look_like_its_system() -> None:
    issue = only(changed(('codes: ["C50.*"]', 'codes: ["C50.*", "174.9"]')))
    assert (issue.code, issue.path) == ("PA313", "facts.breast_cancer.codes[1]")


def test_two_drugs_cannot_claim_one_code() -> None:
    text = changed(
        (
            "    billing: {code: J1234, mg_per_unit: 1}\n",
            "    billing: {code: J1234, mg_per_unit: 1}\n"
            "  - {name: Other, generic_name: other, hcpcs: [J1234]}\n",
        )
    )
    assert only(text).code == "PA314"


def test_a_preferred_product_fact_needs_a_preferred_drug() -> None:
    text = changed(
        (
            "indications:",
            "  preferred:\n    kind: product\n    question: \"Which product?\"\nindications:",
        ),
        ("{id: C, text: Calcium, fact: calcium, at_least: 8.5}",
         "{id: C, text: Calcium, fact: calcium, at_least: 8.5}\n"
         "        - {id: D, text: Preferred, fact: preferred}"),
    )  # fmt: skip
    assert only(text).code == "PA315"
    fixed = text.replace("    hcpcs: [J1234]\n", "    hcpcs: [J1234]\n    preferred: true\n", 1)
    assert issues(fixed) == []


# --- lint ----------------------------------------------------------------------------------------


def test_lint_warns_and_still_loads() -> None:
    text = changed(
        ("indications:", "  spare:\n    kind: age\n    question: How old\nindications:"),
        ("agent_classes:\n", "agent_classes:\n  unused:\n    agents: [docetaxel]\n"),
        ("regimens: [A, B]", "regimens: [A]"),
        ("    billing: {code: J1234", "    billing: {code: J9999"),
    )
    result = check_policy_text(text)
    assert result.value is not None
    assert {i.code for i in result.issues} == {"PA401", "PA402", "PA404", "PA405", "PA406"}
    assert all(i.severity == "warning" for i in result.issues)


# --- the command ---------------------------------------------------------------------------------


def test_cli_prints_file_line_code_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "demo.yaml"
    bad.write_text(changed(("    kind: observation", "    kind: observaton")))
    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 1
    line = line_of(bad.read_text(), "observaton")
    assert (
        f"{bad}:{line}: error PA201 at facts.calcium.kind: unknown fact kind 'observaton' "
        "(did you mean 'observation'?)"
    ) in result.output


def test_cli_yaml_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "demo.yaml"
    bad.write_text("id: x\ntitle: [unclosed\nversion: 1\n")
    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"{bad}:3: error PA101: not valid YAML at column 8: a [ list ] is not closed, or its "
        "items lack commas (the [ list begins on line 2)"
    ]


def test_cli_checks_a_folder_with_its_case_files(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(MINIMAL)
    (tmp_path / "tests").mkdir()
    cases = tmp_path / "tests" / "demo.cases.yaml"
    cases.write_text(
        "as_of: 2026-01-01\ncases:\n  - name: x\n    expect: {outcome: approved, "
        "criteria: {Z: met}}\n"
    )
    result = runner.invoke(app, ["policy", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'demo.yaml'}: ok" in result.output
    assert "PT304 at cases[0].expect.criteria.Z: policy demo has no criterion 'Z'" in result.output


def test_cli_validates_the_shipped_policy_folder() -> None:
    result = runner.invoke(app, ["policy", "validate", str(ROOT / "policies")])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    data = sorted((ROOT / "policies").glob("*.data.yaml"))
    # Each policy, its cases, each safety data file and the drug vocabulary.
    assert result.output.count(": ok (") == len(SHIPPED) * 2 + len(data) + 1
    assert "policies/vocabulary/drugs.yaml: ok (drug-vocabulary" in result.output
