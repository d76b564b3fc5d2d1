"""The service's pure parts: merging new information, clocks, the audit chain, tokens, CSV."""

from __future__ import annotations

import datetime as dt

import pytest

from priorauth.adapters.store import AuditEventRow
from priorauth.service.audit import GENESIS, event_hash, verify_chain
from priorauth.service.config import Settings
from priorauth.service.metrics import metrics_csv
from priorauth.service.people import hash_token, new_token
from priorauth.service.workflow import canonical, deep_merge, submission_text

AT = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def test_new_information_merges_objects_and_replaces_lists() -> None:
    stored = {"patient": {"sex": "female", "height_cm": 160}, "diagnoses": ["C50.912"]}
    patch = {"patient": {"weight_kg": 60}, "diagnoses": ["C50.912", "C78.01"]}
    assert deep_merge(stored, patch) == {
        "patient": {"sex": "female", "height_cm": 160, "weight_kg": 60},
        "diagnoses": ["C50.912", "C78.01"],
    }
    assert stored["patient"] == {"sex": "female", "height_cm": 160}


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
