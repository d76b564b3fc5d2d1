"""CRD benchmark: an order-sign hook over HTTP on loopback, beside the HTTP floor (`/health`).

Starts `priorauth serve --demo` on a free 127.0.0.1 port with a fresh SQLite file (rate
limiting off: the benchmark is one client, not an attack), then sends, one at a time from one
keep-alive client, `GET /health` and `POST /cds-services/priorauth-order-sign`
(examples/crd/order-sign-satisfied.json: the chart in prefetch, decided by the engine, one
audit event committed). Each round sends one call of every contender, in an order that
rotates from round to round, so all see the same machine. Prints the median and p95 of each
and the hook's ratio to the floor, with the load average before and after.

With `--against REF` (a git revision, e.g. `main`), the source of that revision (`git
archive`) is served too, by a second server with its own SQLite file, and its hook and health
are contenders in the same rounds: the figures before and after a change, in one run.

    python benchmarks/crd.py --calls 400 --seconds 120
    python benchmarks/crd.py --against main --calls 400 --seconds 180

Bounded by a count and a time limit; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and benchmarks/fhir.py would
# hide the `fhir` package (fhir.resources) from the imports of --parts.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import httpx  # noqa: E402

from priorauth import devserver  # noqa: E402
from priorauth.devserver import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = devserver.LOOPBACK  # loopback only, by design
TOKEN = "demo-submitter-token"
HOOK = "/cds-services/priorauth-order-sign"


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "calls": len(ordered),
        "median_ms": round(1000 * statistics.median(ordered), 3),
        "p95_ms": round(1000 * p95, 3),
    }


def satisfied(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    actions = response.json().get("systemActions") or [{}]
    extension = actions[0].get("resource", {}).get("extension", [])
    return "satisfied" in json.dumps(extension)


def run(ports: dict[str, int], calls: int, seconds: float) -> dict[str, Any]:
    """Alternate `/health` and the hook on each server (`ports`: label -> port)."""
    hook = json.loads((ROOT / "examples" / "crd" / "order-sign-satisfied.json").read_text())
    headers = {"Authorization": f"Bearer {TOKEN}"}
    clients = {
        label: httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=30)
        for label, port in ports.items()
    }
    timings: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    # The body is encoded once; each call only puts in a new hookInstance (same length), so
    # the client's own JSON work stays out of the timings, as does checking the answer.
    placeholder = str(uuid.uuid4())
    hook["hookInstance"] = placeholder
    body = json.dumps(hook).encode()
    contenders: list[tuple[str, Callable[[], httpx.Response], Callable[[httpx.Response], bool]]]
    contenders = []
    for label, client in clients.items():

        def health(client: httpx.Client = client) -> httpx.Response:
            return client.get("/health")

        def sign(client: httpx.Client = client) -> httpx.Response:
            fresh = body.replace(placeholder.encode(), str(uuid.uuid4()).encode())
            return client.post(HOOK, content=fresh, headers={"Content-Type": "application/json"})

        contenders += [
            (f"{label} /health", health, lambda r: r.status_code == 200),
            (f"{label} order-sign", sign, satisfied),
        ]
    try:
        for _ in range(20):  # warm every path
            for _, send, _ in contenders:
                send()
        deadline = time.monotonic() + seconds
        for index in range(calls):
            if time.monotonic() > deadline:
                break
            shift = index % len(contenders)
            for name, send, check in contenders[shift:] + contenders[:shift]:
                started = time.perf_counter()
                response = send()
                timings.setdefault(name, []).append(time.perf_counter() - started)
                if not check(response):
                    failures[name] = failures.get(name, 0) + 1
    finally:
        for client in clients.values():
            client.close()
    report: dict[str, Any] = {name: summary(found) for name, found in timings.items()}
    for label in ports:
        floor, signed = report[f"{label} /health"], report[f"{label} order-sign"]
        report[f"{label} ratio"] = {
            "median": round(signed["median_ms"] / floor["median_ms"], 2),
            "p95": round(signed["p95_ms"] / floor["p95_ms"], 2),
        }
    report["failures"] = failures
    return report


def parts(calls: int, seconds: float) -> dict[str, Any]:
    """The parts of one hook call, in process on a fresh SQLite file, alternating part by
    part each round: what the floor under the hook is made of."""
    from priorauth.adapters import cds
    from priorauth.service.config import Settings
    from priorauth.service.crd import CrdService
    from priorauth.service.pas import FhirAnswer
    from priorauth.service.runtime import open_service
    from priorauth.service.uow import UnitOfWork

    hook = json.loads((ROOT / "examples" / "crd" / "order-sign-satisfied.json").read_text())
    body = json.dumps(hook).encode()
    with tempfile.TemporaryDirectory() as tmp:
        service = open_service(
            Settings(database_url=f"sqlite:///{tmp}/parts.db", policy_dir=ROOT / "policies")
        )
        try:
            service.add_user("clinic", "submitter", "Clinic", token="parts-token")
            crd = CrdService(service)
            actor = service.authenticate("parts-token")
            call = cds.read_hook("priorauth-order-sign", hook)
            assert isinstance(call, cds.HookCall)
            (order,) = call.targets
            now = service.clock()
            mapped = cds.chart_request(
                order, call.chart, service.policies, patient_id=call.patient_id, created=now
            )
            assert isinstance(mapped, cds.ChartResult) and mapped.parsed is not None
            parsed = mapped.parsed
            decided = crd._decide(call, order, now, "http://x/fhir")
            assert not isinstance(decided, FhirAnswer)
            fetched = cds.Fetched((), ())

            def empty_commit() -> object:
                with UnitOfWork(service.database) as uow:
                    uow.lock_writes()
                    uow.commit()
                return None

            contenders: list[tuple[str, Callable[[], object]]] = [
                (
                    "prefetch and order read (fhir.resources)",
                    lambda: cds.read_hook("priorauth-order-sign", hook),
                ),
                (
                    "chart to request (PAS mapping)",
                    lambda: cds.chart_request(
                        order, call.chart, service.policies, patient_id=call.patient_id, created=now
                    ),
                ),
                ("engine (decide)", lambda: service.policies.decide(parsed, now.date())),
                (
                    "audit event, durable commit",
                    lambda: crd._audit(
                        actor, "priorauth-order-sign", call, [decided], fetched, now
                    ),
                ),
                ("empty commit (write lock, no row)", empty_commit),
                ("bearer token", lambda: service.authenticate("parts-token")),
                (
                    "whole hook, in process",
                    lambda: crd.hook(actor, "priorauth-order-sign", body, "http://x/fhir"),
                ),
            ]
            timings: dict[str, list[float]] = {}
            for _, run_part in contenders * 20:  # warm
                run_part()
            deadline = time.monotonic() + seconds
            for index in range(calls):
                if time.monotonic() > deadline:
                    break
                shift = index % len(contenders)
                for name, run_part in contenders[shift:] + contenders[:shift]:
                    started = time.perf_counter()
                    run_part()
                    timings.setdefault(name, []).append(time.perf_counter() - started)
        finally:
            service.close()
    return {name: summary(found) for name, found in timings.items()}


def source_of(revision: str, into: Path) -> Path:
    """The `src/` and `policies/` of a git revision, unpacked under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src", "policies"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="rounds (max)")
    parser.add_argument("--seconds", type=float, default=120, help="time limit")
    parser.add_argument("--against", help="a git revision served beside this tree")
    parser.add_argument(
        "--parts", action="store_true", help="time the parts of a hook call in process"
    )
    args = parser.parse_args()
    if args.parts:
        load_before = os.getloadavg()
        found = parts(args.calls, args.seconds)
        found["load_average"] = {"before": load_before, "after": os.getloadavg()}
        print(json.dumps(found, indent=2))
        return
    quiet = {"PRIORAUTH_RATE_LIMIT": "off"}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            port = free_port()
            servers["this"] = (
                devserver.start(f"sqlite:///{tmp}/this.db", port, "--demo", env=quiet),
                port,
            )
            if args.against:
                base = source_of(args.against, Path(tmp) / "base")
                env = {
                    **quiet,
                    "PYTHONPATH": str(base / "src"),
                    "PRIORAUTH_POLICY_DIR": str(base / "policies"),
                }
                port = free_port()
                servers[args.against] = (
                    devserver.start(f"sqlite:///{tmp}/base.db", port, "--demo", env=env),
                    port,
                )
            report = run({k: p for k, (_, p) in servers.items()}, args.calls, args.seconds)
        except devserver.ServerDidNotStart as problem:
            raise SystemExit(str(problem)) from problem
        finally:
            for server, _ in servers.values():
                devserver.stop(server, grace=30)
    report["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
