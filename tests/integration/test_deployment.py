"""The steps of docs/deployment.md, run: create the database, accounts and the audit key; two
`priorauth serve` processes on one database; a checkpoint exported; a backup restored into a new
database and verified against the exported checkpoints (SQLite, and PostgreSQL when the tests
have one). The TLS proxy and systemd are left to the reader's machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from priorauth import devserver
from tests.conftest import example
from tests.service_fixtures import BACKENDS, ROOT, database_url

PRIORAUTH = str(Path(sys.executable).parent / "priorauth")


def _run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [PRIORAUTH, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is needed (Debian's postgresql-client)")
        pytest.skip(f"{name} is not installed")
    return found


def _backup_and_restore(url: str, tmp_path: Path) -> str:
    """The guide's backup and restore: the URL of the restored copy."""
    if url.startswith("sqlite"):
        source = make_url(url).database
        assert source is not None
        backup = tmp_path / "backup.db"
        program = shutil.which("sqlite3")
        if program is not None:
            subprocess.run([program, source, f".backup {backup}"], check=True)
        else:  # the same online backup API, without the sqlite3 program
            with (
                contextlib.closing(sqlite3.connect(source)) as live,
                contextlib.closing(sqlite3.connect(backup)) as copy,
            ):
                live.backup(copy)
        return f"sqlite:///{backup}"
    dump = tmp_path / "priorauth.dump"
    subprocess.run(
        [_tool("pg_dump"), "--format=custom", f"--file={dump}", url], check=True, timeout=120
    )
    restored = make_url(url).set(database="priorauth_restored")
    admin = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS priorauth_restored"))
        connection.execute(text("CREATE DATABASE priorauth_restored"))
    admin.dispose()
    target = restored.render_as_string(hide_password=False)
    subprocess.run(
        [_tool("pg_restore"), "--no-owner", f"--dbname={target}", str(dump)],
        check=True,
        timeout=120,
    )
    return target


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_deployment_guide(backend: str, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    key = tmp_path / "audit.pem"
    env = {
        "PRIORAUTH_DATABASE_URL": url,
        "PRIORAUTH_POLICY_DIR": str(ROOT / "policies"),
        "PRIORAUTH_AUDIT_KEY_FILE": str(key),
    }
    # 1-2: the database, an account, the audit key.
    assert "created" in _run("db", "upgrade", env=env)
    token = _run(
        "users",
        "add",
        "clinic-sunrise",
        "--role",
        "submitter",
        "--organization",
        "Sunrise",
        env=env,
    ).strip()
    assert "public key" in _run("audit", "keygen", str(key), env=env)
    # 3: two workers on the one database.
    ports = [devserver.free_port(), devserver.free_port()]
    servers = [devserver.start(url, port, "--log-format", "json", env=env) for port in ports]
    try:
        headers = {"Authorization": f"Bearer {token}"}
        first, second = (
            httpx.Client(base_url=f"http://{devserver.LOOPBACK}:{port}", headers=headers)
            for port in ports
        )
        with first, second:
            body = {"member_id": "M-1", "request": example("04-pended-criteria-not-met-age.json")}
            submitted = first.post("/v1/requests", json=body)
            assert submitted.status_code == 201, submitted.text
            case_id = submitted.json()["case_id"]
            assert second.get(f"/v1/requests/{case_id}").json()["status"] == "pended"
            assert second.get("/ready").status_code == 200
            assert "priorauth_queue_depth" in second.get("/metrics").text
    finally:
        for server in servers:
            devserver.stop(server)
    # 4: checkpoint, export, back up, restore, verify against the export.
    assert _run("audit", "checkpoint", env=env).startswith("checkpoint: event")
    exported = tmp_path / "checkpoints.jsonl"
    _run("audit", "checkpoints", "--export", str(exported), env=env)
    restored = _backup_and_restore(url, tmp_path)
    restored_env = {**env, "PRIORAUTH_DATABASE_URL": restored}
    assert "already at the newest schema" in _run("db", "upgrade", env=restored_env)
    verified = _run("audit", "verify", "--checkpoints", str(exported), env=restored_env)
    assert "audit trail intact" in verified and "2 checkpoint(s)" in verified  # stored + kept
