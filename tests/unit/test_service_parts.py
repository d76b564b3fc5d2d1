"""The service's pure parts: merging new information, clocks, the audit chain, tokens, CSV."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from priorauth.adapters.store import AuditEventRow
from priorauth.service.audit import GENESIS, event_hash, verify_chain
from priorauth.service.config import Settings
from priorauth.service.metrics import metrics_csv
from priorauth.service.overlay import overlay
from priorauth.service.people import hash_token, new_token
from priorauth.service.workflow import canonical, submission_text

AT = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def test_new_information_merges_objects_and_the_records_lists_entry_by_entry() -> None:
    stored = {
        "patient": {"sex": "female", "birth_date": "1970-09-09"},
        "service": {"code": "J9207", "with": ["capecitabine"]},
        "conditions": ["C50.911", {"code": "C77.3", "status": "active"}],
        "observations": [
            {"code": "8302-2", "value": 160, "unit": "cm"},
            {"code": "751-8", "value": 1200, "unit": "/uL", "date": "2026-11-01"},
        ],
        "practitioners": [{"role": "prescriber", "npi": "1234567893"}],
        "answers": {"metastatic": None},
    }
    patch = {
        "patient": {"pregnant": False},
        "service": {"with": []},
        # The same code spelt otherwise is the same condition; a new one is added.
        "conditions": [{"code": "c50911", "status": "recurrence"}, "C78.01"],
        # The same undated height is corrected; a count on another date is added to the first.
        "observations": [
            {"code": "8302-2", "value": 165, "unit": "cm"},
            {"code": "751-8", "value": 1800, "unit": "/uL", "date": "2026-11-20"},
        ],
        "practitioners": [
            {"role": "prescriber", "specialty": "207RX0202X"},
            {"role": "consultant", "npi": "1245319599"},
        ],
        "answers": {"metastatic": True},
    }
    before = copy.deepcopy(stored)
    assert overlay(stored, patch) == {
        "patient": {"sex": "female", "birth_date": "1970-09-09", "pregnant": False},
        "service": {"code": "J9207", "with": []},
        "conditions": [
            {"code": "c50911", "status": "recurrence"},
            {"code": "C77.3", "status": "active"},
            "C78.01",
        ],
        "observations": [
            {"code": "8302-2", "value": 165, "unit": "cm"},
            {"code": "751-8", "value": 1200, "unit": "/uL", "date": "2026-11-01"},
            {"code": "751-8", "value": 1800, "unit": "/uL", "date": "2026-11-20"},
        ],
        "practitioners": [
            {"role": "prescriber", "npi": "1234567893", "specialty": "207RX0202X"},
            {"role": "consultant", "npi": "1245319599"},
        ],
        "answers": {"metastatic": True},
    }
    assert stored == before, "the stored request is not changed"


def test_medications_and_allergies_merge_by_code_or_name() -> None:
    stored = {
        "medications": [
            "ondansetron",
            {"name": "paclitaxel", "status": "completed", "start_date": "2024-01-10"},
            {"code": "6135", "system": "rxnorm", "status": "active"},
        ],
        "allergies": [{"name": "Penicillin"}],
    }
    patch = {
        "medications": [
            # The same course: what is new about it is laid over it.
            {"name": "Paclitaxel", "start_date": "2024-01-10", "progressed_on_therapy": True},
            # Another course of the same agent is its own entry.
            {"name": "paclitaxel", "status": "completed", "start_date": "2025-03-01"},
            {"code": "6135", "system": "RxNorm", "status": "stopped"},
        ],
        "allergies": [{"name": "penicillin", "severity": "severe"}, "latex"],
    }
    merged = overlay(stored, patch)
    assert merged["medications"] == [
        "ondansetron",
        {
            "name": "Paclitaxel",
            "status": "completed",
            "start_date": "2024-01-10",
            "progressed_on_therapy": True,
        },
        {"code": "6135", "system": "RxNorm", "status": "stopped"},
        {"name": "paclitaxel", "status": "completed", "start_date": "2025-03-01"},
    ]
    assert merged["allergies"] == [{"name": "penicillin", "severity": "severe"}, "latex"]
    # What the contract cannot read is left for its parse to name, not merged or dropped.
    assert overlay({"conditions": ["C50.911"]}, {"conditions": [7]}) == {
        "conditions": ["C50.911", 7]
    }
    assert overlay({"conditions": ["C50.911"]}, {"conditions": None}) == {"conditions": None}


def test_clocks_come_from_configuration() -> None:
    default = Settings()
    assert default.clock("medicare-advantage", "standard") == dt.timedelta(days=7)
    assert default.clock("medicare-advantage", "expedited") == dt.timedelta(hours=72)
    assert default.clock("unknown-line", "expedited") == dt.timedelta(hours=72)
    configured = Settings.from_env(
        {"PRIORAUTH_CLOCKS": '{"part-b": {"standard": 72, "expedited": 24}}'}
    )
    assert configured.clock("part-b", "expedited") == dt.timedelta(hours=24)
    assert configured.clock("medicare-advantage", "standard") == dt.timedelta(days=7)
    assert configured.database_url == "sqlite:///var/priorauth.db"


def _chain(length: int) -> list[AuditEventRow]:
    events = []
    prev = GENESIS
    for n in range(1, length + 1):
        detail = f'{{"n":{n}}}'
        digest = event_hash(n, AT, "someone", "request.read", "c1", detail, prev)
        events.append(
            AuditEventRow(
                id=n,
                at=AT,
                actor="someone",
                action="request.read",
                case_id="c1",
                detail_json=detail,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    return events


def test_the_audit_chain_names_the_first_broken_event() -> None:
    events = _chain(5)
    assert verify_chain(events) == (5, None)
    events[2].action = "request.decided"
    count, broken = verify_chain(events)
    assert broken is not None and broken.event_id == 3 and count == 3
    reordered = _chain(5)
    reordered[1], reordered[2] = reordered[2], reordered[1]
    _, broken = verify_chain(reordered)
    assert broken is not None and broken.event_id == 3


def test_tokens_are_random_and_kept_as_hashes() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) > 40
    assert hash_token(first) == hash_token(first) != hash_token(second)
    assert first not in hash_token(first)


def test_metrics_csv_has_one_row_per_figure() -> None:
    text = metrics_csv({"standard": {"decided": 2, "approved_percent": None}})
    assert text.splitlines() == [
        "section,figure,value",
        "standard,decided,2",
        "standard,approved_percent,",
    ]


@pytest.mark.parametrize(
    ("member_id", "line_of_business"),
    [("M-1", "medicare-advantage"), ('M "quoted"\n', "ligne é"), ("", "")],
)
def test_the_submission_text_is_the_canonical_text_of_the_submission(
    member_id: str, line_of_business: str
) -> None:
    # The hash of a submission is kept; spelling its text from the stored request's text must
    # give the same characters as serializing the whole submission at once.
    request = {"request_id": "R-1", "z": [1, 2.5, None], "a": {"é": "ü", "b": dt.date(2026, 1, 2)}}
    whole = {"member_id": member_id, "line_of_business": line_of_business, "request": request}
    assert submission_text(member_id, line_of_business, canonical(request)) == canonical(whole)
