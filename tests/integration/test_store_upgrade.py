"""Migration 0006 on a real database written by the version before the general request contract
(tests/data/store-0005.json): stored requests convert, decide as they did, and their cases carry
on; the audit chain holds and says what was rewritten."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Date, DateTime, MetaData, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from priorauth.adapters.store import Database
from priorauth.adapters.store.database import MIGRATIONS
from priorauth.engine.determination import Determination
from priorauth.engine.request import parse_request
from priorauth.entrypoints.cli import app as cli
from priorauth.service.config import Settings
from priorauth.service.errors import Conflict, Invalid
from priorauth.service.integrity import verify_trail
from priorauth.service.runtime import open_service
from priorauth.service.workflow import Decision, PriorAuthService
from tests.service_fixtures import (
    BACKENDS,
    ROOT,
    TOKENS,
    Clock,
    database_url,
    drop_append_only_guards,
)

STORE: dict[str, list[dict[str, Any]]] = json.loads(
    (ROOT / "tests" / "data" / "store-0005.json").read_text(encoding="utf-8")
)
CASES = {row["request_id"]: row for row in STORE["cases"]}


def _alembic(database: Database, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _load(database: Database) -> None:
    """The dumped rows, inserted as they were (times and dates read back from their text)."""
    metadata = MetaData()
    with database.engine.begin() as connection:
        metadata.reflect(connection)
        for name, rows in STORE.items():
            table = metadata.tables[name]
            parse = {
                c.name: dt.date.fromisoformat
                if isinstance(c.type, Date)
                else dt.datetime.fromisoformat
                for c in table.columns
                if isinstance(c.type, Date | DateTime)
            }
            values = [
                {k: parse[k](v) if k in parse and v is not None else v for k, v in row.items()}
                for row in rows
            ]
            connection.execute(table.insert(), values)
            if database.dialect == "postgresql" and table.c.id.autoincrement is not False:
                # Rows came with their ids: the sequence carries on after them.
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                connection.execute(text(f"SELECT setval({sequence}, max(id)) FROM {name}"))


@pytest.fixture(params=BACKENDS)
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database at revision 0005 holding the old version's rows; its URL."""
    url = database_url(request.param, tmp_path)
    database = Database(url)
    _alembic(database, "upgrade", "0005")
    _load(database)
    database.dispose()
    return url


@pytest.fixture
def upgraded(old_store: str) -> Iterator[PriorAuthService]:
    """The service on the old database: opening it migrates it to the newest revision."""
    service = open_service(Settings(database_url=old_store, policy_dir=ROOT / "policies"), Clock())
    yield service
    service.close()


def _rows(service: PriorAuthService, query: str) -> list[Any]:
    with service.database.engine.connect() as connection:
        return list(connection.execute(text(query)))


def _sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_stored_requests_convert_and_decide_as_they_did(upgraded: PriorAuthService) -> None:
    cases = {r.id: r for r in _rows(upgraded, "SELECT * FROM cases ORDER BY id")}
    determinations = _rows(upgraded, "SELECT * FROM determinations ORDER BY id")
    old_determinations = {row["id"]: row for row in STORE["determinations"]}
    assert len(cases) == 10 and len(determinations) == 11
    for row in determinations:
        request = json.loads(row.request_json)
        assert "drug" not in request and "service" in request
        parse_request(request)
        stored = Determination.model_validate(json.loads(row.determination_json))
        before = old_determinations[row.id]
        # The hash of the body decided on is kept (the body itself is converted).
        assert row.request_hash == before["request_hash"] == stored.request_hash
        assert row.request_hash == _sha256(before["request_json"])
        # The current engine decides the converted request as the old one decided the old.
        again = upgraded.policies.evaluate(request, as_of=stored.as_of)
        assert (again.outcome, again.reasons, again.route) == (
            stored.outcome,
            stored.reasons,
            stored.route,
        ), request["request_id"]
        if stored.authorization is not None:
            assert again.authorization is not None
            assert again.authorization.units == stored.authorization.units
            assert again.authorization.doses == stored.authorization.doses
    for case in cases.values():
        request = json.loads(case.request_json)
        parse_request(request)
        # The idempotency hash follows the converted body.
        submission = {
            "line_of_business": case.line_of_business,
            "member_id": case.member_id,
            "request": request,
        }
        assert case.submission_hash == _sha256(
            json.dumps(submission, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        )
    # The FHIR-mapped request's sources name the fields their values moved to.
    sources = json.loads(cases[10].request_json)["sources"]
    assert sources["service.code"].endswith("productOrService.coding[0]")
    assert sources["observations[0].date"] == "Observation/alt-1.effectiveDateTime"
    assert not [key for key in sources if key.split(".")[0] in ("drug", "labs", "regimen")]


def test_the_audit_chain_holds_and_records_each_rewrite(upgraded: PriorAuthService) -> None:
    count, broken = upgraded.verify_audit()
    assert broken is None and count > len(STORE["audit_events"])
    events = _rows(upgraded, "SELECT * FROM audit_events WHERE action = 'request.upgraded'")
    old_cases = {row["case_id"]: row for row in STORE["cases"]}
    assert {e.case_id for e in events} == set(old_cases)
    assert {e.actor for e in events} == {"system"}
    for event in events:
        detail = json.loads(event.detail_json)
        assert detail["revision"] == "0006"
        assert detail["request"]["before"] == _sha256(old_cases[event.case_id]["request_json"])
    # The case where information was added holds two determinations, each rewritten.
    added = next(e for e in events if e.case_id == CASES["PA-2026-000106"]["case_id"])
    assert len(json.loads(added.detail_json)["determinations"]) == 2
    # The append-only guard is back on.
    with pytest.raises(DBAPIError, match="append-only"), upgraded.database.engine.begin() as c:
        c.execute(text("UPDATE determinations SET outcome = 'approved'"))


def test_cases_from_before_the_upgrade_carry_on(upgraded: PriorAuthService) -> None:
    clinic = upgraded.authenticate(TOKENS["clinic"])
    # The appeal filed before the upgrade is decided by the other medical director.
    appealed = CASES["PA-2026-000104"]["case_id"]
    decided = upgraded.decide(upgraded.authenticate(TOKENS["md2"]), appealed, Decision("approve"))
    assert decided["status"] == "approved"
    [authorization] = decided["authorizations"]
    assert authorization["source"] == "appeal"
    assert authorization["regimen"]["as_requested"]["dose"] == {"value": 40, "unit": "mg/m2"}
    # A dose-rule denial names a check of the stored (converted) determination.
    pended = CASES["PA-2026-000110"]["case_id"]
    pharmacist = upgraded.authenticate(TOKENS["pharmacist"])
    with pytest.raises(Invalid, match="not a dose rule checked"):
        upgraded.decide(pharmacist, pended, Decision("deny", "x", dose_rule="Z"))
    upgraded.decide(pharmacist, pended, Decision("request-info", "Liver function?"))
    # Information asked for before the upgrade is added in the new shape and decided at once.
    asked = CASES["PA-2026-000108"]["case_id"]
    answered = upgraded.add_information(
        clinic,
        asked,
        {"answers": {"metastatic": True, "recurrent_unresectable_locoregional": None}},
    )
    assert answered["status"] == "approved", answered["determination"]["reasons"]
    record = upgraded.read(clinic, asked)
    assert [d["outcome"] for d in record["determinations"]] == ["pended", "approved"]
    assert record["request"]["observations"][0] == {"code": "8302-2", "value": 163, "unit": "cm"}


def test_a_stored_request_sent_again(upgraded: PriorAuthService) -> None:
    clinic = upgraded.authenticate(TOKENS["clinic"])
    stored = CASES["PA-2026-000101"]
    converted = json.loads(
        _rows(upgraded, f"SELECT request_json FROM cases WHERE id = {stored['id']}")[0].request_json
    )
    # The converted body is the same body: the same case, decided once.
    again = upgraded.submit(clinic, converted, stored["member_id"])
    assert not again.created and again.case["case_id"] == stored["case_id"]
    # The old body no longer reads: a 422 naming its old fields, before any look-up.
    with pytest.raises(Invalid) as refused:
        upgraded.submit(clinic, json.loads(stored["request_json"]), stored["member_id"])
    fields = {p.field for p in refused.value.problems}
    assert {"request.drug", "request.regimen"} <= fields
    # Another body under the same request_id is a conflict, as before.
    changed = {**converted, "answers": {"metastatic": False}}
    with pytest.raises(Conflict, match="different body"):
        upgraded.submit(clinic, changed, stored["member_id"])


def test_replay_of_a_determination_made_under_the_old_policy_model(
    upgraded: PriorAuthService, old_store: str
) -> None:
    [result] = upgraded.replay("PA-2026-000101")
    assert not result.same
    assert result.differences == ()
    assert result.problem is not None
    assert result.problem.startswith("the recorded policy version no longer loads (")
    replayed = CliRunner().invoke(cli, ["replay", "PA-2026-000101", "--database-url", old_store])
    assert replayed.exit_code == 1
    assert "NOT REPLAYED: the recorded policy version no longer loads" in replayed.output


def test_the_conversion_runs_once_and_does_not_go_back(upgraded: PriorAuthService) -> None:
    before = {
        table: _rows(upgraded, f"SELECT * FROM {table} ORDER BY id")
        for table in ("cases", "determinations", "audit_events")
    }
    # Run 0006 again over what it converted: nothing changes, no event is added.
    _alembic(upgraded.database, "stamp", "0005")
    _alembic(upgraded.database, "upgrade", "0006")
    for table, rows in before.items():
        assert _rows(upgraded, f"SELECT * FROM {table} ORDER BY id") == rows, table
    with pytest.raises(RuntimeError, match="no way back to 0005"):
        _alembic(upgraded.database, "downgrade", "0005")
    with upgraded.database.engine.connect() as connection:
        assert (
            connection.execute(
                select(text("version_num")).select_from(text("alembic_version"))
            ).scalar_one()
            == "0006"
        )


def test_the_whole_trail_verifies_after_the_upgrade(upgraded: PriorAuthService) -> None:
    """`audit verify` (chain, determinations, case states) holds on a database migrated from
    the earlier contract: the rewritten determinations and their request.upgraded events."""
    report = verify_trail(upgraded.database)
    assert report.problem is None, report.problem
    assert report.determinations > 0 and report.cases == len(STORE["cases"])
    # A rewritten determination edited afterwards is caught by the migration's record of it.
    [stored] = _rows(upgraded, "SELECT determination_json FROM determinations WHERE id = 1")
    edited = json.dumps({**json.loads(stored.determination_json), "summary": "edited"})
    with upgraded.database.engine.begin() as connection:
        drop_append_only_guards(connection)
        connection.execute(
            text("UPDATE determinations SET determination_json = :j WHERE id = 1"), {"j": edited}
        )
    report = verify_trail(upgraded.database)
    assert report.problem == "determination 1: it is not the determination its migration wrote"
