"""What `POST /fhir/Claim/$submit` costs, layer by layer: median and p95 of each.

Each call sends a new PAS bundle (its Claim identifier changed, so it is a new request: read and
validated with fhir.resources, mapped, decided, and for every layer but the first stored as a
case with its determination, authorization, FHIR claim and audit events in one transaction,
then answered with the PAS response bundle). Twenty calls warm each layer up first.

- library: `priorauth.adapters.fhir.submit` (read + map + evaluate + respond, no database;
  benchmarks/fhir.py splits it into its steps);
- service: authenticate the bearer token, then `PasService.submit`, on a SQLite file (WAL,
  synchronous=FULL: each commit is fsynced before the answer);
- TestClient: the FastAPI app in-process through Starlette's TestClient (the ASGI stack without
  sockets, plus the TestClient's own thread hand-offs); the same bundle sent again ("repeat")
  is timed apart;
- serve: a real `priorauth serve` (uvicorn) on a free 127.0.0.1 port with its demo accounts,
  from one keep-alive httpx client: what a PAS client sees, the client's own time included;
  GET /health on the same server and client ("health") is the floor any request pays there.

The database is a SQLite file under a temporary directory unless PRIORAUTH_BENCH_DATABASE_URL
is set (service and TestClient only). The development machine is shared and noisy: the same
code measures up to twice as slow while other work runs, so compare figures taken together.

Run: .venv/bin/python benchmarks/submit.py [calls]. The issue's target: median <= 20 ms.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and benchmarks/fhir.py would
# hide the `fhir` package (fhir.resources) from every import below.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from priorauth import PolicySet, devserver  # noqa: E402
from priorauth.adapters.fhir import submit  # noqa: E402
from priorauth.entrypoints.api import create_app  # noqa: E402
from priorauth.service.config import Settings  # noqa: E402
from priorauth.service.pas import PasService  # noqa: E402
from priorauth.service.runtime import open_service  # noqa: E402

ROOT = HERE.parent
BUNDLE = ROOT / "examples" / "fhir" / "pas-approvable.json"
HEADERS = {"Authorization": "Bearer bench-token", "Content-Type": "application/fhir+json"}
WARM_UP = 20


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"median {statistics.median(ordered) * 1e3:6.2f} ms   p95 {p95 * 1e3:6.2f} ms"


def _body(template: dict[str, object], series: str, number: int) -> bytes:
    claim = template["entry"][0]["resource"]  # type: ignore[index]
    claim["identifier"][0]["value"] = f"PAS-{series}-{number:06d}"  # type: ignore[index]
    return json.dumps(template).encode()


def _timed(
    call: Callable[[bytes], None], template: dict[str, object], series: str, calls: int
) -> list[float]:
    """Seconds for each of `calls` new approvable bundles, after WARM_UP that warm the model
    classes, caches and connections (bundles 0 to WARM_UP - 1 of the series)."""
    for number in range(WARM_UP):
        call(_body(template, series, number))
    seconds: list[float] = []
    for number in range(WARM_UP, WARM_UP + calls):
        body = _body(template, series, number)
        start = time.perf_counter()
        call(body)
        seconds.append(time.perf_counter() - start)
    return seconds


def _over_http(client: httpx.Client, headers: dict[str, str]) -> Callable[[bytes], None]:
    def call(body: bytes) -> None:
        answer = client.post("/fhir/Claim/$submit", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert "A1" in answer.text

    return call


def library(template: dict[str, object], calls: int) -> list[float]:
    policies = PolicySet.from_directory(ROOT / "policies")
    created = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)

    def call(body: bytes) -> None:
        assert submit(body, policies=policies, created=created).status == 200

    return _timed(call, template, "LIBRARY", calls)


def in_process(
    template: dict[str, object], calls: int, url: str
) -> tuple[list[float], list[float], list[float]]:
    """(service, TestClient, TestClient repeat) on one database."""
    service = open_service(Settings(database_url=url, policy_dir=ROOT / "policies"))
    service.add_user("bench-clinic", "submitter", "Bench Clinic", token="bench-token")
    try:
        pas = PasService(service)

        def call(body: bytes) -> None:
            answer = pas.submit(service.authenticate("bench-token"), body)
            assert answer.status == 200, answer.body

        direct = _timed(call, template, "SERVICE", calls)
        with TestClient(create_app(service)) as client:
            app = _timed(_over_http(client, HEADERS), template, "APP", calls)
            body = _body(template, "APP", WARM_UP)
            repeat: list[float] = []
            for _ in range(calls):
                start = time.perf_counter()
                answer = client.post("/fhir/Claim/$submit", content=body, headers=HEADERS)
                repeat.append(time.perf_counter() - start)
                assert answer.status_code == 200
    finally:
        service.close()
    return direct, app, repeat


def over_loopback(template: dict[str, object], calls: int) -> tuple[list[float], list[float]]:
    """$submit against `priorauth serve` on 127.0.0.1 (a real socket, uvicorn), demo accounts;
    then GET /health as many times on the same server and client (the HTTP floor)."""
    headers = {
        "Authorization": "Bearer demo-submitter-token",
        "Content-Type": "application/fhir+json",
    }
    with tempfile.TemporaryDirectory() as folder:
        port = devserver.free_port()
        demo = ("--demo", "--examples", str(ROOT / "examples"))
        server = devserver.start(
            f"sqlite:///{folder}/bench.db", port, *demo, env={"PRIORAUTH_RATE_LIMIT": "off"}
        )
        try:
            base_url = f"http://{devserver.LOOPBACK}:{port}"
            with httpx.Client(base_url=base_url, timeout=30) as client:
                served = _timed(_over_http(client, headers), template, "SERVE", calls)
                floor: list[float] = []
                for _ in range(calls):
                    start = time.perf_counter()
                    answer = client.get("/health")
                    floor.append(time.perf_counter() - start)
                    assert answer.status_code == 200
                return served, floor
        finally:
            devserver.stop(server)


def main(calls: int = 200) -> None:
    template = json.loads(BUNDLE.read_text())
    with tempfile.TemporaryDirectory() as folder:
        url = os.environ.get("PRIORAUTH_BENCH_DATABASE_URL") or f"sqlite:///{folder}/bench.db"
        figures = {"library": library(template, calls)}
        figures["service"], figures["TestClient"], repeat = in_process(template, calls, url)
    figures["serve"], floor = over_loopback(template, calls)
    database = url.split(":")[0]
    print(f"POST /fhir/Claim/$submit, {BUNDLE.name}: {calls} new requests per line")
    print(f"  library      {_ms(figures['library'])}   read + map + evaluate + respond")
    print(f"  service      {_ms(figures['service'])}   + authenticate, store ({database})")
    print(f"  TestClient   {_ms(figures['TestClient'])}   + the ASGI app in-process")
    print(f"    repeat     {_ms(repeat)}   the same bundle again")
    print(f"  serve        {_ms(figures['serve'])}   priorauth serve on 127.0.0.1 (sqlite)")
    print(f"    health     {_ms(floor)}   GET /health there: the HTTP floor")
    print("  target: median <= 20 ms (serve)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
