"""Kill the server with SIGKILL during submissions, restart it, and find every acknowledged
request and an intact audit chain: a 201 is sent only after the commit."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from priorauth import devserver
from priorauth.devserver import free_port
from priorauth.service.config import Settings
from priorauth.service.runtime import running_service
from tests.conftest import example
from tests.service_fixtures import POSTGRES_URL, ROOT, TOKENS, database_url

HOST = devserver.LOOPBACK


def _serve(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    # Durability under load, not rate limits: one account submits and reads as fast as it can.
    env = {"PRIORAUTH_POLICY_DIR": str(ROOT / "policies"), "PRIORAUTH_RATE_LIMIT": "off"}
    return devserver.start(url, port, "--workers", str(workers), env=env, timeout=120)


# One process on SQLite; on PostgreSQL, three server processes writing side by side.
SERVERS = [
    pytest.param("sqlite", 1, id="sqlite-1-process"),
    pytest.param(
        "postgresql",
        3,
        id="postgresql-3-processes",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="set PRIORAUTH_TEST_POSTGRES_URL"),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "workers"), SERVERS)
def test_acknowledged_requests_survive_sigkill(backend: str, workers: int, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    settings = Settings(database_url=url, policy_dir=ROOT / "policies")
    with running_service(settings) as service:
        service.add_user("clinic", "submitter", "Sunrise Oncology", token=TOKENS["clinic"])
        service.add_user("admin", "admin", token=TOKENS["admin"])
    port = free_port()
    server = _serve(url, port, workers)
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def submit(worker: int) -> None:
        headers = {"Authorization": f"Bearer {TOKENS['clinic']}"}
        with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=10) as client:
            for i in range(500):  # bounded, and stopped by the kill
                if stop.is_set():
                    return
                request = example("04-pended-criteria-not-met-age.json")
                request["request_id"] = f"CRASH-{worker}-{i}"
                try:
                    response = client.post(
                        "/v1/requests", json={"member_id": "M-1", "request": request}
                    )
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    with lock:
                        acknowledged[request["request_id"]] = response.json()["case_id"]

    workers = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Every server process at once, mid-write.
        devserver.kill(server)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        devserver.stop(server)
    assert len(acknowledged) >= 40

    port = free_port()
    server = _serve(url, port, 1)
    try:
        headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
        with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers) as client:
            for request_id, case_id in acknowledged.items():
                response = client.get(f"/v1/requests/{case_id}")
                assert response.status_code == 200, request_id
                assert response.json()["request_id"] == request_id
    finally:
        devserver.stop(server, grace=30)
    with running_service(settings) as service:
        count, broken = service.verify_audit()
    assert broken is None
    assert count >= 2 * len(acknowledged)
