"""CRD benchmark: an order-sign hook over HTTP on loopback, beside the HTTP floor (`/health`).

Starts `priorauth serve --demo` on a free 127.0.0.1 port with a fresh SQLite file, then sends,
one at a time from one keep-alive client, `GET /health` and `POST
/cds-services/priorauth-order-sign` (examples/crd/order-sign-satisfied.json: the chart in
prefetch, decided by the engine, one audit event committed), alternating request by request so
both see the same machine. Prints the median and p95 of each and their ratio. Bounded by a
count and a time limit; only 127.0.0.1 is contacted.

    python benchmarks/crd.py --calls 400 --seconds 120
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from priorauth import devserver
from priorauth.devserver import free_port

ROOT = Path(__file__).resolve().parents[1]
HOST = devserver.LOOPBACK  # loopback only, by design
TOKEN = "demo-submitter-token"


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "calls": len(ordered),
        "median_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * p95, 2),
    }


def run(port: int, calls: int, seconds: float) -> dict[str, Any]:
    hook = json.loads((ROOT / "examples" / "crd" / "order-sign-satisfied.json").read_text())
    health: list[float] = []
    signed: list[float] = []
    failures = 0
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers=headers, timeout=30) as client:
        for _ in range(20):  # warm both paths
            client.get("/health")
            client.post("/cds-services/priorauth-order-sign", json=hook)
        deadline = time.monotonic() + seconds
        for index in range(calls):
            if time.monotonic() > deadline:
                break
            hook["hookInstance"] = str(uuid.uuid4())
            # Alternate which goes first, so neither always follows the other.
            order = ("health", "hook") if index % 2 == 0 else ("hook", "health")
            for which in order:
                started = time.perf_counter()
                if which == "health":
                    response = client.get("/health")
                    health.append(time.perf_counter() - started)
                else:
                    response = client.post("/cds-services/priorauth-order-sign", json=hook)
                    signed.append(time.perf_counter() - started)
                    pa = response.json()["systemActions"][0]["resource"]["extension"][-1]
                    if response.status_code != 200 or "satisfied" not in json.dumps(pa):
                        failures += 1
    floor, hook_figures = summary(health), summary(signed)
    return {
        "health": floor,
        "order_sign": hook_figures,
        "failures": failures,
        "median_ratio": round(hook_figures["median_ms"] / floor["median_ms"], 2),
        "p95_ratio": round(hook_figures["p95_ms"] / floor["p95_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls of each (max)")
    parser.add_argument("--seconds", type=float, default=120, help="time limit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        try:
            server = devserver.start(f"sqlite:///{tmp}/crd.db", port, "--demo")
        except devserver.ServerDidNotStart as problem:
            raise SystemExit(str(problem)) from problem
        try:
            report = run(port, args.calls, args.seconds)
        finally:
            devserver.stop(server, grace=30)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
