"""Median cost of one PAS `$submit` as a library call: read + map + evaluate + respond.

"read" parses the bundle with fhir.resources (each resource by its model class) and checks the
PAS rules; "map" turns the Claim items into requests; "respond" builds the response bundle
(not validated again: the tests do that). No database: benchmarks/submit.py times the service,
the HTTP app and a real server on top of this.

Run: .venv/bin/python benchmarks/fhir.py [runs]. The issue's target for the whole `$submit`
is at most 20 ms at the median.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file's name would hide
# the `fhir` package (fhir.resources) from every import below.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

from priorauth import PolicySet  # noqa: E402
from priorauth.adapters.fhir import (  # noqa: E402
    PasBundle,
    Submission,
    build_response,
    decide,
    map_pas_bundle,
    read_bundle,
    submit,
)

ROOT = HERE.parent
BUNDLE = ROOT / "examples" / "fhir" / "pas-approvable.json"
CREATED = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered) * 1e3:6.2f} ms   p95 {p95 * 1e3:6.2f} ms"


def main(runs: int = 300) -> None:
    text = BUNDLE.read_bytes()
    policies = PolicySet.from_directory(ROOT / "policies")
    for _ in range(20):  # warm the model classes and caches
        submit(text, policies=policies, created=CREATED)
    whole: list[float] = []
    parts: dict[str, list[float]] = {"read": [], "map": [], "evaluate": [], "respond": []}
    for _ in range(runs):
        start = time.perf_counter()
        answer = submit(text, policies=policies, created=CREATED)
        whole.append(time.perf_counter() - start)
        assert answer.status == 200
        start = time.perf_counter()
        bundle = read_bundle(text)
        read = time.perf_counter()
        assert isinstance(bundle, PasBundle)
        submission = map_pas_bundle(bundle, policies)
        mapped = time.perf_counter()
        assert isinstance(submission, Submission)
        determinations = decide(submission, policies)
        decided = time.perf_counter()
        build_response(submission, determinations, created=CREATED)
        done = time.perf_counter()
        parts["read"].append(read - start)
        parts["map"].append(mapped - read)
        parts["evaluate"].append(decided - mapped)
        parts["respond"].append(done - decided)
    print(f"PAS $submit (library), {BUNDLE.name}, {runs} runs")
    print(f"  whole       {_ms(whole)}   (target: median <= 20 ms)")
    for name, samples in parts.items():
        print(f"  {name:<11} {_ms(samples)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
