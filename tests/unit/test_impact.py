"""`priorauth impact`: a new policy version against a batch's history, compared on DuckDB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth.batch.impact import history_from_parquet, run_impact
from priorauth.batch.impact_report import impact_html
from priorauth.batch.policies import PolicySource
from priorauth.batch.runner import decide_batch
from priorauth.batch.sources import InputError, read_items
from priorauth.entrypoints.cli import app
from tests.batch_helpers import by_line, new_ixempra, write_requests

runner = CliRunner()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    source = write_requests(folder / "requests.jsonl", 400, seed=15)
    output = folder / "history.parquet"
    decide_batch(read_items(source), output, folder / "errors.jsonl", PolicySource())
    return output


def test_the_same_version_changes_nothing(history: Path, tmp_path: Path) -> None:
    from tests.batch_helpers import ROOT

    same = ROOT / "policies" / "ixempra.yaml"
    report = run_impact(
        history_from_parquet(history, "ixempra"), "h", same, PolicySource(), tmp_path
    )
    assert report.compared > 50
    assert report.changes == [] and report.criteria == []
    assert all(old == new for old, new, _ in report.outcomes)
    assert report.error_count == 0


def test_counts_and_cases_match_a_comparison_row_by_row(history: Path, tmp_path: Path) -> None:
    new = new_ixempra(tmp_path / "new")
    report = run_impact(
        history_from_parquet(history, "ixempra"),
        "h",
        new,
        PolicySource(),
        tmp_path / "work",
        cases_per_change=10_000,
    )
    old_rows = by_line(history)
    new_rows = by_line(tmp_path / "work" / "new.parquet")
    under = {k: v for k, v in old_rows.items() if v["policy_id"] in ("ixempra", None)}
    assert report.compared == len(under) == len(new_rows)
    # The changes, worked out here row by row, against the SQL's counts and cases.
    expected: dict[tuple[str, str, str, str], list[int]] = {}
    for line, old in under.items():
        after = new_rows[line]
        if (old["outcome"], old["reasons_text"]) != (after["outcome"], after["reasons_text"]):
            key = (old["outcome"], old["reasons_text"], after["outcome"], after["reasons_text"])
            expected.setdefault(key, []).append(line)
    got = {
        (c.old_outcome, c.old_reasons, c.new_outcome, c.new_reasons): [line for line, _ in c.cases]
        for c in report.changes
    }
    assert got == {k: sorted(v) for k, v in expected.items()}
    assert all(c.requests == len(c.cases) for c in report.changes)
    # Raising the age to 40 turns criterion A from met to not met for some, and lowering the
    # dose pends some approvals as dose exceptions.
    assert any(
        k.criterion == "A" and (k.old_status, k.new_status) == ("met", "not-met")
        for k in report.criteria
    )
    assert ("approved", "", "pended", "dose-exception") in got
    flipped = {
        line
        for line, old in under.items()
        for c in old["criteria"]
        if c["id"] == "A"
        and c["status"] == "met"
        and {"id": "A", "status": "not-met"} in new_rows[line]["criteria"]
    }
    criterion_a = next(
        k
        for k in report.criteria
        if (k.criterion, k.new_status) == ("A", "not-met") and k.old_status == "met"
    )
    assert {line for line, _ in criterion_a.cases} == flipped
    # Each request is decided again as of the date it was first decided.
    assert all(new_rows[line]["as_of"] == old["as_of"] for line, old in under.items())
    versions = {(side, v) for side, _, v, _, _ in report.versions}
    assert ("old", "2026.01.14") in versions and ("new", "2027.01.01") in versions


def test_html_report_is_one_self_contained_file(history: Path, tmp_path: Path) -> None:
    report = run_impact(
        history_from_parquet(history, "ixempra"),
        "history <1>",
        new_ixempra(tmp_path / "new"),
        PolicySource(),
        tmp_path / "work",
    )
    html = impact_html(report)
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 3
    assert "history &lt;1&gt;" in html
    # Nothing is fetched: no scripts, no external links or images.
    assert not re.search(r"<script|<link|src=|https?://(?!www\.w3\.org/2000/svg)", html)
    assert "approved" in html and "dose-exception" in html


def test_cli_prints_the_tables_and_writes_html_and_json(history: Path, tmp_path: Path) -> None:
    new = new_ixempra(tmp_path / "new")
    html, data = tmp_path / "impact.html", tmp_path / "impact.json"
    result = runner.invoke(
        app,
        [
            "impact",
            "--policy",
            str(new),
            str(history),
            "--html",
            str(html),
            "--json",
            str(data),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Outcomes, old -> new" in result.stdout
    assert "Criteria whose status changed" in result.stdout
    report = json.loads(data.read_text())
    assert report["changed"] > 0
    assert report["policy"] == {
        "id": "ixempra",
        "version": "2027.01.01",
        "hash": report["policy"]["hash"],
    }
    assert f"{report['changed']:,} of {report['compared']:,} requests change" in result.stdout
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_cli_refuses_what_it_cannot_use(history: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\n")
    result = runner.invoke(app, ["impact", "--policy", str(broken), str(history)])
    assert result.exit_code == 2
    assert "the new policy does not load" in result.stderr
    new = new_ixempra(tmp_path / "new")
    not_history = write_requests(tmp_path / "r.jsonl", 3)
    result = runner.invoke(app, ["impact", "--policy", str(new), str(not_history)])
    assert result.exit_code == 2
    assert "not a Parquet file" in result.stderr
    assert "Traceback" not in result.output


def test_a_parquet_that_is_not_a_batch_output_is_named(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"request": ["{}"]}), other)
    with pytest.raises(InputError, match="not the output of `priorauth batch decide`"):
        history_from_parquet(other, "ixempra")
