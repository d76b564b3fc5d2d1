"""Load benchmark: submissions per second and latency, next to a no-op endpoint of the same server.

Starts `priorauth serve` on a free loopback port (a fresh SQLite file unless --database-url is
given), then drives it with an async HTTP client: first POST /v1/noop (checks the bearer token,
reads the body, returns), then POST /v1/requests with unique request ids (evaluated, committed
durably, audited). Every loop is bounded by a count and a time limit; only 127.0.0.1 is ever
contacted. The server runs with PRIORAUTH_RATE_LIMIT=off: one account drives it.

    python benchmarks/load.py --requests 2000 --concurrency 16 --rounds 5 --seconds 15

With `--workers 1,4` it measures the server with 1 worker process, then with 4 (`serve
--workers`), each against its own no-op, and prints them side by side. On PostgreSQL
(`--database-url postgresql://...`) the workers write side by side; the figure the scale issue
asks for is submissions per second with 4 workers as a share of the no-op's with the same 4.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from priorauth import devserver
from priorauth.devserver import free_port

ROOT = Path(__file__).resolve().parents[1]
HOST = devserver.LOOPBACK  # loopback only, by design
TOKEN = "demo-submitter-token"


def start_server(database_url: str, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    """`priorauth serve --demo --workers N` with the example queue, on loopback; exits the
    script if it does not start."""
    try:
        # The benchmark drives one account far past the default rate limit on purpose.
        return devserver.start(
            database_url,
            port,
            "--demo",
            "--examples",
            str(ROOT / "examples"),
            "--workers",
            str(workers),
            env={"PRIORAUTH_RATE_LIMIT": "off"},
            timeout=180,
        )
    except devserver.ServerDidNotStart as problem:
        raise SystemExit(str(problem)) from problem


class Phase:
    """Latencies and busy time of one endpoint, gathered over several rounds."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.latencies: list[float] = []
        self.failures = 0
        self.seconds = 0.0

    def report(self) -> dict[str, Any]:
        latencies = sorted(self.latencies)

        def percentile(p: float) -> float:
            return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))]

        return {
            "path": self.path,
            "requests": len(latencies),
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "per_second": round(len(latencies) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(percentile(0.50), 2),
            "p99_ms": round(percentile(0.99), 2),
            "mean_ms": round(1000 * statistics.fmean(latencies), 2) if latencies else None,
        }


async def drive(
    client: httpx.AsyncClient,
    phase: Phase,
    bodies: list[dict[str, Any]],
    concurrency: int,
    deadline: float,
) -> None:
    """Send the bodies with `concurrency` workers until done or the deadline passes."""
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(bodies) and time.monotonic() < deadline:
            body = bodies[next_index]
            next_index += 1
            started = time.perf_counter()
            response = await client.post(phase.path, json=body)
            phase.latencies.append(time.perf_counter() - started)
            if response.status_code not in (200, 201):
                phase.failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds += time.perf_counter() - started


async def run(args: argparse.Namespace, port: int) -> dict[str, Any]:
    template = json.loads((ROOT / "examples" / "01-approved-every-3-weeks.json").read_text())
    run_id = f"{int(time.time())}"
    bodies = []
    for i in range(args.requests):
        request = copy.deepcopy(template)
        request["request_id"] = f"LOAD-{run_id}-{i}"
        bodies.append({"member_id": f"M-LOAD-{i % 500}", "request": request})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", headers=headers, limits=limits, timeout=30
    ) as client:
        # Warm both paths so neither pays first-call costs in the measurement.
        warm = copy.deepcopy(bodies[:20])
        for body in warm:
            body["request"]["request_id"] += "-warm"
        await drive(client, Phase("/v1/noop"), warm, 4, time.monotonic() + 10)
        await drive(client, Phase("/v1/requests"), warm, 4, time.monotonic() + 10)
        # Alternate the two endpoints in rounds, so both see the same machine (other work on
        # it comes and goes) and the comparison stays fair.
        noop, submit = Phase("/v1/noop"), Phase("/v1/requests")
        size = max(1, len(bodies) // args.rounds)
        for start in range(0, len(bodies), size):
            chunk = bodies[start : start + size]
            await drive(client, noop, chunk, args.concurrency, time.monotonic() + args.seconds)
            await drive(client, submit, chunk, args.concurrency, time.monotonic() + args.seconds)
    noop_report, submit_report = noop.report(), submit.report()
    return {
        "noop": noop_report,
        "submit": submit_report,
        "submit_vs_noop_percent": round(
            100 * submit_report["per_second"] / noop_report["per_second"], 1
        ),
    }


_WRK_SUBMIT = """
local f = io.open("{body}"); local template = f:read("*a"); f:close()
local counter = 0
function setup(thread) thread:set("tid", tostring(math.random(1, 1e9))) end
function request()
  counter = counter + 1
  local body = template:gsub("REQUEST%-ID", "LOAD-{run}-" .. tid .. "-" .. counter)
  return wrk.format("POST", "/v1/requests", {{["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {token}"}}, body)
end
"""
_WRK_NOOP = """
local f = io.open("{body}"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def _wrk_phase(port: int, path: str, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One wrk run: requests per second, p50 and p99 latency (ms), non-2xx answers."""
    seconds = max(1, int(args.seconds))
    command = ["wrk", "-t2", f"-c{args.concurrency}", f"-d{seconds}s", "--latency"]
    out = subprocess.run(
        [*command, "-s", str(script), f"http://{HOST}:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return round(float(match.group(1)) * scale, 2)

    rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    failed = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    return {
        "path": path,
        "per_second": float(rate.group(1)) if rate else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "failures": int(failed.group(1)) if failed else 0,
    }


def run_wrk(args: argparse.Namespace, port: int, folder: Path) -> dict[str, Any]:
    """The same comparison driven by wrk (C, a small share of a core), so that the no-op figure
    is the server's rather than the Python client's."""
    template = json.loads((ROOT / "examples" / "01-approved-every-3-weeks.json").read_text())
    template["request_id"] = "REQUEST-ID"
    body = folder / "body.json"
    body.write_text(json.dumps({"member_id": "M-LOAD", "request": template}))
    values = {"body": body, "token": TOKEN, "run": int(time.time())}
    submit_script, noop_script = folder / "submit.lua", folder / "noop.lua"
    submit_script.write_text(_WRK_SUBMIT.format(**values))
    noop_script.write_text(_WRK_NOOP.format(**values))
    rounds: dict[str, list[dict[str, Any]]] = {"noop": [], "submit": []}
    for _ in range(args.rounds):
        rounds["noop"].append(_wrk_phase(port, "/v1/noop", noop_script, args))
        rounds["submit"].append(_wrk_phase(port, "/v1/requests", submit_script, args))
    report: dict[str, Any] = {}
    for name, runs in rounds.items():
        report[name] = {
            "path": runs[0]["path"],
            "per_second": round(statistics.median(r["per_second"] for r in runs), 1),
            "rounds_per_second": [r["per_second"] for r in runs],
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "failures": sum(r["failures"] for r in runs),
        }
    report["submit_vs_noop_percent"] = round(
        100 * report["submit"]["per_second"] / report["noop"]["per_second"], 1
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint (max)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15, help="time limit per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds alternating the two")
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp folder")
    parser.add_argument(
        "--workers", default="1", help="server processes, or several to compare: 1,4"
    )
    parser.add_argument(
        "--client",
        choices=("httpx", "wrk"),
        default="httpx",
        help="the load generator: one async httpx client (default), or wrk if installed "
        "(apt-get install wrk), which leaves the cores to the server",
    )
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk), or use --client httpx")
    try:
        counts = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers takes whole numbers separated by commas, not {args.workers!r}")
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/load.db"
        for workers in counts:
            port = free_port()
            server = start_server(url, port, workers)
            try:
                if args.client == "wrk":
                    report = run_wrk(args, port, Path(tmp))
                else:
                    report = asyncio.run(run(args, port))
            finally:
                devserver.stop(server, grace=30)
            report["database"] = url.split(":", 1)[0]
            report["workers"] = workers
            report["client"] = args.client
            report["load_average"] = [round(x, 2) for x in os.getloadavg()]
            reports.append(report)
            print(json.dumps(report, indent=2), flush=True)
    if len(reports) > 1:
        print("\nworkers  no-op/s  submit/s  submit vs no-op")
        for r in reports:
            print(
                f"{r['workers']:>7}  {r['noop']['per_second']:>7}  {r['submit']['per_second']:>8}"
                f"  {r['submit_vs_noop_percent']:>14} %"
            )


if __name__ == "__main__":
    main()
