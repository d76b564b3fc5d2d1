"""The batch commands over the store (SQLite, and PostgreSQL when configured): batch decide
--from-store, impact --from-store, gold cards from final decisions and in the service, and the
yearly report."""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from typer.testing import CliRunner

from priorauth.batch.goldcard import GoldCardRules, decisions_from_store, evaluate_rates
from priorauth.entrypoints.cli import app
from priorauth.service.runtime import open_service
from priorauth.service.workflow import Decision
from tests.batch_helpers import new_ixempra
from tests.conftest import example
from tests.service_fixtures import ROOT, TOKENS, Env

runner = CliRunner()
NPI = "1234567893"


def _history(env: Env) -> dict[str, str]:
    """Four cases: two approved by the engine, one denied by a medical director (after
    being pended), one pended and still open. Returns case ids by name."""
    clinic = env.service.authenticate(TOKENS["clinic"])
    md = env.service.authenticate(TOKENS["md1"])
    cases = {}
    for name, file in (
        ("approved", "01-approved-every-3-weeks.json"),
        ("weekly", "02-approved-weekly-mg-dose.json"),
        ("denied", "04-pended-criteria-not-met-age.json"),
        ("open", "06-pended-missing-information.json"),
    ):
        cases[name] = env.service.submit(clinic, example(file), f"M-{name}").case["case_id"]
        env.clock.advance(hours=2)
    env.service.read(md, cases["denied"])
    env.service.decide(md, cases["denied"], Decision("deny", "Under 18.", criterion="A"))
    return cases


def test_batch_decide_from_the_store_matches_the_stored_determinations(
    env: Env, tmp_path: Path
) -> None:
    _history(env)
    output = tmp_path / "store.parquet"
    result = runner.invoke(
        app,
        [
            "batch",
            "decide",
            "--from-store",
            "--database-url",
            env.url,
            "-o",
            str(output),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(output).to_pylist()
    assert len(rows) == 4
    with env.service.database.engine.connect() as connection:
        from sqlalchemy import text

        stored = dict(
            connection.execute(
                text("SELECT case_pk, determination_json FROM determinations ORDER BY id")
            ).all()
        )
    # Decided again as of each case's received date, under the same policies: the same JSON.
    assert {r["line"]: r["determination_json"] for r in rows} == stored


def test_impact_from_the_store(env: Env, tmp_path: Path) -> None:
    _history(env)
    new = new_ixempra(tmp_path / "new", age=18, max_dose=10)
    report_file = tmp_path / "impact.json"
    result = runner.invoke(
        app,
        [
            "impact",
            "--policy",
            str(new),
            "--from-store",
            "--database-url",
            env.url,
            "--json",
            str(report_file),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_file.read_text())
    assert report["compared"] == 4
    # At most 10 mg/m2 a dose in the 3-weekly regimen: its approval now pends as a dose
    # exception, and the request pended for its criteria is now a dose exception too; the
    # weekly one (another regimen) and the one missing information are unchanged.
    assert [
        (
            c["old_outcome"],
            c["new_outcome"],
            c["new_reasons"],
            [r["request_id"] for r in c["cases"]],
        )
        for c in report["changes"]
    ] == [
        ("approved", "pended", ["dose-exception"], ["PA-2026-000101"]),
        ("pended", "pended", ["criteria-not-met", "dose-exception"], ["PA-2026-000104"]),
    ]


def test_gold_cards_count_final_decisions_and_the_service_applies_them(
    env: Env, tmp_path: Path
) -> None:
    _history(env)
    table = decisions_from_store(env.url)
    # The open case is not a decision; the denial is.
    assert sorted(table.column("approved").to_pylist()) == [False, True, True]
    on = env.clock.now.date() + dt.timedelta(days=1)
    rules = GoldCardRules(threshold_percent=50, minimum_requests=2, services=["ixempra"])
    rates = {r.npi: r for r in evaluate_rates(table, rules, on)}
    # The examples' prescriber: one approved, one denied (the open case does not count).
    assert (rates[NPI].requests, rates[NPI].approved, rates[NPI].qualifies) == (2, 1, True)
    # The weekly example's prescriber: one approval, fewer than the minimum.
    assert (rates["1245319599"].requests, rates["1245319599"].qualifies) == (1, False)

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules.model_dump(mode="json")))
    listed = tmp_path / "exemptions.yaml"
    result = runner.invoke(
        app,
        [
            "goldcard",
            "evaluate",
            "--rules",
            str(rules_file),
            "--on",
            on.isoformat(),
            "--database-url",
            env.url,
            "-o",
            str(listed),
        ],
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(listed.read_text())["exemptions"][0]["npi"] == NPI

    # The service with the list: a request that would pend is approved as exempt, once the
    # exemption is in effect (the service date is in it), and replays the same.
    service = open_service(replace(env.service.settings, goldcard_exemptions=listed), env.clock)
    try:
        clinic = service.authenticate(TOKENS["clinic"])
        request = example("04-pended-criteria-not-met-age.json")
        request["request_id"] = "PA-GOLD-1"
        request["service"]["start_date"] = on.isoformat()
        submitted = service.submit(clinic, request, "M-gold")
        assert submitted.case["status"] == "approved"
        assert submitted.determination is not None
        assert submitted.determination.exemption is not None
        assert submitted.determination.exemption.would_pend_for == ("criteria-not-met",)
        assert [r.same for r in service.replay("PA-GOLD-1")] == [True]
        before = example("04-pended-criteria-not-met-age.json")
        before["request_id"] = "PA-GOLD-2"
        before["service"]["start_date"] = (on - dt.timedelta(days=1)).isoformat()
        assert service.submit(clinic, before, "M-gold-2").case["status"] == "pended"
    finally:
        service.close()


def test_yearly_report_from_the_store(env: Env, tmp_path: Path) -> None:
    _history(env)
    result = runner.invoke(
        app,
        ["report", "yearly", "--year", "2026", "--out", str(tmp_path), "--database-url", env.url],
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "prior-authorization-2026-figures.csv").open() as handle:
        figures = list(csv.DictReader(handle))
    assert [f["figure"] for f in figures] == ["1", "2", "3", "4", "5", "6", "7", "7", "8", "8"]
    first = figures[0]
    # Standard: one approved by the engine, one denied by a medical director (the open case
    # is not decided). Expedited: the weekly example, approved.
    assert (first["numerator"], first["denominator"], first["value"]) == ("1", "2", "50.0")
    assert (figures[1]["numerator"], figures[1]["value"]) == ("1", "50.0")
    assert (figures[4]["numerator"], figures[4]["denominator"], figures[4]["value"]) == (
        "1",
        "1",
        "100.0",
    )
    assert figures[5]["value"] == "0.0"
    # Nothing was appealed or extended.
    assert (figures[2]["value"], figures[3]["value"]) == ("0.0", "0.0")
    # Two hours apart in the clock, each decided at once by the engine, the denial later.
    assert float(figures[6]["value"]) > 0
    with (tmp_path / "prior-authorization-2026-items.csv").open() as handle:
        items = list(csv.DictReader(handle))
    assert {i["policy_id"] for i in items} == {"denosumab", "eribulin", "infliximab", "ixempra"}
    assert any("J9207" in i["hcpcs"] for i in items)
    html = (tmp_path / "prior-authorization-2026.html").read_text()
    assert "<svg" in html and "J9207" in html and "<script" not in html
    assert "1. Standard requests approved: 50 %" in result.stdout
    empty = runner.invoke(
        app,
        ["report", "yearly", "--year", "2025", "--out", str(tmp_path), "--database-url", env.url],
    )
    assert empty.exit_code == 0 and "1. Standard requests approved: -" in empty.stdout
    assert ROOT.exists()
