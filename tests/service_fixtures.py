"""Fixtures for the service tests: a real database (SQLite file, or PostgreSQL when
PRIORAUTH_TEST_POSTGRES_URL is set), the service on it, an HTTP client, and accounts."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, text

from priorauth import devserver
from priorauth.entrypoints.api import create_app
from priorauth.service.config import Settings
from priorauth.service.runtime import open_service
from priorauth.service.workflow import PriorAuthService

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("PRIORAUTH_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not POSTGRES_URL, reason="PostgreSQL: set PRIORAUTH_TEST_POSTGRES_URL (.ci/run does)"
        ),
    ),
]

TOKENS = {
    "clinic": "t-clinic",
    "other-clinic": "t-other-clinic",
    "pharmacist": "t-pharmacist",
    "md1": "t-md1",
    "md2": "t-md2",
    "admin": "t-admin",
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def reset_postgres(url: str) -> None:
    """Drop every table, so each test starts from an empty schema and runs the migrations."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "postgresql":
        assert POSTGRES_URL is not None
        reset_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return f"sqlite:///{tmp_path / 'priorauth.db'}"


def drop_append_only_guards(connection: Connection) -> None:
    """What someone with direct database access could do before tampering: drop the triggers
    that keep the audit events and determinations append-only."""
    for table in ("audit_events", "determinations"):
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
        else:
            connection.execute(text(f"DROP TRIGGER {table}_no_update"))
            connection.execute(text(f"DROP TRIGGER {table}_no_delete"))


@dataclass
class Env:
    service: PriorAuthService
    clock: Clock
    url: str


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    url = database_url(request.param, tmp_path)
    clock = Clock()
    service = open_service(
        Settings(database_url=url, policy_dir=ROOT / "policies", max_body_bytes=64_000), clock
    )
    service.add_user("clinic", "submitter", "Sunrise Oncology", token=TOKENS["clinic"])
    service.add_user(
        "other-clinic", "submitter", "Harbor Cancer Care", token=TOKENS["other-clinic"]
    )
    service.add_user(
        "pharmacist", "pharmacist", None, "1245319599", "oncology-pharmacy", TOKENS["pharmacist"]
    )
    service.add_user(
        "md1", "medical-director", None, "1679576722", "medical-oncology", TOKENS["md1"]
    )
    service.add_user(
        "md2", "medical-director", None, "1306849450", "hematology-oncology", TOKENS["md2"]
    )
    service.add_user("admin", "admin", token=TOKENS["admin"])
    yield Env(service, clock, url)
    service.database.dispose()


@pytest.fixture
def client(env: Env) -> Iterator[TestClient]:
    with TestClient(create_app(env.service), raise_server_exceptions=True) as test_client:
        yield test_client


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


class LoopbackServer:
    """The service's app on uvicorn in a thread, on 127.0.0.1: real HTTP for the tests.
    `with LoopbackServer(service) as url:` gives its base URL, named with `host_name` (the
    browser tests use `localhost`, a secure context, so Secure cookies are kept on http)."""

    def __init__(self, service: PriorAuthService, host_name: str = "127.0.0.1") -> None:
        import uvicorn

        self.port = devserver.free_port()
        self.host_name = host_name
        config = uvicorn.Config(
            create_app(service), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return f"http://{self.host_name}:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
