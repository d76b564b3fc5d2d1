"""Gold cards: the engine's exemption hook, the rates and who qualifies, the list file, the
review samples and the commands."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from priorauth import Determination, PolicySet
from priorauth.batch.goldcard import (
    DECISIONS,
    GoldCardError,
    GoldCardRules,
    evaluate_rates,
    exemption_document,
    load_exemptions,
    load_rules,
    review_sample,
)
from priorauth.batch.policies import PolicySource
from priorauth.batch.runner import decide_batch
from priorauth.batch.sources import read_items
from priorauth.engine.goldcard import ExemptionEntry, ExemptionList, recorded_exemption
from priorauth.entrypoints.cli import app
from tests.batch_helpers import ROOT, by_line, write_requests
from tests.conftest import example

runner = CliRunner()
NPI = "1234567893"  # the prescriber of the examples
OTHER_NPI = "1000000004"
FROM, THROUGH = dt.date(2026, 1, 1), dt.date(2026, 12, 31)


def with_exemption(policies: PolicySet, service: str = "ixempra", npi: str = NPI) -> PolicySet:
    entries = ExemptionList([ExemptionEntry(npi, service, FROM, THROUGH)])
    return PolicySet(
        [c.policy for c in policies.policies],
        {c.policy.id: c.safety for c in policies.policies if c.safety is not None},
        entries,
    )


def start_on(request: dict[str, Any], day: dt.date) -> dict[str, Any]:
    request["service"]["start_date"] = day.isoformat()
    return request


def test_an_exempt_prescribers_pended_request_is_approved_as_exempt(
    policies: PolicySet,
) -> None:
    request = example("04-pended-criteria-not-met-age.json")
    plain = policies.evaluate(request)
    assert plain.outcome == "pended"
    exempt = with_exemption(policies).evaluate(request)
    assert exempt.outcome == "approved"
    assert exempt.reasons == () and exempt.route is None
    assert exempt.exemption is not None
    assert exempt.exemption.program == "gold-card"
    assert (exempt.exemption.npi, exempt.exemption.service) == (NPI, "ixempra")
    assert exempt.exemption.would_pend_for == plain.reasons
    assert "Approved as exempt" in exempt.summary and "gold card" in exempt.summary
    # Everything the engine found is still there for anyone who looks.
    assert exempt.criteria == plain.criteria and exempt.facts == plain.facts
    assert exempt.request_hash == plain.request_hash
    dumped = exempt.model_dump()
    assert dumped["exemption"]["would_pend_for"] == ["criteria-not-met"]
    assert Determination.model_validate(orjson.loads(exempt.model_dump_json())) == exempt


def test_determinations_without_an_exemption_read_as_before(policies: PolicySet) -> None:
    for name in ("01-approved-every-3-weeks.json", "04-pended-criteria-not-met-age.json"):
        request = example(name)
        plain = policies.evaluate(request)
        assert "exemption" not in plain.model_dump()
        assert '"exemption"' not in plain.model_dump_json()
        # With a list that does not name the prescriber, nothing changes, byte for byte.
        other = with_exemption(policies, npi=OTHER_NPI).evaluate(request)
        assert other.model_dump_json() == plain.model_dump_json()


def test_an_approval_needs_no_exemption(policies: PolicySet) -> None:
    request = example("01-approved-every-3-weeks.json")
    assert with_exemption(policies).evaluate(request) == policies.evaluate(request)


@pytest.mark.parametrize(
    ("day", "exempt"),
    [
        (FROM - dt.timedelta(days=1), False),
        (FROM, True),
        (THROUGH, True),
        (THROUGH + dt.timedelta(days=1), False),
    ],
)
def test_the_exemption_holds_on_its_dates_inclusive(
    policies: PolicySet, day: dt.date, exempt: bool
) -> None:
    request = start_on(example("04-pended-criteria-not-met-age.json"), day)
    got = with_exemption(policies).evaluate(request)
    assert (got.outcome == "approved") is exempt
    assert (got.exemption is not None) is exempt


def test_an_exemption_for_another_service_does_not_apply(policies: PolicySet) -> None:
    request = example("04-pended-criteria-not-met-age.json")
    assert with_exemption(policies, service="eribulin").evaluate(request).outcome == "pended"


def test_a_safety_review_is_never_waived(policies: PolicySet) -> None:
    request = example("10-pended-safety-review.json")
    plain = policies.evaluate(request)
    assert "safety-review" in plain.reasons
    assert with_exemption(policies).evaluate(request) == plain


def test_a_consultants_npi_does_not_carry_the_prescribers_exemption(
    policies: PolicySet,
) -> None:
    request = example("04-pended-criteria-not-met-age.json")
    request["practitioners"] = [
        {"role": "prescriber", "npi": OTHER_NPI, "specialty": "207RX0202X"},
        {"role": "consultant", "npi": NPI, "specialty": "207RX0202X"},
    ]
    assert with_exemption(policies).evaluate(request).outcome == "pended"


def test_a_stored_exemption_replays_to_the_same_determination(policies: PolicySet) -> None:
    request = example("04-pended-criteria-not-met-age.json")
    exempt = with_exemption(policies).evaluate(request)
    stored = json.loads(exempt.model_dump_json())
    replaying = PolicySet(
        [c.policy for c in policies.policies],
        {c.policy.id: c.safety for c in policies.policies if c.safety is not None},
        recorded_exemption(stored),
    )
    assert replaying.evaluate(request, as_of=exempt.as_of).model_dump_json() == (
        exempt.model_dump_json()
    )
    assert recorded_exemption(json.loads(policies.evaluate(request).model_dump_json())) is None


# ------------------------------------------------------------------ rates and who qualifies

ON = dt.date(2027, 1, 1)


def decisions(rows: list[tuple[str, str, dt.date, bool, bool]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "npi": npi,
                "service": service,
                "decided_on": day,
                "approved": approved,
                "exempt": exempt,
                "reference": f"R-{i}",
            }
            for i, (npi, service, day, approved, exempt) in enumerate(rows)
        ],
        schema=DECISIONS,
    )


def many(npi: str, approved: int, total: int, day: dt.date = dt.date(2026, 6, 1)) -> list[Any]:
    return [(npi, "ixempra", day, i < approved, False) for i in range(total)]


def test_the_threshold_is_inclusive_and_the_volume_is_a_minimum() -> None:
    rules = GoldCardRules(threshold_percent=90, minimum_requests=10, services=["ixempra"])
    table = decisions(
        many("1000000001", 9, 10)  # 90.0%: qualifies
        + many("1000000002", 17, 19)  # 89.47%: does not
        + many("1000000003", 9, 9)  # 100% of 9: too few
    )
    rates = {r.npi: r for r in evaluate_rates(table, rules, ON)}
    assert rates["1000000001"].qualifies and rates["1000000001"].approval_percent == 90.0
    assert not rates["1000000002"].qualifies and "below 90%" in rates["1000000002"].why
    assert not rates["1000000003"].qualifies and "fewer than 10" in rates["1000000003"].why


def test_the_lookback_is_the_days_before_the_evaluation_date() -> None:
    rules = GoldCardRules(lookback_days=365, minimum_requests=1)
    last_day = ON - dt.timedelta(days=1)
    first_day = last_day - dt.timedelta(days=364)
    table = decisions(
        [
            ("1000000001", "ixempra", first_day, True, False),
            ("1000000001", "ixempra", last_day, True, False),
            ("1000000001", "ixempra", first_day - dt.timedelta(days=1), False, False),
            ("1000000001", "ixempra", ON, False, False),
        ]
    )
    (rate,) = evaluate_rates(table, rules, ON)
    assert (rate.requests, rate.approved) == (2, 2)


def test_only_covered_services_count_and_exempt_approvals_are_left_out() -> None:
    rules = GoldCardRules(minimum_requests=1, services=["ixempra"])
    table = decisions(
        [
            ("1000000001", "ixempra", dt.date(2026, 5, 1), True, False),
            ("1000000001", "ixempra", dt.date(2026, 5, 2), True, True),
            ("1000000001", "eribulin", dt.date(2026, 5, 3), True, False),
        ]
    )
    (rate,) = evaluate_rates(table, rules, ON)
    assert (rate.service, rate.requests) == ("ixempra", 1)
    everything = GoldCardRules(minimum_requests=1)
    assert {r.service for r in evaluate_rates(table, everything, ON)} == {"ixempra", "eribulin"}


def test_the_exemption_list_round_trips_through_its_file(tmp_path: Path) -> None:
    rules = GoldCardRules(minimum_requests=5, exemption_days=365)
    table = decisions(many("1000000001", 10, 10) + many("1000000002", 1, 10))
    document = exemption_document(evaluate_rates(table, rules, ON), rules, ON)
    assert [e["npi"] for e in document["exemptions"]] == ["1000000001"]
    assert document["exemptions"][0]["effective_through"] == "2027-12-31"
    path = tmp_path / "exemptions.yaml"
    path.write_text(yaml.safe_dump(document))
    loaded = load_exemptions(path)
    assert loaded.find("1000000001", "ixempra", dt.date(2027, 12, 31)) is not None
    assert loaded.find("1000000001", "ixempra", dt.date(2028, 1, 1)) is None
    assert loaded.find("1000000002", "ixempra", dt.date(2027, 6, 1)) is None


def test_rules_and_lists_that_cannot_be_used_name_the_field(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("threshold_percent: 120\nlookbak_days: 30\n")
    with pytest.raises(GoldCardError) as caught:
        load_rules(rules)
    assert "threshold_percent" in str(caught.value) and "lookbak_days" in str(caught.value)
    listed = tmp_path / "list.yaml"
    listed.write_text(
        "exemptions:\n  - {npi: '123', service: x, effective_from: 2027-01-02, "
        "effective_through: 2027-01-01}\n"
    )
    with pytest.raises(GoldCardError, match="npi"):
        load_exemptions(listed)
    listed.write_text("exemptions: [\n")
    with pytest.raises(GoldCardError, match="not valid YAML"):
        load_exemptions(listed)


def test_review_samples_are_within_the_rules_and_reproducible() -> None:
    rules = GoldCardRules(review_sample={"minimum": 5, "maximum": 20})  # type: ignore[arg-type]
    exempt = [("1000000001", "ixempra", dt.date(2027, 2, 1), True, True)] * 30
    table = decisions([*exempt, ("1000000001", "ixempra", dt.date(2027, 2, 1), True, False)])
    chosen, available = review_sample(table, "1000000001", "ixempra", ON, rules, 50, seed=1)
    assert (len(chosen), available) == (20, 30)
    assert chosen == review_sample(table, "1000000001", "ixempra", ON, rules, 50, seed=1)[0]
    assert len(review_sample(table, "1000000001", "ixempra", ON, rules, 2)[0]) == 5
    few = decisions(exempt[:3])
    assert review_sample(few, "1000000001", "ixempra", ON, rules)[0] == ["R-0", "R-1", "R-2"]
    later = review_sample(table, "1000000001", "ixempra", dt.date(2027, 3, 1), rules)
    assert later == ([], 0)


# ------------------------------------------------------------------ batch and commands


def test_a_batch_with_an_exemption_list_approves_as_exempt(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 120, seed=4)
    plain_out = tmp_path / "plain.parquet"
    decide_batch(read_items(source), plain_out, tmp_path / "p.err", PolicySource())
    plain = by_line(plain_out)
    npi = next(
        r["prescriber_npi"]
        for r in plain.values()
        if r["outcome"] == "pended"
        and r["policy_id"] == "ixempra"
        and r["prescriber_npi"]
        and "safety-review" not in r["reasons"]
    )
    listed = tmp_path / "exemptions.yaml"
    listed.write_text(
        yaml.safe_dump(
            {
                "exemptions": [
                    {
                        "npi": npi,
                        "service": "ixempra",
                        "effective_from": "2000-01-01",
                        "effective_through": "2199-12-31",
                    }
                ]
            }
        )
    )
    exempt_out = tmp_path / "exempt.parquet"
    decide_batch(
        read_items(source),
        exempt_out,
        tmp_path / "e.err",
        PolicySource(exemptions=str(listed)),
    )
    exempt = by_line(exempt_out)
    for line, before in plain.items():
        after = exempt[line]
        waived = (
            before["prescriber_npi"] == npi
            and before["policy_id"] == "ixempra"
            and before["outcome"] == "pended"
            and "safety-review" not in before["reasons"]
        )
        if waived:
            assert (after["outcome"], after["exemption"]) == ("approved", "gold-card")
        else:
            assert after == before


def test_goldcard_commands(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "r.jsonl", 300, seed=8)
    history = tmp_path / "h.parquet"
    decide_batch(read_items(source), history, tmp_path / "h.err", PolicySource())
    rules = tmp_path / "rules.yaml"
    rules.write_text("threshold_percent: 40\nminimum_requests: 3\nservices: [ixempra, eribulin]\n")
    listed = tmp_path / "exemptions.yaml"
    result = runner.invoke(
        app,
        [
            "goldcard",
            "evaluate",
            "--rules",
            str(rules),
            "--on",
            "2026-12-01",
            "--history",
            str(history),
            "-o",
            str(listed),
            "--all",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "provider-service pair(s) qualify" in result.stdout
    document = yaml.safe_load(listed.read_text())
    assert document["exemptions"], result.stdout
    assert all(e["approval_percent"] >= 40 for e in document["exemptions"])
    shown = runner.invoke(app, ["goldcard", "show", str(listed), "--on", "2027-06-01"])
    assert shown.exit_code == 0, shown.output
    assert document["exemptions"][0]["npi"] in shown.stdout
    sample = runner.invoke(
        app,
        [
            "goldcard",
            "sample",
            "--rules",
            str(rules),
            "--npi",
            "1000000004",
            "--service",
            "ixempra",
            "--since",
            "2026-01-01",
            "--history",
            str(history),
        ],
    )
    assert sample.exit_code == 0, sample.output
    assert "0 of 0 request(s) approved as exempt" in sample.stdout
    bad = runner.invoke(
        app, ["goldcard", "evaluate", "--rules", str(tmp_path / "none.yaml"), "--on", "2027-01-01"]
    )
    assert bad.exit_code == 2 and "cannot read" in bad.stderr


def test_the_shipped_policies_are_untouched_by_the_hook() -> None:
    assert PolicySet.from_directory(ROOT / "policies").exemptions is None


# ------------------------------------------------------------------ a property of the hook

EXAMPLE_FILES = sorted(p.name for p in (ROOT / "examples").glob("*.json"))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(EXAMPLE_FILES),
    # Mostly the request's own policy, prescriber and a period around its service date, so
    # that both branches are well exercised; else another policy, NPI or period.
    own_service=st.booleans() | st.just(True),
    other_service=st.sampled_from(["ixempra", "eribulin", "infliximab", "denosumab", "x"]),
    own_npi=st.booleans() | st.just(True),
    offset=st.integers(-30, 400),
    days=st.integers(0, 400),
)
def test_the_hook_changes_only_the_decision_and_only_when_it_may(
    policies: PolicySet,
    name: str,
    own_service: bool,
    other_service: str,
    own_npi: bool,
    offset: int,
    days: int,
) -> None:
    request = example(name)
    plain = policies.evaluate(request)
    service = plain.policy.id if own_service and plain.policy else other_service
    listed_npi = NPI if own_npi else OTHER_NPI
    start = plain.service_date - dt.timedelta(days=offset)
    entries = ExemptionList(
        [ExemptionEntry(listed_npi, service, start, start + dt.timedelta(days=days))]
    )
    listed = PolicySet(
        [c.policy for c in policies.policies],
        {c.policy.id: c.safety for c in policies.policies if c.safety is not None},
        entries,
    )
    got = listed.evaluate(request)
    prescribers = {
        p.get("npi")
        for p in request.get("practitioners", [])
        if p.get("role", "prescriber") == "prescriber"
    }
    may = (
        plain.outcome == "pended"
        and plain.policy is not None
        and plain.policy.id == service
        and listed_npi in prescribers
        and start <= plain.service_date <= start + dt.timedelta(days=days)
        and "safety-review" not in plain.reasons
    )
    event("approved as exempt" if may else "unchanged")
    if not may:
        assert got.model_dump_json() == plain.model_dump_json()
        return
    assert got.outcome == "approved" and got.exemption is not None
    assert got.exemption.would_pend_for == plain.reasons
    before, after = plain.model_dump(), got.model_dump()
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed == {"outcome", "reasons", "route", "summary", "exemption"}
