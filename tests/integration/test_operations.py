"""Running the service as an operator (#16): `db upgrade` creates or migrates, every other
command refuses a database that is missing, empty or unreachable with one line; a policy file
that does not load; --version; the configuration reference; `make run PORT=`; a busy port;
/metrics; JSON logs; docs that point nowhere outside the repository."""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from priorauth import devserver
from priorauth._version import __version__
from priorauth.entrypoints.cli import app as cli
from priorauth.entrypoints.logs import JsonFormatter
from priorauth.errors import PolicyError
from priorauth.service.config import VARIABLES, Settings
from priorauth.service.runtime import open_service
from tests.conftest import example
from tests.service_fixtures import POSTGRES_URL, ROOT, Env, auth, reset_postgres

runner = CliRunner()


def _one_line_error(result: object, *words: str) -> None:
    output = getattr(result, "output", "")
    assert getattr(result, "exit_code", None) == 2, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for word in words:
        assert word in lines[0], output


def test_a_missing_database_is_refused_and_not_created(tmp_path: Path) -> None:
    typo = tmp_path / "priorauht.db"
    result = runner.invoke(cli, ["users", "list", "--database-url", f"sqlite:///{typo}"])
    _one_line_error(result, "no database file", "priorauth db upgrade")
    assert not typo.exists()


def test_db_upgrade_creates_then_leaves_alone_and_other_commands_then_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'p.db'}"
    created = runner.invoke(cli, ["db", "upgrade", "--database-url", url])
    assert created.exit_code == 0 and "database created at schema" in created.output
    again = runner.invoke(cli, ["db", "upgrade", "--database-url", url])
    assert again.exit_code == 0 and "already at the newest schema" in again.output
    listed = runner.invoke(cli, ["users", "list", "--database-url", url])
    assert listed.exit_code == 0, listed.output


def test_an_empty_or_older_database_is_refused_until_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    _one_line_error(runner.invoke(cli, ["audit", "verify", "--database-url", url]), "is empty")
    shutil.copy(ROOT / "tests" / "data" / "store-0005.json", tmp_path / "ignored.json")
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('0005')")
    _one_line_error(
        runner.invoke(cli, ["replay", "x", "--database-url", url]), "schema 0005, not the newest"
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nosuchdb://nowhere", ("unknown database URL scheme 'nosuchdb'",)),
        ("not a url", ("does not read",)),
        ("postgresql://priorauth:secret@127.0.0.1:1/x", ("cannot reach the database",)),
    ],
)
def test_unusable_urls_are_one_line_errors(url: str, words: tuple[str, ...]) -> None:
    for command in (["users", "list"], ["db", "upgrade"]):
        result = runner.invoke(cli, [*command, "--database-url", url])
        _one_line_error(result, *words)
        assert "secret" not in result.output


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL: set PRIORAUTH_TEST_POSTGRES_URL")
def test_a_postgres_url_is_read_as_postgresql() -> None:
    assert POSTGRES_URL is not None
    reset_postgres(POSTGRES_URL)
    url = POSTGRES_URL.replace("postgresql://", "postgres://", 1)
    upgraded = runner.invoke(cli, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0 and "created" in upgraded.output, upgraded.output
    assert runner.invoke(cli, ["users", "list", "--database-url", url]).exit_code == 0


def _bad_policy_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder, ignore=shutil.ignore_patterns("tests"))
    (folder / "broken.yaml").write_text("id: broken\ncriteria: [unclosed\n", encoding="utf-8")
    return folder


def test_a_policy_file_that_does_not_load_is_named_and_stops_the_start(tmp_path: Path) -> None:
    folder = _bad_policy_folder(tmp_path)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    assert runner.invoke(cli, ["db", "upgrade", "--database-url", url]).exit_code == 0
    env = {"PRIORAUTH_POLICY_DIR": str(folder)}
    result = runner.invoke(
        cli, ["serve", "--database-url", url, "--port", str(devserver.free_port())], env=env
    )
    _one_line_error(result, "broken.yaml", "--skip-bad-policies")
    # The accounts and audit commands go on, naming the file they left out.
    listed = runner.invoke(cli, ["users", "list", "--database-url", url], env=env)
    assert listed.exit_code == 0 and "warning: left out policy file" in listed.output
    assert "broken.yaml" in listed.output
    with pytest.raises(PolicyError, match=r"broken\.yaml"):
        open_service(Settings(database_url=url, policy_dir=folder))
    service = open_service(Settings(database_url=url, policy_dir=folder, skip_bad_policies=True))
    try:
        [skipped] = service.skipped_policies
        assert skipped.source.endswith("broken.yaml")
        assert service.ready()["policies"] == len(list((ROOT / "policies").glob("*.yaml"))) - len(
            list((ROOT / "policies").glob("*.data.yaml"))
        )
    finally:
        service.close()


def test_serve_starts_with_the_rest_when_asked(tmp_path: Path) -> None:
    folder = _bad_policy_folder(tmp_path)
    port = devserver.free_port()
    server = devserver.start(
        f"sqlite:///{tmp_path / 'p.db'}",
        port,
        "--skip-bad-policies",
        env={"PRIORAUTH_POLICY_DIR": str(folder)},
    )
    try:
        ready = httpx.get(f"http://{devserver.LOOPBACK}:{port}/ready")
        assert ready.status_code == 200 and ready.json()["policies"] >= 1
    finally:
        devserver.stop(server)


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    assert runner.invoke(cli, ["db", "upgrade", "--database-url", url]).exit_code == 0
    with socket.socket() as busy:
        busy.bind((devserver.LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(cli, ["serve", "--database-url", url, "--port", str(port)])
    _one_line_error(result, f"port {port}", "in use", "--port")


def test_version() -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"priorauth {__version__}"


def _variables_in_code() -> set[str]:
    found = set()
    for path in (ROOT / "src").rglob("*.py"):
        found |= set(re.findall(r"PRIORAUTH_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
    return found


def test_every_variable_is_in_the_reference_the_docs_and_serve_help() -> None:
    listed = {v.name for v in VARIABLES}
    assert _variables_in_code() == listed
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    help_text = runner.invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for variable in VARIABLES:
        assert f"`{variable.name}`" in reference, variable.name
        assert variable.name in help_text, variable.name
    # A value that does not read is named.
    with pytest.raises(ValueError, match="PRIORAUTH_MAX_BODY_BYTES must be a whole number"):
        Settings.from_env({"PRIORAUTH_MAX_BODY_BYTES": "1MB"})


def test_make_run_honours_host_and_port() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        ["make", "-n", "run", "PORT=8001", "HOST=127.0.0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "db upgrade" in dry
    assert "--host 127.0.0.2 --port 8001" in dry


def test_metrics_for_prometheus(client: TestClient, env: Env) -> None:
    body = {"member_id": "M-1", "request": example("04-pended-criteria-not-met-age.json")}
    client.post("/v1/requests", json=body, headers=auth("clinic")).raise_for_status()
    client.get("/v1/requests/0123456789abcdef", headers=auth("clinic"))
    env.clock.advance(days=30)
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    assert (
        'priorauth_http_requests_total{method="POST",route="/v1/requests",status="201"} 1' in text
    )
    assert 'route="/v1/requests/{case_id}",status="404"' in text
    assert re.search(r'priorauth_queue_depth\{queue="[a-z-]+"\} 1', text)
    assert "priorauth_overdue_cases 1" in text
    assert "priorauth_outbox_backlog 0" in text
    assert (
        'priorauth_http_request_duration_seconds_bucket{method="POST",route="/v1/requests"' in text
    )
    # Counts and route templates only: no member, no case id.
    assert "M-1" not in text and "0123456789abcdef" not in text
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{.*\})? [0-9.e+-]+", line), line


def test_json_logs_hold_the_message_and_the_error_kind_only() -> None:
    try:
        raise ValueError("member M-123 weight 80 kg")
    except ValueError:
        record = logging.LogRecord(
            "priorauth.api",
            logging.ERROR,
            __file__,
            1,
            "POST %s %d",
            ("/v1/requests", 500),
            exc_info=__import__("sys").exc_info(),
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "POST /v1/requests 500"
    assert line["level"] == "error" and line["error"] == "ValueError"
    assert "M-123" not in json.dumps(line)


def test_the_docs_point_nowhere_outside_the_repository() -> None:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for document in documents:
        text = document.read_text(encoding="utf-8")
        # No path into the developers' machines (the workbench's own routes are /work/...).
        assert "../shared" not in text, document
        assert not re.search(r"/work/(main|shared|h-)", text), document
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            resolved = (document.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), (document.name, target)
            assert resolved.exists(), (document.name, target)
    assert (ROOT / "docs" / "deployment.md").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["batch", "decide", "--from-store", "--output", "{tmp}/out.parquet"],
        ["impact", "--policy", str(ROOT / "policies" / "ixempra.yaml"), "--from-store"],
        ["goldcard", "evaluate", "--rules", "{tmp}/rules.yaml", "--on", "2026-12-01"],
        ["report", "yearly", "--year", "2026", "--out", "{tmp}"],
    ],
)
def test_the_commands_that_read_the_store_refuse_a_missing_one(
    tmp_path: Path, command: list[str]
) -> None:
    typo = tmp_path / "priorauht.db"
    (tmp_path / "rules.yaml").write_text(
        "threshold_percent: 90\nminimum_requests: 10\nservices: [ixempra]\n", encoding="utf-8"
    )
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    result = runner.invoke(cli, [*args, "--database-url", f"sqlite:///{typo}"])
    assert result.exit_code == 2, result.output
    assert "no database file" in result.output and "Traceback" not in result.output
    assert not typo.exists()


def _group(pid: int) -> list[int]:
    """The processes of a process group (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pid:  # pgrp, the third field after the name
                members.append(int(entry.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_serve_with_workers_runs_them_from_the_settings_it_was_given(tmp_path: Path) -> None:
    # A bad policy file: the workers start only if --skip-bad-policies reached them too.
    folder = _bad_policy_folder(tmp_path)
    port = devserver.free_port()
    server = devserver.start(
        f"sqlite:///{tmp_path / 'w.db'}",
        port,
        "--workers",
        "2",
        "--skip-bad-policies",
        "--demo",
        env={"PRIORAUTH_POLICY_DIR": str(folder), "PRIORAUTH_RATE_LIMIT": "off"},
        timeout=120,
    )
    try:
        # The supervisor, its two workers (and the helper process multiprocessing starts).
        assert len(_group(server.pid)) >= 3
        with httpx.Client(base_url=f"http://{devserver.LOOPBACK}:{port}") as client:
            for _ in range(20):
                ready = client.get("/ready")
                assert ready.status_code == 200 and ready.json()["policies"] >= 1
            listed = client.get("/v1/queue", headers={"Authorization": "Bearer demo-md1-token"})
            assert listed.status_code == 200
    finally:
        devserver.stop(server)
    assert _group(server.pid) == []
