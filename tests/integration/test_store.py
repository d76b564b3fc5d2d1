"""The store on a real database: the audit chain, replay, concurrency, migrations, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from priorauth.adapters.store import Base
from priorauth.entrypoints.cli import app as cli
from priorauth.service.errors import Unauthenticated
from priorauth.service.runtime import load_demo
from priorauth.service.uow import UnitOfWork
from priorauth.service.workflow import Decision
from tests.conftest import example
from tests.service_fixtures import ROOT, TOKENS, Env, drop_append_only_guards


def _pended_and_decided(env: Env) -> str:
    clinic = env.service.authenticate(TOKENS["clinic"])
    md = env.service.authenticate(TOKENS["md1"])
    env.service.submit(clinic, example("01-approved-every-3-weeks.json"), "M-1")
    case = env.service.submit(clinic, example("04-pended-criteria-not-met-age.json"), "M-2")
    case_id: str = case.case["case_id"]
    env.service.read(md, case_id)
    env.service.decide(md, case_id, Decision("deny", "Under 18.", criterion="A"))
    return case_id


def test_the_audit_chain_holds_and_names_the_first_broken_event(env: Env) -> None:
    _pended_and_decided(env)
    count, broken = env.service.verify_audit()
    assert broken is None and count >= 10
    with env.service.database.engine.begin() as connection:
        drop_append_only_guards(connection)
        connection.execute(
            text("UPDATE audit_events SET actor = 'someone-else' WHERE id = :id"), {"id": 5}
        )
    _, broken = env.service.verify_audit()
    assert broken is not None and broken.event_id == 5


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM audit_events",
        "UPDATE determinations SET outcome = 'approved'",
        "DELETE FROM determinations",
    ],
)
def test_the_database_refuses_to_change_history(env: Env, statement: str) -> None:
    _pended_and_decided(env)
    with pytest.raises(DBAPIError, match="append-only"), env.service.database.engine.begin() as c:
        c.execute(text(statement))


def test_a_removed_event_breaks_the_chain(env: Env) -> None:
    _pended_and_decided(env)
    with env.service.database.engine.begin() as connection:
        drop_append_only_guards(connection)
        connection.execute(text("DELETE FROM audit_events WHERE id = 3"))
    _, broken = env.service.verify_audit()
    assert broken is not None and broken.event_id == 4


def test_replay_confirms_the_stored_determination(env: Env) -> None:
    case_id = _pended_and_decided(env)
    [result] = env.service.replay(case_id)
    assert result.same and result.policy is not None
    assert [r.same for r in env.service.replay("PA-2026-000101")] == [True]
    with env.service.database.engine.begin() as connection:
        drop_append_only_guards(connection)
        row = connection.execute(text("SELECT id, determination_json FROM determinations")).first()
        assert row is not None
        stored = json.loads(row.determination_json)
        stored["summary"] = "tampered"
        connection.execute(
            text("UPDATE determinations SET determination_json = :j WHERE id = :id"),
            {"j": json.dumps(stored), "id": row.id},
        )
    assert [r.differences for r in env.service.replay("PA-2026-000101")] == [("summary",)]


def test_concurrent_submissions_of_one_request_make_one_case(env: Env) -> None:
    clinic = env.service.authenticate(TOKENS["clinic"])
    request = example("04-pended-criteria-not-met-age.json")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: env.service.submit(clinic, request, "M-1"), range(16)))
    assert len({r.case["case_id"] for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with env.service.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM cases")).scalar_one() == 1


def test_the_migrations_build_the_models_schema(env: Env) -> None:
    with env.service.database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_service_commands(env: Env) -> None:
    runner = CliRunner()
    url = ["--database-url", env.url]
    added = runner.invoke(
        cli,
        [
            "users",
            "add",
            "dr-new",
            "--role",
            "medical-director",
            "--npi",
            "1679576722",
            "--specialty",
            "medical-oncology",
            *url,
        ],
    )
    assert added.exit_code == 0, added.output
    assert added.output.strip().startswith("pa_")
    refused = runner.invoke(cli, ["users", "add", "dr-x", "--role", "medical-director", *url])
    assert refused.exit_code == 2
    case_id = _pended_and_decided(env)
    verified = runner.invoke(cli, ["audit", "verify", *url])
    assert verified.exit_code == 0 and "intact" in verified.output
    replayed = runner.invoke(cli, ["replay", case_id, *url])
    assert replayed.exit_code == 0 and "same" in replayed.output
    metrics = runner.invoke(cli, ["metrics", "--from", "2026-01-01", "--csv", *url])
    assert metrics.exit_code == 0 and "section,figure,value" in metrics.output
    with env.service.database.engine.begin() as connection:
        drop_append_only_guards(connection)
        connection.execute(text("UPDATE audit_events SET detail_json = '{}' WHERE id = 2"))
    broken = runner.invoke(cli, ["audit", "verify", *url])
    assert broken.exit_code == 1 and "event 2" in broken.output


def test_a_unit_of_work_rolls_back_unless_committed(env: Env) -> None:
    with UnitOfWork(env.service.database) as uow:
        uow.lock_writes()
        uow.session.execute(
            text("UPDATE users SET active = :no WHERE name = 'clinic'"), {"no": False}
        )
    assert env.service.authenticate(TOKENS["clinic"]).name == "clinic"
    with UnitOfWork(env.service.database) as uow:
        uow.lock_writes()
        uow.session.execute(
            text("UPDATE users SET active = :no WHERE name = 'clinic'"), {"no": False}
        )
        uow.commit()
    with pytest.raises(Unauthenticated):
        env.service.authenticate(TOKENS["clinic"])


def test_nothing_connects_at_import() -> None:
    # An address nothing listens on: importing every entry point must not try to reach it.
    code = (
        "import priorauth.entrypoints.cli, priorauth.entrypoints.api.app, "
        "priorauth.service.workflow, priorauth.adapters.store"
    )
    env = {**os.environ, "PRIORAUTH_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert time.monotonic() - started < 30


def test_an_account_is_deactivated_and_its_token_rotated(env: Env) -> None:
    runner = CliRunner()
    url = ["--database-url", env.url]
    clinic = env.service.authenticate(TOKENS["clinic"])
    deactivated = runner.invoke(cli, ["users", "deactivate", clinic.name, *url])
    assert deactivated.exit_code == 0, deactivated.output
    with pytest.raises(Unauthenticated):
        env.service.authenticate(TOKENS["clinic"])
    listed = runner.invoke(cli, ["users", "list", *url])
    assert listed.exit_code == 0 and clinic.name in listed.output
    assert TOKENS["clinic"] not in listed.output
    # A new token brings the account back; the old one stays refused.
    rotated = runner.invoke(cli, ["users", "rotate", clinic.name, *url])
    assert rotated.exit_code == 0, rotated.output
    token = rotated.output.strip()
    assert token.startswith("pa_")
    assert env.service.authenticate(token).name == clinic.name
    with pytest.raises(Unauthenticated):
        env.service.authenticate(TOKENS["clinic"])
    unknown = runner.invoke(cli, ["users", "rotate", "nobody", *url])
    assert unknown.exit_code == 2 and "no user named 'nobody'" in unknown.output
    assert all(row["active"] for row in env.service.users())
    assert env.service.verify_audit()[1] is None
    with env.service.database.engine.connect() as connection:
        events = connection.execute(
            text("SELECT action FROM audit_events WHERE action LIKE 'user.%' ORDER BY id")
        ).scalars()
        assert [e for e in events if e != "user.added"] == [
            "user.deactivated",
            "user.token-rotated",
        ]


def test_the_demo_submits_the_examples_once_and_keeps_an_earlier_copy(
    env: Env, tmp_path: Path
) -> None:
    examples = ROOT / "examples"
    assert load_demo(env.service, examples) == len(list(examples.glob("*.json")))
    assert load_demo(env.service, examples) == 0
    # A database kept from an earlier version may hold an example's request_id with another
    # body: the demo leaves that case as it was stored, and the service starts.
    changed = example("04-pended-criteria-not-met-age.json")
    changed["answers"] = {"metastatic": True}
    (tmp_path / "04.json").write_text(json.dumps(changed))
    (tmp_path / "new.json").write_text(json.dumps({**changed, "request_id": "PA-DEMO-NEW"}))
    assert load_demo(env.service, tmp_path) == 1
    admin = env.service.authenticate(TOKENS["admin"])
    [stored] = env.service.find(admin, "PA-2026-000104")
    assert "answers" not in env.service.read(admin, stored["case_id"])["request"]
