"""The anchored audit trail (#16): signed checkpoints, exported and checked back, catch what the
hash chain alone does not (the last events deleted, an event rewritten with every later hash
recomputed); `audit verify` also checks every stored determination and every case's state."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from priorauth.entrypoints.cli import app as cli
from priorauth.service.audit import event_hash
from priorauth.service.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointWorker,
    export_checkpoints,
    load_key,
    make_checkpoint,
    new_key,
    public_key_hex,
    read_checkpoints,
    stored_checkpoints,
)
from priorauth.service.integrity import verify_trail
from tests.integration.test_store import _pended_and_decided
from tests.service_fixtures import Env, drop_append_only_guards

AT = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.pem"
    new_key(path)
    return path


def _tamper(env: Env, *statements: str) -> None:
    with env.service.database.engine.begin() as connection:
        drop_append_only_guards(connection)
        for statement in statements:
            connection.execute(text(statement))


def _checkpointed(env: Env, key_file: Path, tmp_path: Path) -> tuple[Path, Checkpoint]:
    """Some work, a checkpoint, more work; the checkpoints exported to a file."""
    _pended_and_decided(env)
    checkpoint = make_checkpoint(env.service.database, load_key(key_file), AT)
    _pended_and_decided_again(env)
    exported = tmp_path / "checkpoints.jsonl"
    export_checkpoints(stored_checkpoints(env.service.database), exported)
    return exported, checkpoint


def _pended_and_decided_again(env: Env) -> None:
    clinic = env.service.authenticate("t-clinic")
    request = json.loads(
        (Path(__file__).parents[2] / "examples" / "07-pended-dose-exception.json").read_text()
    )
    env.service.submit(clinic, request, "M-3")


def test_an_untouched_trail_verifies_with_its_checkpoints(
    env: Env, key_file: Path, tmp_path: Path
) -> None:
    exported, checkpoint = _checkpointed(env, key_file, tmp_path)
    assert checkpoint.signature_holds()
    [read] = read_checkpoints(exported)
    assert read == checkpoint
    report = verify_trail(env.service.database, [read], public_key_hex(load_key(key_file)))
    assert report.problem is None, report.problem
    assert report.checkpoints == 2 and report.determinations == 3 and report.cases == 3


def test_deleting_the_last_events_is_caught_by_an_exported_checkpoint(
    env: Env, key_file: Path, tmp_path: Path
) -> None:
    exported, checkpoint = _checkpointed(env, key_file, tmp_path)
    # Cut the trail back to before the checkpoint (the checkpoint event goes with it), and the
    # cases and determinations made since, so that what is left is consistent on its own.
    _tamper(
        env,
        f"DELETE FROM audit_events WHERE id >= {checkpoint.event_id}",
        "DELETE FROM determinations WHERE case_pk = (SELECT max(id) FROM cases)",
        "DELETE FROM cases WHERE id = (SELECT max(id) FROM cases)",
    )
    alone = verify_trail(env.service.database)
    assert alone.problem is not None  # the decided case's last event went too
    report = verify_trail(env.service.database, read_checkpoints(exported))
    assert report.problem is not None
    assert f"signed event {checkpoint.event_id}, which is missing" in report.problem
    assert "deleted" in report.problem


def test_a_rewritten_event_with_every_later_hash_recomputed_is_caught(
    env: Env, key_file: Path, tmp_path: Path
) -> None:
    exported, checkpoint = _checkpointed(env, key_file, tmp_path)
    with env.service.database.engine.begin() as connection:
        drop_append_only_guards(connection)
        rows = connection.execute(text("SELECT * FROM audit_events ORDER BY id")).all()
        # Event 3 gets another actor; the checkpoints stored in the chain are taken out, as a
        # careful forger would; every event is renumbered and every hash recomputed.
        kept = [row for row in rows if row.action != "audit.checkpoint"]
        connection.execute(text("DELETE FROM audit_events"))
        previous = "0" * 64
        for number, row in enumerate(kept, start=1):
            actor = "someone-else" if number == 3 else row.actor
            at = row.at if isinstance(row.at, dt.datetime) else dt.datetime.fromisoformat(row.at)
            at = at.replace(tzinfo=dt.UTC)
            digest = event_hash(
                number, at, actor, row.action, row.case_id, row.detail_json, previous
            )
            connection.execute(
                text(
                    "INSERT INTO audit_events (id, at, actor, action, case_id, detail_json, "
                    "prev_hash, hash) VALUES (:id, :at, :actor, :action, :case_id, :detail, "
                    ":prev, :hash)"
                ),
                {
                    "id": number,
                    "at": at.replace(tzinfo=None),
                    "actor": actor,
                    "action": row.action,
                    "case_id": row.case_id,
                    "detail": row.detail_json,
                    "prev": previous,
                    "hash": digest,
                },
            )
            previous = digest
    # On its own the rewritten trail holds together ...
    assert verify_trail(env.service.database).problem is None
    # ... but not against the checkpoint kept elsewhere.
    report = verify_trail(env.service.database, read_checkpoints(exported))
    assert report.problem is not None
    assert "exported checkpoint" in report.problem
    assert f"event {checkpoint.event_id}" in report.problem


def test_a_rewritten_chain_is_caught_by_the_checkpoint_stored_in_it(
    env: Env, key_file: Path, tmp_path: Path
) -> None:
    _checkpointed(env, key_file, tmp_path)
    _tamper(env, "UPDATE audit_events SET hash = 'x' WHERE id = 2")
    report = verify_trail(env.service.database)
    assert report.problem is not None and report.problem.startswith("event 2")


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        (
            "UPDATE determinations SET determination_json = "
            'replace(determination_json, \'"summary":"\', \'"summary":"Approved. \')',
            "not the determination its audit event recorded",
        ),
        ("UPDATE determinations SET outcome = 'approved'", "outcome column"),
        ("UPDATE determinations SET request_json = '{}'", "request hash"),
    ],
)
def test_an_edited_determination_is_caught(env: Env, statement: str, problem: str) -> None:
    _pended_and_decided(env)
    assert verify_trail(env.service.database).problem is None
    _tamper(env, statement + " WHERE id = (SELECT max(id) FROM determinations)")
    report = verify_trail(env.service.database)
    assert report.problem is not None and problem in report.problem, report.problem
    assert report.problem.startswith("determination ")


def test_a_case_state_its_events_do_not_lead_to_is_caught(env: Env) -> None:
    case_id = _pended_and_decided(env)
    _tamper(env, f"UPDATE cases SET status = 'approved' WHERE case_id = '{case_id}'")
    report = verify_trail(env.service.database)
    assert report.problem == (f"case {case_id}: its status is 'approved', its events say 'denied'")


def test_a_checkpoint_by_another_key_or_forged_is_refused(
    env: Env, key_file: Path, tmp_path: Path
) -> None:
    _, checkpoint = _checkpointed(env, key_file, tmp_path)
    other = tmp_path / "other.pem"
    new_key(other)
    report = verify_trail(env.service.database, [], public_key_hex(load_key(other)))
    assert report.problem is not None and "another key" in report.problem
    forged = Checkpoint(
        checkpoint.event_id, "0" * 64, checkpoint.at, checkpoint.public_key, checkpoint.signature
    )
    report = verify_trail(env.service.database, [forged])
    assert report.problem is not None and "signature does not hold" in report.problem


def test_key_and_checkpoint_files_that_do_not_read_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="exists"):
        new_key(tmp_path / "k.pem") and new_key(tmp_path / "k.pem")
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(CheckpointError, match="not an unencrypted PEM private key"):
        load_key(tmp_path / "bad.pem")
    (tmp_path / "bad.jsonl").write_text('{"event_id": 1}\n')
    with pytest.raises(CheckpointError, match="line 1"):
        read_checkpoints(tmp_path / "bad.jsonl")


def test_the_server_makes_checkpoints_at_its_interval(env: Env, key_file: Path) -> None:
    errors: list[Exception] = []
    worker = CheckpointWorker(
        env.service.database, load_key(key_file), 0.001, env.clock, errors.append
    )
    worker.start()
    try:
        for _ in range(200):  # waits for the first interval, whatever this machine's speed
            if stored_checkpoints(env.service.database):
                break
            time.sleep(0.05)
    finally:
        worker.stop()
    assert errors == []
    assert stored_checkpoints(env.service.database)
    assert verify_trail(env.service.database).problem is None


def test_the_audit_commands(env: Env, tmp_path: Path) -> None:
    runner = CliRunner()
    url = ["--database-url", env.url]
    key = tmp_path / "key.pem"
    made = runner.invoke(cli, ["audit", "keygen", str(key)])
    assert made.exit_code == 0 and "public key" in made.output, made.output
    assert runner.invoke(cli, ["audit", "keygen", str(key)]).exit_code == 2
    keyed = {"PRIORAUTH_AUDIT_KEY_FILE": str(key)}
    unkeyed = runner.invoke(
        cli, ["audit", "checkpoint", *url], env={"PRIORAUTH_AUDIT_KEY_FILE": ""}
    )
    assert unkeyed.exit_code == 2 and "PRIORAUTH_AUDIT_KEY_FILE" in unkeyed.output
    _pended_and_decided(env)
    signed = runner.invoke(cli, ["audit", "checkpoint", *url], env=keyed)
    assert signed.exit_code == 0 and signed.output.startswith("checkpoint: event "), signed.output
    copy = tmp_path / "kept-elsewhere.jsonl"
    exported = runner.invoke(cli, ["audit", "checkpoints", "--export", str(copy), *url])
    assert exported.exit_code == 0 and "1 checkpoint(s)" in exported.output
    verified = runner.invoke(cli, ["audit", "verify", "--checkpoints", str(copy), *url], env=keyed)
    assert verified.exit_code == 0 and "intact" in verified.output, verified.output
    _tamper(env, "DELETE FROM audit_events WHERE id >= 5")
    broken = runner.invoke(cli, ["audit", "verify", "--checkpoints", str(copy), *url], env=keyed)
    assert broken.exit_code == 1
    assert "BROKEN" in broken.output and "missing" in broken.output
    assert len(broken.output.strip().splitlines()) == 1
