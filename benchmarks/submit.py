"""Median cost of `POST /fhir/Claim/$submit` through the HTTP app, on a real database.

Each run sends a new PAS bundle (its Claim identifier changed, so it is a new request: mapped,
decided, stored as a case with its determination, authorization and audit events, answered
with the PAS response bundle); the repeat of a bundle already answered is timed apart.
The app runs in-process (Starlette's TestClient: the ASGI stack without sockets), on a SQLite
file under a temporary directory (WAL, full fsync) unless PRIORAUTH_BENCH_DATABASE_URL is set.

A second measure sends the same kind of bundles to a real `priorauth serve` (uvicorn) on a free
127.0.0.1 port, from one keep-alive httpx client: the cost a PAS client sees, without the
in-process TestClient's thread hand-offs (several ms of its own on this machine).

Run: .venv/bin/python benchmarks/submit.py [runs]. The issue's target: median <= 20 ms.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and benchmarks/fhir.py would
# hide the `fhir` package (fhir.resources) from every import below.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from priorauth.entrypoints.api import create_app  # noqa: E402
from priorauth.service.config import Settings  # noqa: E402
from priorauth.service.runtime import open_service  # noqa: E402

ROOT = HERE.parent
BUNDLE = ROOT / "examples" / "fhir" / "pas-approvable.json"
HEADERS = {"Authorization": "Bearer bench-token", "Content-Type": "application/fhir+json"}


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered) * 1e3:6.2f} ms   p95 {p95 * 1e3:6.2f} ms"


def _body(template: dict[str, object], number: int) -> bytes:
    claim = template["entry"][0]["resource"]  # type: ignore[index]
    claim["identifier"][0]["value"] = f"PAS-BENCH-{number:06d}"  # type: ignore[index]
    return json.dumps(template).encode()


def _time_new_requests(
    client: httpx.Client, template: dict[str, object], runs: int, headers: dict[str, str]
) -> list[float]:
    """Seconds for each of `runs` new approvable bundles, after 20 that warm the model classes,
    caches and connections. Bundles 0 to 19 are the warm-up; 20 is the first timed one."""
    for number in range(20):
        client.post("/fhir/Claim/$submit", content=_body(template, number), headers=headers)
    new: list[float] = []
    for number in range(20, 20 + runs):
        body = _body(template, number)
        start = time.perf_counter()
        answer = client.post("/fhir/Claim/$submit", content=body, headers=headers)
        new.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text
        assert "A1" in answer.text
    return new


def main(runs: int = 200) -> None:
    template = json.loads(BUNDLE.read_text())
    with tempfile.TemporaryDirectory() as folder:
        url = os.environ.get("PRIORAUTH_BENCH_DATABASE_URL") or f"sqlite:///{folder}/bench.db"
        service = open_service(Settings(database_url=url, policy_dir=ROOT / "policies"))
        service.add_user("bench-clinic", "submitter", "Bench Clinic", token="bench-token")
        try:
            with TestClient(create_app(service)) as client:
                new = _time_new_requests(client, template, runs, HEADERS)
                repeat: list[float] = []
                body = _body(template, 20)
                for _ in range(runs):
                    start = time.perf_counter()
                    answer = client.post("/fhir/Claim/$submit", content=body, headers=HEADERS)
                    repeat.append(time.perf_counter() - start)
                    assert answer.status_code == 200
        finally:
            service.close()
    print(f"POST /fhir/Claim/$submit (HTTP app, {url.split(':')[0]}), {BUNDLE.name}, {runs} runs")
    print(f"  new request  {_ms(new)}   (target: median <= 20 ms)")
    print(f"  repeat       {_ms(repeat)}")


def over_loopback(runs: int) -> None:
    """$submit against `priorauth serve` on 127.0.0.1 (a real socket, uvicorn), demo accounts."""
    spec = importlib.util.spec_from_file_location("priorauth_load", HERE / "load.py")
    assert spec is not None and spec.loader is not None
    load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load)
    template = json.loads(BUNDLE.read_text())
    headers = {
        "Authorization": "Bearer demo-submitter-token",
        "Content-Type": "application/fhir+json",
    }
    with tempfile.TemporaryDirectory() as folder:
        port = load.free_port()
        server = load.start_server(f"sqlite:///{folder}/bench.db", port)
        try:
            with httpx.Client(base_url=f"http://{load.HOST}:{port}", timeout=30) as client:
                new = _time_new_requests(client, template, runs, headers)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"POST /fhir/Claim/$submit (priorauth serve on 127.0.0.1, sqlite), {runs} runs")
    print(f"  new request  {_ms(new)}   (target: median <= 20 ms)")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    main(count)
    over_loopback(count)
